// responder: answers latscope time-sync probes in the driver path (XDP), away from the
// scheduler. A request to the UDP port carrying the deployment key gets its receive time (t2,
// taken first thing) and transmit time (t3, taken last) written in, addresses and ports
// swapped, and goes back out of the same interface with XDP_TX. Everything else to the port is
// counted and dropped; other traffic passes untouched. IPv4.
// The clock is CLOCK_MONOTONIC, the clock of the observer's layer timestamps, so the offset
// the manager estimates maps those timestamps directly.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "timesync.h"

#define IPPROTO_UDP 17

const volatile __u16 port = 0;   /* host byte order */
const volatile __u64 key = 0;
/* Test only: a synthetic clock error, so the estimator can be checked against a known truth:
 * reported = t + offset + (t - epoch) * drift_ppb / 1e9. */
const volatile __s64 test_offset_ns = 0;
const volatile __s64 test_drift_ppb = 0;
const volatile __u64 test_epoch_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TS_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ts_counters SEC(".maps");

LATSCOPE_LAYOUT(ts_probe);

static __always_inline int drop(__u32 reason)
{
	percpu_count(&ts_counters, reason);
	return XDP_DROP;
}

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

SEC("xdp")
int ts_respond(struct xdp_md *ctx)
{
	__u64 t2 = bpf_ktime_get_ns();
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	__u32 hl = ip->ihl * 4;
	if (hl < sizeof(*ip))
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + hl;
	if ((void *)(udp + 1) > end) {
		/* a cut UDP header: ours if its destination port made it */
		__be16 *dest = (void *)udp + 2;
		if ((void *)(dest + 1) <= end && *dest == bpf_htons(port))
			return drop(TS_R_TRUNCATED);
		return XDP_PASS;
	}
	if (udp->dest != bpf_htons(port))
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff)) /* a fragment: MF set or an offset */
		return drop(TS_R_MALFORMED);
	struct ts_probe *p = (void *)(udp + 1);
	if ((void *)(p + 1) > end || bpf_ntohs(udp->len) < sizeof(*udp) + sizeof(*p) ||
	    bpf_ntohs(ip->tot_len) < hl + sizeof(*udp) + sizeof(*p))
		return drop(TS_R_TRUNCATED);
	if (p->magic != bpf_htonl(TS_MAGIC) || p->version != TS_VERSION || p->type != TS_REQUEST)
		return drop(TS_R_MALFORMED);
	if (p->key != bpf_cpu_to_be64(key))
		return drop(TS_R_BAD_KEY);

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

char LICENSE[] SEC("license") = "GPL";
