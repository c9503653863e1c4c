// The observer's liveness probe: counts packets and bytes leaving (net_dev_queue) and entering
// (netif_receive_skb) the devices of its own network namespace, in per-CPU counters.
// tp_btf hooks need no tracefs and give the typed skb directly.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "netcount.h"

const volatile __u32 netns_ino = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void account(struct sk_buff *skb, __u32 packets, __u32 bytes)
{
	if (netns_ino && dev_netns_ino(skb->dev) != netns_ino)
		return;
	__u64 *v = bpf_map_lookup_elem(&counters, &packets);
	if (v)
		*v += 1; /* per-CPU: no atomics needed */
	v = bpf_map_lookup_elem(&counters, &bytes);
	if (v)
		*v += skb->len;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(count_tx, struct sk_buff *skb)
{
	account(skb, NC_TX_PACKETS, NC_TX_BYTES);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(count_rx, struct sk_buff *skb)
{
	account(skb, NC_RX_PACKETS, NC_RX_BYTES);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
