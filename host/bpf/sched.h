/* The scheduler module's contract with user space (host/sched.ts): per-CPU statistics, off-CPU
 * histograms by reason, and the outlier events that leave the kernel through the ring. */
#ifndef LATSCOPE_SCHED_H
#define LATSCOPE_SCHED_H

#include "hist.h"

#define SCHED_MAX_CPUS 1024
#define SCHED_TASK_COMM 16

/* why a watched task was off its CPU */
enum sched_off_reason {
	OFF_PREEMPTED = 0, /* still runnable: another task took the CPU */
	OFF_SLEEP = 1,     /* waiting for something (TASK_INTERRUPTIBLE) */
	OFF_BLOCKED = 2,   /* uninterruptible (disk, page-in, a kernel lock) */
	OFF_REASONS = 3,
};

/* one CPU's view; only that CPU writes it */
struct sched_cpu {
	__u64 switches;            /* every context switch on this CPU */
	__u64 involuntary;         /* the previous task was still runnable (preempted) */
	__u64 watched_preempted;   /* a watched task preempted by a task that is not watched */
	__u64 watched_switches;    /* a watched task switched out (either way) */
	__u64 intrusions;          /* a task that is not watched switched in on this watched CPU while watched tasks exist */
	__u64 migrations_in;       /* watched tasks moved to this CPU */
	struct hist runq;          /* run-queue latency of the tasks that ran here (wake-up or preemption to running) */
};

enum sched_event_kind {
	SCHED_EV_RUNQ = 1,     /* a task waited runnable longer than runq_outlier_ns; other = the task that ran before it */
	SCHED_EV_PREEMPT = 2,  /* a watched task was preempted; other = the task that took the CPU */
	SCHED_EV_MIGRATE = 3,  /* a watched task moved CPU; delay_ns = 0, other_pid = the destination CPU */
	SCHED_EV_OFFCPU = 4,   /* a watched task was off-CPU longer than offcpu_outlier_ns; reason in aux */
};

struct sched_event {
	__u64 ts_ns;        /* CLOCK_MONOTONIC when it was seen */
	__u64 delay_ns;
	__u32 kind;
	__u32 cpu;
	__u32 pid;          /* thread id of the task it is about */
	__u32 tgid;
	__u32 other_pid;
	__u32 other_tgid;
	__u32 aux;
	__u32 prio;
	char comm[SCHED_TASK_COMM];
	char other_comm[SCHED_TASK_COMM];
};

#define SCHED_C_RING_FULL 0
#define SCHED_C_DISPLACED 1 /* a runnable task's slot taken by another before it ran: that wait not measured */
#define SCHED_C_MAX 2

#define SCHED_RUNNABLE_BITS 16
#define SCHED_RUNNABLE_SLOTS (1 << SCHED_RUNNABLE_BITS)

#endif
