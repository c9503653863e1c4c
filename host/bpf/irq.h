/* The interrupt module's contract with user space (host/irq.ts). */
#ifndef LATSCOPE_IRQ_H
#define LATSCOPE_IRQ_H

#include "hist.h"

#define IRQ_MAX_CPUS 1024
#define IRQ_SOFTIRQS 10 /* NR_SOFTIRQS: hi, timer, net_tx, net_rx, block, irq_poll, tasklet, sched, hrtimer, rcu */

/* hard IRQ `irq` on `cpu` */
struct irq_key {
	__u32 irq;
	__u32 cpu;
};

enum irq_event_kind {
	IRQ_EV_HARD = 1, /* a hard IRQ handler ran longer than hard_outlier_ns; id = the IRQ number */
	IRQ_EV_SOFT = 2, /* a soft IRQ vector ran longer than soft_outlier_ns; id = the vector */
};

struct irq_event {
	__u64 ts_ns;     /* CLOCK_MONOTONIC at the end */
	__u64 delay_ns;  /* how long it ran */
	__u32 kind;
	__u32 cpu;
	__u32 id;
	__u32 pid;       /* the task it interrupted */
	char comm[16];
};

#define IRQ_C_RING_FULL 0
#define IRQ_C_MAX 1

#endif
