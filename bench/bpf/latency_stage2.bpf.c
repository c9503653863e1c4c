// bench/observer-overhead: latency.bpf.c up to cost stage 2 (see LT_STAGE there).
#define LT_STAGE 2
#include "../../observer/bpf/latency.bpf.c"
