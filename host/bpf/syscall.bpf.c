// SPDX-License-Identifier: GPL-2.0
/* Syscall latency, aggregated in the kernel per syscall number: count, errors, sum, maximum and
 * a log2 histogram, for the tasks chosen in the kernel by process, thread or cgroup (a
 * container); the slow calls leave the kernel. Names come from user space. Hooks: tp_btf
 * sys_enter, sys_exit.
 *
 * Cheap enough for every syscall of a host: a program here pays ~25 ns for each helper call and
 * ~80 ns for the clock, more than the hook itself. So:
 * - a call in flight sits in an array slot chosen by the thread's pt_regs address (its kernel
 *   stack: the same pointer at entry and exit, and no helper call to learn who we are);
 * - every call is counted and stamped with jiffies (inlined: free), so every call longer than the
 *   slow threshold is still caught, to within a tick;
 * - a syscall's first time_first calls on a CPU read the clock at both ends, then one call in
 *   time_every chosen at random, counted time_every times over (so the histogram and the sum
 *   estimate every call's, without bias); the maximum is exact for the timed calls. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "watch.bpf.h"
#include "syscall.h"

char LICENSE[] SEC("license") = "GPL";

LATSCOPE_LAYOUT(sys_event);

/* settings (host/syscall.ts) */
const volatile __u64 slow_ns = 10000000;
const volatile __u64 tick_ns = 4000000;       /* one jiffy */
const volatile __u64 slow_ticks = 2;          /* an untimed call this many ticks long may be slow */
const volatile __u64 time_first = 1024;       /* per syscall and CPU, the first calls are all timed */
const volatile __u32 time_every = 8;          /* then one in this many, at random */
const volatile __u64 timed_below = 1ULL << 29; /* 2^32 / time_every: a call is timed when the high half of its slot's draw is below */
const volatile __s64 exit_nr = -1, exit_group_nr = -1; /* calls that never return: counted, no slot held */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} watch_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} watch_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYS_MAX);
	__type(key, __u32);
	__type(value, struct sys_stat);
} stats SEC(".maps");

/* one thread's call in flight */
struct in_call {
	__u64 regs;     /* the thread's pt_regs address: who holds the slot */
	__u64 tick;     /* jiffies at entry; 0: no call in flight */
	__u64 ts_ns;    /* the clock at entry when timed, else 0 */
	__u64 draw;     /* the slot's random state */
	__s32 nr;
	__u32 weight;   /* a timed call stands for this many */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYS_CALL_SLOTS);
	__type(key, __u32);
	__type(value, struct in_call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 128 << 10);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYS_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* watch_all_tasks false: tasks matching watch_tgid, watch_tid or watch_cgroup */
static __always_inline bool watched(void)
{
	if (watch_all_tasks)
		return true;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	if (tgid_watched(id >> 32) || bpf_map_lookup_elem(&watch_tid, &tid))
		return true;
	__u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watch_cgroup, &cg) != NULL;
}

/* The slot of a thread's call, by its pt_regs address (kernel stacks are THREAD_SIZE-aligned,
 * 16 KiB on x86-64: the bits above spread the threads). The verifier allows no arithmetic on a
 * pointer, but lets a privileged program copy its low half into a plain value, and compare and
 * store the pointer itself. */
static __always_inline struct in_call *slot_of(const struct pt_regs *regs)
{
	__u32 low = (__u32)(__u64)regs;
	__u32 k = ((low >> 14) * 0x9E3779B1U) >> (32 - 16);
	return bpf_map_lookup_elem(&calls, &k);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ls_sys_enter, struct pt_regs *regs, long nr)
{
	if (!watched() || nr < 0 || nr >= SYS_MAX)
		return 0;
	__u32 k = nr;
	struct sys_stat *s = bpf_map_lookup_elem(&stats, &k);
	if (!s)
		return 0;
	__u64 n = ++s->count;
	struct in_call *c = slot_of(regs);
	if (!c || nr == exit_nr || nr == exit_group_nr)
		return 0;
	if (c->tick && c->regs != (__u64)regs)
		percpu_count(&counters, SYS_C_DISPLACED);
	c->regs = (__u64)regs;
	c->nr = nr;
	c->tick = bpf_jiffies64() | 1ULL << 63; /* never 0 */
	c->draw = c->draw * 6364136223846793005ULL + 1442695040888963407ULL;
	/* a syscall's first calls on a CPU are all timed (a rare one gets an exact histogram), then
	 * one in time_every, each weighing for the calls it stands for */
	if (n <= time_first) {
		c->weight = 1;
		c->ts_ns = bpf_ktime_get_ns();
	} else if ((c->draw >> 32) < timed_below) {
		c->weight = time_every;
		c->ts_ns = bpf_ktime_get_ns();
	} else {
		c->ts_ns = 0;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ls_sys_exit, struct pt_regs *regs, long ret)
{
	struct in_call *c = slot_of(regs);
	if (!c || !c->tick || c->regs != (__u64)regs)
		return 0;
	__u64 tick0 = c->tick << 1 >> 1, t0 = c->ts_ns, now = 0, d, w = c->weight;
	__s32 nr = c->nr;
	c->tick = 0;
	if (t0) {
		now = bpf_ktime_get_ns();
		d = now - t0;
	} else {
		/* most calls end here: counted on entry, not timed, not failed, not slow */
		__u64 ticks = (bpf_jiffies64() - tick0) & ((1ULL << 63) - 1);
		if (ticks < slow_ticks && ret >= 0)
			return 0;
		d = ticks >= slow_ticks ? ticks * tick_ns : 0;
	}
	__u32 k = nr; /* in range: the entry checked it */
	struct sys_stat *s = bpf_map_lookup_elem(&stats, &k);
	if (!s)
		return 0;
	if (ret < 0)
		s->errors++;
	if (t0) {
		s->timed++;
		s->sum_ns += d * w;
		__u32 slot = d ? log2_u64(d) : 0;
		if (slot < SYS_SLOTS)
			s->slot[slot] += w;
	} else if (!d) {
		return 0;
	}
	if (d > s->max_ns)
		s->max_ns = d;
	if (d < slow_ns && t0)
		return 0;
	struct sys_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		percpu_count(&counters, SYS_C_RING_FULL);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = now ? now : bpf_ktime_get_ns();
	e->delay_ns = d;
	e->nr = k;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = id;
	e->tgid = id >> 32;
	e->ret = ret;
	e->to_tick = !t0;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}
