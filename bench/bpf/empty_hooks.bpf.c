// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of bench/observer-overhead: empty programs on exactly the observer's hooks
 * (latency.bpf.c). What the hooks cost the traffic before any program does any work; no
 * filtering or matching can go below it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(empty_tcp_send, struct sock *sk) { return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(empty_tcp_recv, struct sock *sk) { return 0; }
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(empty_sock_recv, struct sk_buff *skb) { return 0; }
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(empty_sock_state, struct sock *sk) { return 0; }
SEC("cgroup_skb/egress")
int empty_ip_out(struct __sk_buff *ctx) { return 1; }
SEC("cgroup_skb/ingress")
int empty_ip_in(struct __sk_buff *ctx) { return 1; }
SEC("sockops")
int empty_sockops(struct bpf_sock_ops *ops) { return 1; }
SEC("tc")
int empty_dev_out(struct __sk_buff *ctx) { return -1; /* TC_ACT_UNSPEC */ }
SEC("tc")
int empty_dev_in(struct __sk_buff *ctx) { return -1; }
