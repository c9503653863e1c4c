/* The syscall module's contract with user space (host/syscall.ts). */
#ifndef LATSCOPE_SYSCALL_H
#define LATSCOPE_SYSCALL_H

#define SYS_MAX 512   /* syscall numbers below this are counted */
#define SYS_SLOTS 40  /* log2 buckets: [2^k, 2^(k+1)) ns, k = 0..39 */

/* one syscall number on one CPU (a per-CPU array indexed by number) */
struct sys_stat {
	__u64 count;    /* calls made (counted on entry: every one) */
	__u64 errors;   /* returned a negative errno */
	__u64 timed;    /* calls timed with the clock: the first ones, then one in time_every at random */
	__u64 sum_ns;   /* of the timed calls, each weighted by the calls it stands for */
	__u64 max_ns;   /* the longest: a timed call to the ns, another to the tick */
	__u64 slot[SYS_SLOTS]; /* the timed calls, weighted: an estimate of every call's histogram */
};

struct sys_event {
	__u64 ts_ns;
	__u64 delay_ns;
	__u32 nr;
	__u32 cpu;
	__u32 pid;
	__u32 tgid;
	__s64 ret;
	__u32 to_tick;  /* 1: not timed, delay_ns measured in ticks (to within a tick either way) */
	__u32 pad;
	char comm[16];
};

#define SYS_C_RING_FULL 0
#define SYS_C_DISPLACED 1 /* a call's slot taken by another thread's call before it ended: counted, not timed */
#define SYS_C_MAX 2

#define SYS_CALL_SLOTS 65536 /* calls in flight, a slot per thread by its kernel stack */

#endif
