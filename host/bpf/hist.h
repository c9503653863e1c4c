/* The histogram every host-jitter module keeps in its maps: log-linear buckets (four per power of
 * two, so a bucket is at most 25% wide and a quantile read from it is within 12.5%), with the
 * exact count, sum and maximum. Shared with user space: host/hist.ts reads it. */
#ifndef LATSCOPE_HIST_H
#define LATSCOPE_HIST_H

#define HIST_SUB_BITS 2
#define HIST_SUB (1 << HIST_SUB_BITS)
/* values 0..3 have their own slot; then 4 slots per power of two, 2^2 .. 2^41 ns (about 36 min) */
#define HIST_SLOTS (HIST_SUB + 40 * HIST_SUB)

struct hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slot[HIST_SLOTS];
};

#endif
