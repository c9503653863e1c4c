/* The memory module's contract with user space (host/memory.ts). */
#ifndef LATSCOPE_MEMORY_H
#define LATSCOPE_MEMORY_H

#include "hist.h"

#define MEM_TLB_REASONS 5 /* TLB_FLUSH_ON_TASK_SWITCH, REMOTE_SHOOTDOWN, LOCAL_SHOOTDOWN, LOCAL_MM_SHOOTDOWN, REMOTE_SEND_IPI */

/* per CPU (a per-CPU array of one) */
struct mem_cpu {
	__u64 faults_user;      /* page faults of the watched tasks in user mode (minor and major) */
	__u64 faults_kernel;    /* ... in kernel mode (copy_from_user and the like) */
	__u64 tlb[MEM_TLB_REASONS];
	__u64 tlb_pages;
};

enum mem_stall {
	MEM_STALL_COMPACTION = 0, /* direct compaction (huge page allocations) */
	MEM_STALL_RECLAIM = 1,    /* direct reclaim (allocation under memory pressure) */
	MEM_STALLS = 2,
};

struct mem_event {
	__u64 ts_ns;
	__u64 delay_ns;
	__u32 kind; /* enum mem_stall */
	__u32 cpu;
	__u32 pid;
	__u32 tgid;
	char comm[16];
};

#define MEM_C_RING_FULL 0
#define MEM_C_MAX 1

#endif
