// responder: answers latscope time-sync probes in the driver path (XDP), away from the
// scheduler. A request to the UDP port carrying the deployment key gets its receive time (t2,
// taken first thing) and transmit time (t3, taken last) written in, addresses and ports
// swapped, and goes back out of the same interface with XDP_TX. Only a well-formed IPv4 UDP
// probe to a unicast address of this host, not fragmented, with the key is answered; anything
// else to the port is counted under one reason and dropped; other traffic passes untouched.
// ts_validate runs the same checks at tc ingress in front of the user-space responder, so both
// modes answer the same set. The clock is CLOCK_MONOTONIC, the clock of the observer's layer
// timestamps, so the offset the manager estimates maps those timestamps directly.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "timesync.h"

#define IPPROTO_UDP 17

const volatile __u16 port = 0;   /* host byte order */
const volatile __u64 key = 0;
/* The responder interface's IPv4 addresses and their broadcast addresses (network order; 0: none). */
const volatile __u32 local_addrs[TS_MAX_ADDRS] = {};
const volatile __u32 bcast_addrs[TS_MAX_ADDRS] = {};
/* Test only: a synthetic clock error, so the estimator can be checked against a known truth:
 * reported = t + offset + (t - epoch) * drift_ppb / 1e9. */
const volatile __s64 test_offset_ns = 0;
const volatile __s64 test_drift_ppb = 0;
const volatile __u64 test_epoch_ns = 0;

LATSCOPE_LAYOUT(ts_probe);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TS_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ts_counters SEC(".maps");

static __always_inline __u64 stamp(__u64 t)
{
	if (!test_offset_ns && !test_drift_ppb)
		return t;
	/* signed arithmetic by hand: BPF v3 has no signed division */
	__u64 el = t - test_epoch_ns;
	__u64 mag = test_drift_ppb < 0 ? -test_drift_ppb : test_drift_ppb;
	__u64 corr = el / 1000000000ULL * mag + el % 1000000000ULL * mag / 1000000000ULL;
	__u64 r = t + (__u64)test_offset_ns;
	return test_drift_ppb < 0 ? r - corr : r + corr;
}

#define NOT_OURS (-1) /* not to the port: pass it on */
#define ANSWER TS_R_ANSWERED

static __always_inline int is_local(__u32 a)
{
	for (int i = 0; i < TS_MAX_ADDRS; i++)
		if (local_addrs[i] && local_addrs[i] == a)
			return 1;
	return 0;
}

static __always_inline int is_bcast(__u32 a)
{
	for (int i = 0; i < TS_MAX_ADDRS; i++)
		if (bcast_addrs[i] && bcast_addrs[i] == a)
			return 1;
	return 0;
}

/* An IPv4 header's checksum is right when its 16-bit ones'-complement sum folds to 0xffff. The
 * caller made sure the 60 bytes a header can have are in the packet. */
static __always_inline int ip_csum_ok(struct iphdr *ip, __u32 hl)
{
	__u32 sum = 0;
	__u16 *w = (void *)ip;
	for (int i = 0; i < 30; i++) /* constant offsets: no bound to prove per word */
		if ((__u32)i * 2 < hl)
			sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Judges a frame (from its Ethernet header): NOT_OURS, ANSWER, or a TS_R_* drop reason. On
 * ANSWER, *probe points at the probe. */
static __always_inline int judge(void *data, void *end, struct ts_probe **probe)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NOT_OURS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
		return NOT_OURS;
	__u32 hl = ip->ihl * 4;
	if (hl < sizeof(*ip))
		return NOT_OURS;
	struct udphdr *udp = (void *)ip + hl;
	if ((void *)(udp + 1) > end) {
		/* a cut UDP header: ours if its destination port made it */
		__be16 *dest = (void *)udp + 2;
		if ((void *)(dest + 1) <= end && *dest == bpf_htons(port))
			return TS_R_TRUNCATED;
		return NOT_OURS;
	}
	if (udp->dest != bpf_htons(port))
		return NOT_OURS;
	if (ip->frag_off & bpf_htons(0x3fff)) /* MF set or an offset */
		return TS_R_FRAGMENT;
	/* shorter than the longest IP header and a probe behind the shortest: no probe fits */
	if ((void *)ip + 60 > end)
		return TS_R_TRUNCATED;
	__u32 frame = end - (void *)ip, tot = bpf_ntohs(ip->tot_len), ulen = bpf_ntohs(udp->len);
	if (ip->version != 4 || ip->ttl == 0 || tot > frame || tot < hl + sizeof(*udp) || ulen != tot - hl || !ip_csum_ok(ip, hl))
		return TS_R_BAD_HEADER;
	if ((eth->h_dest[0] & 1) || !is_local(ip->daddr))
		return TS_R_NOT_LOCAL;
	__u32 s = bpf_ntohl(ip->saddr);
	if ((eth->h_source[0] & 1) || !s || s == 0xffffffff || (s >> 28) == 0xe || (s >> 24) == 127 || is_local(ip->saddr) || is_bcast(ip->saddr) || !udp->source)
		return TS_R_BAD_SOURCE;
	struct ts_probe *p = (void *)(udp + 1);
	if ((void *)(p + 1) > end || ulen < sizeof(*udp) + sizeof(*p))
		return TS_R_TRUNCATED;
	if (p->magic != bpf_htonl(TS_MAGIC) || p->version != TS_VERSION || p->type != TS_REQUEST)
		return TS_R_MALFORMED;
	if (p->key != bpf_cpu_to_be64(key))
		return TS_R_BAD_KEY;
	*probe = p;
	return ANSWER;
}

SEC("xdp")
int ts_respond(struct xdp_md *ctx)
{
	__u64 t2 = bpf_ktime_get_ns();
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ts_probe *p = NULL;
	int v = judge(data, end, &p);
	if (v == NOT_OURS)
		return XDP_PASS;
	if (v != ANSWER || !p) {
		percpu_count(&ts_counters, v == ANSWER ? TS_R_MALFORMED : v);
		return XDP_DROP;
	}
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)p - sizeof(*udp);
	if ((void *)(ip + 1) > end || (void *)udp < (void *)(ip + 1) || (void *)(udp + 1) > end)
		return XDP_DROP;
	unsigned char mac[6];
	__builtin_memcpy(mac, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, mac, 6);
	__u32 a = ip->saddr;
	ip->saddr = ip->daddr; /* the IP checksum is a sum: swapping leaves it valid */
	ip->daddr = a;
	__u16 sp = udp->source;
	udp->source = udp->dest;
	udp->dest = sp;
	udp->check = 0; /* IPv4 allows no UDP checksum; the payload changes below */
	p->type = TS_REPLY;
	p->t2 = bpf_cpu_to_be64(stamp(t2));
	percpu_count(&ts_counters, TS_R_ANSWERED);
	p->t3 = bpf_cpu_to_be64(stamp(bpf_ktime_get_ns()));
	return XDP_TX;
}

/* In front of the user-space responder: what XDP would not answer is dropped and counted here,
 * before the kernel reassembles fragments or its socket sees anything; the rest goes on (the
 * user-space responder counts what it answers). */
SEC("tc")
int ts_validate(struct __sk_buff *skb)
{
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + 60 + sizeof(struct udphdr) + sizeof(struct ts_probe));
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ts_probe *p = NULL;
	int v = judge(data, end, &p);
	if (v == NOT_OURS || v == ANSWER)
		return TC_ACT_UNSPEC;
	percpu_count(&ts_counters, v);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
