// bench/observer-overhead: latency.bpf.c up to cost stage 3 (see LT_STAGE there).
#define LT_STAGE 3
#include "../../observer/bpf/latency.bpf.c"
