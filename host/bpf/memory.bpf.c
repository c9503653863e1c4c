// SPDX-License-Identifier: GPL-2.0
/* Memory stalls, aggregated in the kernel: page faults of the watched tasks (user and kernel
 * mode), TLB flushes by reason (remote ones are shootdowns: an IPI that stops other CPUs),
 * and the time tasks spend stalled in direct compaction and direct reclaim, with the slow ones
 * leaving the kernel. Minor and major are told apart by user space from the kernel's own fault
 * counters (/proc/PID/stat, /proc/vmstat): the fault tracepoint fires before the kernel knows.
 * Hooks: tp_btf page_fault_user, page_fault_kernel, tlb_flush, mm_compaction_begin/end,
 * mm_vmscan_direct_reclaim_begin/end. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "watch.bpf.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

LATSCOPE_LAYOUT(mem_event);

const volatile __u64 stall_outlier_ns = 1000000;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mem_cpu);
} cpu_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEM_STALLS);
	__type(key, __u32);
	__type(value, struct hist);
} stalls SEC(".maps");

/* when each thread entered a stall (compaction and reclaim do not nest) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} stall_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEM_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline bool current_watched(void)
{
	return tgid_watched(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline struct mem_cpu *stats(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&cpu_stats, &z);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(ls_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	struct mem_cpu *c;
	if (current_watched() && (c = stats()))
		c->faults_user++;
	return 0;
}

SEC("tp_btf/page_fault_kernel")
int BPF_PROG(ls_fault_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	struct mem_cpu *c;
	if (current_watched() && (c = stats()))
		c->faults_kernel++;
	return 0;
}

SEC("tp_btf/tlb_flush")
int BPF_PROG(ls_tlb_flush, int reason, unsigned long pages)
{
	struct mem_cpu *c = stats();
	if (!c)
		return 0;
	if (reason >= 0 && reason < MEM_TLB_REASONS)
		c->tlb[reason & 7]++;
	c->tlb_pages += pages;
	return 0;
}

static __always_inline void stall_begin(void)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&stall_start, &tid, &now, BPF_ANY);
}

static __always_inline void stall_end(__u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	__u64 *t0 = bpf_map_lookup_elem(&stall_start, &tid);
	if (!t0)
		return;
	__u64 now = bpf_ktime_get_ns(), d = now - *t0;
	bpf_map_delete_elem(&stall_start, &tid);
	struct hist *h = bpf_map_lookup_elem(&stalls, &kind);
	if (h)
		hist_add_shared(h, d);
	if (d < stall_outlier_ns)
		return;
	struct mem_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		percpu_count(&counters, MEM_C_RING_FULL);
		return;
	}
	e->ts_ns = now;
	e->delay_ns = d;
	e->kind = kind;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = tid;
	e->tgid = id >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/mm_compaction_begin")
int BPF_PROG(ls_compaction_begin)
{
	stall_begin();
	return 0;
}

SEC("tp_btf/mm_compaction_end")
int BPF_PROG(ls_compaction_end)
{
	stall_end(MEM_STALL_COMPACTION);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(ls_reclaim_begin)
{
	stall_begin();
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(ls_reclaim_end)
{
	stall_end(MEM_STALL_RECLAIM);
	return 0;
}
