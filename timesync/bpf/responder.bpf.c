// responder: answers latscope time-sync probes in the driver path (XDP), away from the
// scheduler. A request to the UDP port from a configured prober, with a valid MAC, gets its
// receive time (t2, taken first thing) and transmit time (t3) written in and a MAC of its own,
// addresses and ports swapped, and goes back out of the same interface with XDP_TX. Only a
// well-formed IPv4 UDP probe to a unicast address of this host, not fragmented, from a prober in
// the peers map, with a valid MAC, issued later than the last one answered from that prober and
// within its rate is answered: forged probes, replays and spoofed sources get nothing. Anything
// else to the port is counted under one reason and dropped; other traffic passes untouched.
// ts_validate runs the stateless checks at tc ingress in front of the user-space responder,
// which does the rest itself, so both modes answer the same set. The clock is CLOCK_MONOTONIC,
// the clock of the observer's layer timestamps, so the offset the manager estimates maps those
// timestamps directly.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "timesync.h"
#include "siphash.h"

#define IPPROTO_UDP 17

const volatile __u16 port = 0;   /* host byte order */
/* The deployment key, as SipHash's two key words. */
const volatile __u64 k0 = 0;
const volatile __u64 k1 = 0;
/* Replies per second to one prober (the bound on what a responder sends anyone). */
const volatile __u32 rate_limit = 50000;
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

/* The probers this responder answers, and what it keeps per prober (filled from user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TS_MAX_PEERS);
	__type(key, __u32);
	__type(value, struct ts_peer);
} peers SEC(".maps");

LATSCOPE_LAYOUT(ts_peer);

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

/* The request's MAC, checked: over its first TS_REQUEST_WORDS words. */
static __always_inline int request_mac_ok(struct ts_probe *p)
{
	__u64 w[TS_REQUEST_WORDS];
	__builtin_memcpy(w, p, sizeof(w));
	return siphash24(w, TS_REQUEST_WORDS, k0, k1) == p->mac;
}

/* Judges a frame (from its Ethernet header) without state: NOT_OURS, ANSWER, or a TS_R_* drop
 * reason. On ANSWER, *probe points at the probe, from a configured prober (*peer), MAC checked. */
static __always_inline int judge(void *data, void *end, struct ts_probe **probe, struct ts_peer **peer)
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
	if (eth->h_dest[0] & 1)
		return TS_R_NOT_LOCAL;
	if (!is_local(ip->daddr))
		return NOT_OURS; /* another host's (this one routes, or bridges on this interface): the kernel's to forward or drop */
	__u32 s = bpf_ntohl(ip->saddr);
	if ((eth->h_source[0] & 1) || !s || s == 0xffffffff || (s >> 28) == 0xe || (s >> 24) == 127 || is_local(ip->saddr) || is_bcast(ip->saddr) || !udp->source)
		return TS_R_BAD_SOURCE;
	struct ts_probe *p = (void *)(udp + 1);
	if ((void *)(p + 1) > end || ulen < sizeof(*udp) + sizeof(*p))
		return TS_R_TRUNCATED;
	if (p->magic != bpf_htonl(TS_MAGIC) || p->version != TS_VERSION || p->type != TS_REQUEST)
		return TS_R_MALFORMED;
	__u32 from = ip->saddr;
	struct ts_peer *known = bpf_map_lookup_elem(&peers, &from);
	if (!known)
		return TS_R_NOT_PROBER;
	if (!request_mac_ok(p))
		return TS_R_BAD_MAC;
	*probe = p;
	*peer = known;
	return ANSWER;
}

/* The stateful checks, in XDP only (the user-space responder keeps its own state): a request
 * issued no later than the last one answered from this prober is a replay; above rate_limit in
 * the current second, no reply. Updates the peer's state for an answered probe. */
static __always_inline int admit(struct ts_probe *p, struct ts_peer *peer, __u64 now)
{
	__u64 issued = bpf_be64_to_cpu(p->issued);
	__u64 last = peer->last_issued;
	/* compare-and-swap: the same request on two CPUs at once is answered once */
	if (issued <= last || __sync_val_compare_and_swap(&peer->last_issued, last, issued) != last)
		return TS_R_REPLAY;
	if (now - peer->window_start >= 1000000000ULL) {
		peer->window_start = now; /* a race here only lets a few more through in one window */
		peer->window_count = 0;
	}
	if (__sync_fetch_and_add(&peer->window_count, 1) >= rate_limit)
		return TS_R_RATE;
	return ANSWER;
}

SEC("xdp")
int ts_respond(struct xdp_md *ctx)
{
	__u64 t2 = bpf_ktime_get_ns();
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ts_probe *p = NULL;
	struct ts_peer *peer = NULL;
	int v = judge(data, end, &p, &peer);
	if (v == NOT_OURS)
		return XDP_PASS;
	if (v == ANSWER && p && peer)
		v = admit(p, peer, t2);
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
	/* The reply's MAC covers t3: its first five words go in before t3 is taken, so only the
	 * last word and the finalisation run between t3 and the transmit. */
	__u64 w[TS_REPLY_WORDS];
	__builtin_memcpy(w, p, sizeof(w));
	struct sip_state sig;
	sip_init(&sig, k0, k1);
#pragma unroll
	for (int i = 0; i < TS_REPLY_WORDS - 1; i++)
		sip_word(&sig, w[i]);
	__u64 t3 = bpf_cpu_to_be64(stamp(bpf_ktime_get_ns()));
	p->t3 = t3;
	sip_word(&sig, t3);
	p->mac = sip_final(&sig, TS_REPLY_WORDS);
	return XDP_TX;
}

/* In front of the user-space responder: what XDP would not answer on the packet alone is dropped
 * and counted here, before the kernel reassembles fragments or its socket sees anything; the
 * rest goes on (the user-space responder checks replays and the rate, and counts what it answers). */
SEC("tc")
int ts_validate(struct __sk_buff *skb)
{
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + 60 + sizeof(struct udphdr) + sizeof(struct ts_probe));
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ts_probe *p = NULL;
	struct ts_peer *peer = NULL;
	int v = judge(data, end, &p, &peer);
	if (v == NOT_OURS || v == ANSWER)
		return TC_ACT_UNSPEC;
	percpu_count(&ts_counters, v);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
