// Test-only: induced loss. XDP on a receiver's interface that drops every `every`-th TCP data
// segment to `port`, at most `max_drops` times, and counts what it dropped.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"

const volatile __u16 port = 0;
const volatile __u32 every = 50;
const volatile __u32 max_drops = 10;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* 0: data segments seen, 1: dropped */
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

SEC("xdp")
int drop_some(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != 6)
		return XDP_PASS;
	struct tcphdr *th = (void *)ip + ip->ihl * 4;
	if ((void *)(th + 1) > end || th->dest != bpf_htons(port))
		return XDP_PASS;
	if (bpf_ntohs(ip->tot_len) <= ip->ihl * 4 + th->doff * 4)
		return XDP_PASS; /* no payload */
	__u32 k0 = 0, k1 = 1;
	__u64 *seen = bpf_map_lookup_elem(&stats, &k0), *dropped = bpf_map_lookup_elem(&stats, &k1);
	if (!seen || !dropped)
		return XDP_PASS;
	__u64 n = __sync_fetch_and_add(seen, 1) + 1;
	if (n % every == 0 && *dropped < max_drops) {
		__sync_fetch_and_add(dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
