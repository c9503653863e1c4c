/* Kernel side of hist.h: bucket a value and add it, with or without atomics. */
#ifndef LATSCOPE_HIST_BPF_H
#define LATSCOPE_HIST_BPF_H

#include "hist.h"

static __always_inline __u32 hist_slot(__u64 v)
{
	if (v < HIST_SUB)
		return v;
	__u32 p = log2_u64(v); /* >= HIST_SUB_BITS */
	__u32 slot = HIST_SUB + (p - HIST_SUB_BITS) * HIST_SUB + ((v >> (p - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return slot < HIST_SLOTS ? slot : HIST_SLOTS - 1;
}

/* Only this CPU writes h (a per-CPU slot): plain adds. */
static __always_inline void hist_add_local(struct hist *h, __u64 v)
{
	__u32 s = hist_slot(v);
	h->count++;
	h->sum_ns += v;
	if (v > h->max_ns)
		h->max_ns = v;
	if (s < HIST_SLOTS)
		h->slot[s]++;
}

/* Shared between CPUs: atomic adds; the maximum may lose a race to an equal-sized one (rare, harmless). */
static __always_inline void hist_add_shared(struct hist *h, __u64 v)
{
	__u32 s = hist_slot(v);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, v);
	if (v > h->max_ns)
		h->max_ns = v;
	if (s < HIST_SLOTS)
		__sync_fetch_and_add(&h->slot[s], 1);
}

#endif
