// bench/observer-overhead: latency.bpf.c up to cost stage 1 (see LT_STAGE there).
#define LT_STAGE 1
#include "../../observer/bpf/latency.bpf.c"
