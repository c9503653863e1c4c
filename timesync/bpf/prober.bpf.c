// prober: the manager's timestamps for time-sync probes, taken on the manager's interface as
// close to the wire as it allows. Egress (tc: XDP has no egress hook): a request from our UDP
// socket gets its send time t1 in a map under its seq. Ingress (XDP where the interface takes
// it, else tc): a reply from the responders' port gets its receive time t4, is joined to t1 and
// goes to user space through the ring buffer with t2 and t3; the packet itself is consumed (a
// reply with no send time here goes on, e.g. to another prober). A reply is joined only when it
// comes from the address its probe went to, with the probe's nonce and a valid MAC: anything
// else is counted and dropped, and the probe stays in flight for its true reply. Nothing in the
// packets is rewritten, so checksums stay as they are.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "timesync.h"
#include "siphash.h"

#define IPPROTO_UDP 17

const volatile __u16 port = 0; /* the responders' UDP port, host byte order */
/* The prober's own socket's port, host byte order: only its probes are stamped and only the
 * replies to it taken, so that other probers' probes crossing this interface (a mesh through a
 * gateway, the testbed's root namespace) go on untouched. */
const volatile __u16 src_port = 0;
const volatile __u64 k0 = 0; /* the deployment key, as SipHash's two key words */
const volatile __u64 k1 = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* probes in flight */
	__type(key, __u32);
	__type(value, struct ts_inflight);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TS_P_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ts_counters SEC(".maps");

LATSCOPE_LAYOUT(ts_probe);
LATSCOPE_LAYOUT(ts_sample);
LATSCOPE_LAYOUT(ts_inflight);

static __always_inline void count(__u32 idx)
{
	percpu_count(&ts_counters, idx);
}

SEC("tc")
int ts_probe_out(struct __sk_buff *skb)
{
	__u64 t1 = bpf_ktime_get_ns();
	const __u32 need = sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct ts_probe);
	if (skb->len < need)
		return TC_ACT_UNSPEC;
	bpf_skb_pull_data(skb, need);
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_UNSPEC;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(port) || udp->source != bpf_htons(src_port))
		return TC_ACT_UNSPEC;
	struct ts_probe *p = (void *)(udp + 1);
	if ((void *)(p + 1) > end || p->magic != bpf_htonl(TS_MAGIC) || p->version != TS_VERSION || p->type != TS_REQUEST)
		return TC_ACT_UNSPEC;
	__u32 seq = bpf_ntohl(p->seq);
	struct ts_inflight f = {.t1 = t1, .nonce = p->nonce, .daddr = ip->daddr};
	bpf_map_update_elem(&sent, &seq, &f, BPF_ANY);
	count(TS_P_SENT);
	return TC_ACT_UNSPEC;
}

/* A reply between data and end (Ethernet first): joined to its t1 and handed to user space.
 * Returns 1 when consumed, 0 to let the packet go on. */
static __always_inline int take_reply(void *data, void *end, __u64 t4)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || udp->source != bpf_htons(port) || udp->dest != bpf_htons(src_port))
		return 0;
	struct ts_probe *p = (void *)(udp + 1);
	if ((void *)(p + 1) > end || p->magic != bpf_htonl(TS_MAGIC) || p->version != TS_VERSION || p->type != TS_REPLY) {
		count(TS_P_BAD);
		return 1;
	}
	__u32 seq = bpf_ntohl(p->seq);
	struct ts_inflight *f = bpf_map_lookup_elem(&sent, &seq);
	if (!f) { /* late, duplicate, or another prober's: let it go on */
		count(TS_P_UNKNOWN);
		return 0;
	}
	if (ip->saddr != f->daddr) {
		count(TS_P_BAD_SOURCE);
		return 1;
	}
	__u64 w[TS_REPLY_WORDS];
	__builtin_memcpy(w, p, sizeof(w));
	if (p->nonce != f->nonce || siphash24(w, TS_REPLY_WORDS, k0, k1) != p->mac) {
		count(TS_P_BAD_MAC);
		return 1;
	}
	struct ts_sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		count(TS_P_RING_FULL);
	} else {
		s->t1 = f->t1;
		s->t2 = bpf_be64_to_cpu(p->t2);
		s->t3 = bpf_be64_to_cpu(p->t3);
		s->t4 = t4;
		s->round = bpf_ntohl(p->round);
		s->seq = seq;
		s->saddr = ip->saddr;
		s->pad = 0;
		bpf_ringbuf_submit(s, BPF_RB_NO_WAKEUP);
		count(TS_P_COMPLETED);
	}
	bpf_map_delete_elem(&sent, &seq);
	return 1; /* consumed: the prober reads the ring, not the socket */
}

/* t4 in the driver path, where the interface takes XDP (on veth this also lets a native-mode
 * responder on the peer transmit: KERNEL-FACTS). */
SEC("xdp")
int ts_reply_xdp(struct xdp_md *ctx)
{
	__u64 t4 = bpf_ktime_get_ns();
	return take_reply((void *)(long)ctx->data, (void *)(long)ctx->data_end, t4) ? XDP_DROP : XDP_PASS;
}

/* t4 at tc ingress, where XDP cannot attach (e.g. a bridge). */
SEC("tc")
int ts_reply_tc(struct __sk_buff *skb)
{
	__u64 t4 = bpf_ktime_get_ns();
	if (skb->len < sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct ts_probe))
		return TC_ACT_UNSPEC;
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct ts_probe));
	return take_reply((void *)(long)skb->data, (void *)(long)skb->data_end, t4) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
