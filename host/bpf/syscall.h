/* The syscall module's contract with user space (host/syscall.ts). */
#ifndef LATSCOPE_SYSCALL_H
#define LATSCOPE_SYSCALL_H

#define SYS_MAX 512   /* syscall numbers below this are counted */
#define SYS_SLOTS 40  /* log2 buckets: [2^k, 2^(k+1)) ns, k = 0..39 */

/* one syscall number on one CPU (a per-CPU array indexed by number) */
struct sys_stat {
	__u64 count;
	__u64 errors;   /* returned a negative errno */
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slot[SYS_SLOTS];
};

struct sys_event {
	__u64 ts_ns;
	__u64 delay_ns;
	__u32 nr;
	__u32 cpu;
	__u32 pid;
	__u32 tgid;
	__s64 ret;
	char comm[16];
};

#define SYS_C_RING_FULL 0
#define SYS_C_MAX 1

#endif
