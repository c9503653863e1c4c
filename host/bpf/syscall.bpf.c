// SPDX-License-Identifier: GPL-2.0
/* Syscall latency, aggregated in the kernel per syscall number: count, errors, sum, maximum and
 * a log2 histogram, for the tasks chosen in the kernel by process, thread or cgroup (a
 * container); the slow calls leave the kernel. Names come from user space. Hooks: tp_btf
 * sys_enter, sys_exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "watch.bpf.h"
#include "syscall.h"

char LICENSE[] SEC("license") = "GPL";

LATSCOPE_LAYOUT(sys_event);

const volatile __u64 slow_ns = 10000000;

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

struct in_call {
	__u64 ts_ns;
	__s64 nr; /* -1: not watched */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
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
static __always_inline bool watched(__u64 id)
{
	__u32 tid = id;
	if (tgid_watched(id >> 32) || bpf_map_lookup_elem(&watch_tid, &tid))
		return true;
	__u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watch_cgroup, &cg) != NULL;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ls_sys_enter, struct pt_regs *regs, long nr)
{
	if (!watched(bpf_get_current_pid_tgid()))
		return 0;
	struct in_call *c = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c) {
		c->nr = nr;
		c->ts_ns = bpf_ktime_get_ns();
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ls_sys_exit, struct pt_regs *regs, long ret)
{
	struct in_call *c = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, 0);
	if (!c || !c->ts_ns)
		return 0;
	__u64 now = bpf_ktime_get_ns(), d = now - c->ts_ns;
	__s64 nr = c->nr;
	c->ts_ns = 0;
	if (nr < 0 || nr >= SYS_MAX)
		return 0;
	__u32 k = nr;
	struct sys_stat *s = bpf_map_lookup_elem(&stats, &k);
	if (!s)
		return 0;
	s->count++;
	s->sum_ns += d;
	if (ret < 0)
		s->errors++;
	if (d > s->max_ns)
		s->max_ns = d;
	__u32 slot = d ? log2_u64(d) : 0;
	if (slot < SYS_SLOTS)
		s->slot[slot]++;
	if (d < slow_ns)
		return 0;
	struct sys_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		percpu_count(&counters, SYS_C_RING_FULL);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = now;
	e->delay_ns = d;
	e->nr = k;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = id;
	e->tgid = id >> 32;
	e->ret = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}
