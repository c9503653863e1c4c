// SPDX-License-Identifier: GPL-2.0
/* Interrupts, aggregated in the kernel: each hard IRQ's handler time per IRQ number and CPU, each
 * soft IRQ vector's time per CPU; only the slow ones leave the kernel. Hard IRQ handlers do not
 * nest and soft IRQs do not nest on one CPU, so one start time per CPU (and vector) is enough.
 * Which IRQs may land on which CPU (smp_affinity) is read by user space from /proc/irq. Hooks:
 * tp_btf irq_handler_entry/exit, softirq_entry/exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "irq.h"

char LICENSE[] SEC("license") = "GPL";

LATSCOPE_LAYOUT(irq_event);

const volatile __u64 hard_outlier_ns = 100000;
const volatile __u64 soft_outlier_ns = 1000000;

/* per CPU: the hard IRQ's start, then one start per soft IRQ vector */
struct irq_start {
	__u64 hard_ns;
	__u64 soft_ns[16]; /* indexed vec & 15: a mask the verifier can follow */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct irq_start);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct irq_key);
	__type(value, struct hist);
} hard SEC(".maps");

/* soft IRQ time: index cpu * IRQ_SOFTIRQS + vector; only that CPU writes it */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IRQ_SOFTIRQS); /* set to possible CPUs x IRQ_SOFTIRQS before load */
	__type(key, __u32);
	__type(value, struct hist);
} soft SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 128 << 10);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IRQ_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static struct hist zero_hist;

/* vec & 15 in a register the verifier sees masked (the compiler would drop a plain mask after a range check) */
static __always_inline __u32 vec_slot(unsigned int vec)
{
	__u32 v = vec;
	asm volatile("%[v] &= 15" : [v] "+r"(v));
	return v;
}

static __always_inline void emit(__u32 kind, __u32 cpu, __u32 id, __u64 now, __u64 d)
{
	struct irq_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		percpu_count(&counters, IRQ_C_RING_FULL);
		return;
	}
	e->ts_ns = now;
	e->delay_ns = d;
	e->kind = kind;
	e->cpu = cpu;
	e->id = id;
	e->pid = bpf_get_current_pid_tgid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(ls_irq_entry, int irq, struct irqaction *action)
{
	__u32 z = 0;
	struct irq_start *s = bpf_map_lookup_elem(&start, &z);
	if (s)
		s->hard_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(ls_irq_exit, int irq, struct irqaction *action, int ret)
{
	__u32 z = 0;
	struct irq_start *s = bpf_map_lookup_elem(&start, &z);
	if (!s || !s->hard_ns)
		return 0;
	__u64 now = bpf_ktime_get_ns(), d = now - s->hard_ns;
	s->hard_ns = 0;
	struct irq_key k = { .irq = irq, .cpu = bpf_get_smp_processor_id() };
	struct hist *h = bpf_map_lookup_elem(&hard, &k);
	if (!h) {
		bpf_map_update_elem(&hard, &k, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hard, &k);
		if (!h)
			return 0;
	}
	hist_add_local(h, d); /* this key's CPU is this CPU */
	if (d >= hard_outlier_ns)
		emit(IRQ_EV_HARD, k.cpu, irq, now, d);
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(ls_softirq_entry, unsigned int vec)
{
	__u32 z = 0;
	struct irq_start *s = bpf_map_lookup_elem(&start, &z);
	if (s && vec < IRQ_SOFTIRQS)
		s->soft_ns[vec_slot(vec)] = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(ls_softirq_exit, unsigned int vec)
{
	__u32 z = 0;
	struct irq_start *s = bpf_map_lookup_elem(&start, &z);
	__u32 v = vec_slot(vec);
	if (!s || vec >= IRQ_SOFTIRQS || !s->soft_ns[v])
		return 0;
	__u64 now = bpf_ktime_get_ns(), d = now - s->soft_ns[v];
	s->soft_ns[v] = 0;
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 i = cpu * IRQ_SOFTIRQS + vec;
	struct hist *h = bpf_map_lookup_elem(&soft, &i);
	if (h)
		hist_add_local(h, d);
	if (d >= soft_outlier_ns)
		emit(IRQ_EV_SOFT, cpu, vec, now, d);
	return 0;
}
