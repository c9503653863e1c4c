// One small program per attach type the addon supports, each counting the packets of one port
// (and, for the global tracepoints, one network namespace). Used by test/native.test.ts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "hook_kinds.h"

const volatile __u32 netns_ino = 0; /* 0: any namespace */
const volatile __u16 port = 0;      /* host order */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int ours_dev(const struct net_device *dev)
{
	return !netns_ino || dev_netns_ino(dev) == netns_ino;
}

SEC("tp/net/net_dev_queue")
int tp_dev_queue(struct trace_event_raw_net_dev_template *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->skbaddr;
	if (ours_dev(BPF_CORE_READ(skb, dev)))
		count_add(&counts, HK_TRACEPOINT, 1);
	return 0;
}

SEC("raw_tp/net_dev_queue")
int raw_dev_queue(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	if (ours_dev(BPF_CORE_READ(skb, dev)))
		count_add(&counts, HK_RAW_TP, 1);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(btf_dev_queue, struct sk_buff *skb)
{
	if (ours_dev(skb->dev))
		count_add(&counts, HK_TP_BTF, 1);
	return 0;
}

/* UDP or TCP destination/source port of an IPv4 packet starting at data. */
static __always_inline int l4_ports(void *data, void *end, __u16 *sport, __u16 *dport)
{
	struct iphdr *ip = data;
	if ((void *)(ip + 1) > end || ip->version != 4)
		return -1;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return -1;
	__u16 *ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > end)
		return -1;
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	return 0;
}

static __always_inline int eth_matches(void *data, void *end, int either)
{
	struct ethhdr *eth = data;
	__u16 sp, dp;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (l4_ports(eth + 1, end, &sp, &dp))
		return 0;
	return dp == port || (either && sp == port);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	if (eth_matches((void *)(long)ctx->data, (void *)(long)ctx->data_end, 0))
		count_add(&counts, HK_XDP, 1);
	return XDP_PASS;
}

SEC("tc")
int tc_ingress_count(struct __sk_buff *skb)
{
	if (eth_matches((void *)(long)skb->data, (void *)(long)skb->data_end, 0))
		count_add(&counts, HK_TC_INGRESS, 1);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_egress_count(struct __sk_buff *skb)
{
	if (eth_matches((void *)(long)skb->data, (void *)(long)skb->data_end, 1))
		count_add(&counts, HK_TC_EGRESS, 1);
	return TC_ACT_UNSPEC;
}

/* cgroup_skb data starts at the IP header; read it with bpf_skb_load_bytes. */
static __always_inline int cg_matches(struct __sk_buff *skb)
{
	__u8 buf[64];
	__u16 sp, dp;
	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(struct iphdr) + 4))
		return 0;
	if (l4_ports(buf, buf + sizeof(struct iphdr) + 4, &sp, &dp))
		return 0;
	return sp == port || dp == port;
}

SEC("cgroup_skb/ingress")
int cg_ingress_count(struct __sk_buff *skb)
{
	if (cg_matches(skb))
		count_add(&counts, HK_CGROUP_INGRESS, 1);
	return 1;
}

SEC("cgroup_skb/egress")
int cg_egress_count(struct __sk_buff *skb)
{
	if (cg_matches(skb))
		count_add(&counts, HK_CGROUP_EGRESS, 1);
	return 1;
}

SEC("sockops")
int sockops_count(struct bpf_sock_ops *skops)
{
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (skops->local_port == port || bpf_ntohl(skops->remote_port) == port)
		count_add(&counts, HK_SOCKOPS, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
