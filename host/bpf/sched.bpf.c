// SPDX-License-Identifier: GPL-2.0
/* Scheduler jitter, aggregated in the kernel: run-queue latency per CPU (from a wake-up, and
 * also from a preemption that left the task runnable: the waits wake-up-only tools miss),
 * context switches on the watched CPUs and who took the CPU from a watched task, migrations of
 * watched tasks, and their off-CPU time by reason. Only outliers leave the kernel, through a
 * ring buffer without a wake-up per event. Hooks: tp_btf sched_wakeup, sched_wakeup_new,
 * sched_switch, sched_migrate_task. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "watch.bpf.h"
#include "sched.h"

char LICENSE[] SEC("license") = "GPL";

LATSCOPE_LAYOUT(sched_event);

/* settings (host/sched.ts) */
const volatile bool watch_all_cpus = true;    /* false: only the CPUs set in watch_cpus */
const volatile __u64 watch_cpus[SCHED_MAX_CPUS / 64] = {};
const volatile __u64 runq_outlier_ns = 1000000;
const volatile __u64 offcpu_outlier_ns = 10000000;

#define TASK_RUNNING 0
#define TASK_INTERRUPTIBLE 1
#define TASK_UNINTERRUPTIBLE 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set to the number of possible CPUs before load */
	__type(key, __u32);
	__type(value, struct sched_cpu);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OFF_REASONS);
	__type(key, __u32);
	__type(value, struct hist);
} offcpu SEC(".maps");

/* run-queue latency of each watched thread (only its own switch-ins write it) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct hist);
} thread_runq SEC(".maps");

static struct hist zero_hist;

/* when a runnable task became runnable: a slot per thread id, cheaper than task storage on
 * every wake-up and switch (a slot another task took meanwhile is counted, not measured) */
struct runnable {
	__u32 pid;
	__u32 pad;
	__u64 since_ns; /* 0: not waiting */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SCHED_RUNNABLE_SLOTS);
	__type(key, __u32);
	__type(value, struct runnable);
} runnable SEC(".maps");

/* when a chosen task left its CPU, and why */
struct task_times {
	__u64 off_ns;
	__u32 off_reason;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_times);
} times SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCHED_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline bool cpu_watched(__u32 cpu)
{
	if (watch_all_cpus)
		return true;
	if (cpu >= SCHED_MAX_CPUS)
		return false;
	return (watch_cpus[cpu / 64] >> (cpu % 64)) & 1;
}

static __always_inline bool task_watched(struct task_struct *t)
{
	return tgid_watched(t->tgid);
}

