// SPDX-License-Identifier: GPL-2.0
/*
 * The reference of bench/observer-overhead: a naive cross-layer tracer. The same hooks as the
 * observer (latency.bpf.c), but no filtering, no sampling and no in-kernel matching: every
 * event on every hook goes to user space as a 64-byte ring-buffer record (without a wake-up,
 * drained on a timer, as the observer does). What "a program on every hook" costs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "naive_tracer.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} naive_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} naive_lost SEC(".maps");

static __always_inline void emit(__u32 hook, const void *obj, __u32 len)
{
	struct naive_event *e = bpf_ringbuf_reserve(&naive_events, sizeof(*e), 0);
	if (!e) {
		__u32 k = 0;
		__u64 *lost = bpf_map_lookup_elem(&naive_lost, &k);
		if (lost)
			(*lost)++;
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->obj = (__u64)obj;
	e->pid_tgid = bpf_get_current_pid_tgid();
	e->hook = hook;
	e->len = len;
	e->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tracepoint/syscalls/sys_enter_write")
int naive_enter_write(void *ctx) { emit(NH_SYS_SEND, 0, 0); return 0; }
SEC("tracepoint/syscalls/sys_enter_writev")
int naive_enter_writev(void *ctx) { emit(NH_SYS_SEND, 0, 0); return 0; }
SEC("tracepoint/syscalls/sys_enter_sendto")
int naive_enter_sendto(void *ctx) { emit(NH_SYS_SEND, 0, 0); return 0; }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int naive_enter_sendmsg(void *ctx) { emit(NH_SYS_SEND, 0, 0); return 0; }

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(naive_tcp_send, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{ emit(NH_TCP_SEND, sk, size_goal); return 0; }

SEC("cgroup_skb/egress")
int naive_ip_out(struct __sk_buff *skb) { emit(NH_IP_OUT, 0, skb->len); return 1; }

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(naive_dev_out, struct sk_buff *skb, struct net_device *dev)
{ emit(NH_DEV_OUT, skb, skb->len); return 0; }

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(naive_dev_in, struct sk_buff *skb)
{ emit(NH_DEV_IN, skb, skb->len); return 0; }

SEC("tc")
int naive_ip_in(struct __sk_buff *skb) { emit(NH_IP_IN, 0, skb->len); return 0; /* TC_ACT_OK */ }

SEC("tp_btf/tcp_probe")
int BPF_PROG(naive_tcp_recv, struct sock *sk, struct sk_buff *skb)
{ emit(NH_TCP_RECV, sk, skb->len); return 0; }

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(naive_sock_recv, struct sk_buff *skb, int len)
{ emit(NH_SOCK_RECV, skb, len); return 0; }