static __always_inline void emit(__u32 kind, __u32 cpu, __u64 now, __u64 delay, struct task_struct *t, struct task_struct *other, __u32 aux)
{
	struct sched_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		percpu_count(&counters, SCHED_C_RING_FULL);
		return;
	}
	e->ts_ns = now;
	e->delay_ns = delay;
	e->kind = kind;
	e->cpu = cpu;
	e->pid = t->pid;
	e->tgid = t->tgid;
	e->prio = t->prio;
	e->aux = aux;
	__builtin_memcpy(e->comm, t->comm, SCHED_TASK_COMM);
	if (other) {
		e->other_pid = other->pid;
		e->other_tgid = other->tgid;
		__builtin_memcpy(e->other_comm, other->comm, SCHED_TASK_COMM);
	} else {
		e->other_pid = aux;
		e->other_tgid = 0;
		__builtin_memset(e->other_comm, 0, SCHED_TASK_COMM);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

static __always_inline struct runnable *runnable_slot(__u32 pid)
{
	__u32 k = (pid * 0x9E3779B1U) >> (32 - SCHED_RUNNABLE_BITS);
	return bpf_map_lookup_elem(&runnable, &k);
}

static __always_inline void mark_runnable(struct task_struct *p, __u64 now)
{
	struct runnable *r = runnable_slot(p->pid);
	if (!r)
		return;
	if (r->since_ns && r->pid != p->pid)
		percpu_count(&counters, SCHED_C_DISPLACED);
	r->pid = p->pid;
	r->since_ns = now;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(ls_sched_wakeup, struct task_struct *p)
{
	mark_runnable(p, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(ls_sched_wakeup_new, struct task_struct *p)
{
	mark_runnable(p, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(ls_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 cpu = bpf_get_smp_processor_id();
	struct sched_cpu *c = bpf_map_lookup_elem(&cpus, &cpu);
	if (!c)
		return 0;
	bool watched_cpu = cpu_watched(cpu);
	bool prev_watched = prev->pid != 0 && task_watched(prev);
	bool next_watched = next->pid != 0 && task_watched(next);
	bool runnable = (prev_state & 0xff) == TASK_RUNNING;

	if (watched_cpu) {
		c->switches++;
		if (runnable)
			c->involuntary++;
		if (prev_watched) {
			c->watched_switches++;
			if (runnable && !next_watched && !watch_all_tasks) {
				c->watched_preempted++;
				emit(SCHED_EV_PREEMPT, cpu, now, 0, prev, next, 0);
			}
		}
		if (!watch_all_tasks && !next_watched && next->pid != 0)
			c->intrusions++;
	}

	/* prev: still runnable means it waits in the run queue from now */
	if (prev->pid != 0 && runnable)
		mark_runnable(prev, now);
	/* a chosen one is off-CPU (off-CPU time is kept for chosen tasks only: with every task
	 * watched it would be all of them) */
	if (!watch_all_tasks && prev_watched) {
		struct task_times *tt = bpf_task_storage_get(&times, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (tt) {
			tt->off_ns = now;
			tt->off_reason = runnable ? OFF_PREEMPTED : (prev_state & TASK_UNINTERRUPTIBLE) ? OFF_BLOCKED : OFF_SLEEP;
		}
	}

	/* next: the end of its wait in the run queue, and of a chosen task's time off the CPU */
	if (next->pid == 0)
		return 0;
	struct runnable *r = runnable_slot(next->pid);
	if (r && r->pid == next->pid && r->since_ns) {
		if (watched_cpu && (watch_all_tasks || next_watched)) {
			__u64 d = now - r->since_ns;
			hist_add_local(&c->runq, d);
			if (!watch_all_tasks) {
				__u32 tid = next->pid;
				struct hist *th = bpf_map_lookup_elem(&thread_runq, &tid);
				if (!th) {
					bpf_map_update_elem(&thread_runq, &tid, &zero_hist, BPF_NOEXIST);
					th = bpf_map_lookup_elem(&thread_runq, &tid);
				}
				if (th)
					hist_add_local(th, d);
			}
			if (d >= runq_outlier_ns)
				emit(SCHED_EV_RUNQ, cpu, now, d, next, prev, 0);
		}
		r->since_ns = 0;
	}
	if (watch_all_tasks || !next_watched)
		return 0;
	struct task_times *tt = bpf_task_storage_get(&times, next, 0, 0);
	if (tt && tt->off_ns) {
		__u64 d = now - tt->off_ns;
		__u32 reason = tt->off_reason < OFF_REASONS ? tt->off_reason : OFF_SLEEP;
		struct hist *h = bpf_map_lookup_elem(&offcpu, &reason);
		if (h)
			hist_add_shared(h, d);
		if (d >= offcpu_outlier_ns)
			emit(SCHED_EV_OFFCPU, cpu, now, d, next, NULL, reason);
		tt->off_ns = 0;
	}
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(ls_sched_migrate, struct task_struct *p, int dest_cpu)
{
	if (watch_all_tasks || !task_watched(p))
		return 0;
	__u32 cpu = dest_cpu;
	struct sched_cpu *c = bpf_map_lookup_elem(&cpus, &cpu);
	if (c)
		__sync_fetch_and_add(&c->migrations_in, 1);
	emit(SCHED_EV_MIGRATE, p->thread_info.cpu, bpf_ktime_get_ns(), 0, p, NULL, dest_cpu);
	return 0;
}
