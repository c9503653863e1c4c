// latency: per-segment cross-layer timestamps for TCP on watched ports.
//
// Hooks, chosen from what fires on this kernel (KERNEL-FACTS.md) and from what they cost the
// traffic they do NOT watch (bench/observer-overhead):
//   transmit  socket  tp_btf/tcp_sendmsg_locked: the bytes are queued on the socket (write_seq
//                     gives the range);
//             TCP     no hook of its own: __tcp_transmit_skb stamps each segment with its
//                     departure time (skb->tstamp, CLOCK_MONOTONIC, the EDT model), which the
//                     IP hook reads;
//             IP      cgroup_skb/egress: runs in ip_finish_output, after routing and netfilter;
//             device  tc egress on each observed interface (veth, bridge, bridge port, outer
//                     interface): the skb enters the device's queue.
//   receive   device  tc ingress on each observed interface, right after netif_receive_skb;
//             IP      cgroup_skb/ingress: the socket filter in tcp_v4_rcv / tcp_v6_rcv, after the
//                     IP layer and the socket lookup;
//             TCP     tp_btf/tcp_probe: tcp_rcv_established, including the socket backlog path;
//             socket  tp_btf/skb_copy_datagram_iovec: the application copies the bytes out.
//   flows     sockops (established) creates a flow's state before its first segment;
//             tp_btf/inet_sock_set_state (TCP_CLOSE) removes it.
// Why not the others: syscall tracepoints put every syscall of every task on the slow path, and
// a second program on a tracepoint (a second observer on one kernel) costs the tracepoint its
// direct call, so global tracepoints are kept to the three TCP ones that only see TCP. tc runs
// only on the observed interfaces, once per namespace. kprobes and fentry are unavailable here.
// Every hook leaves at once for other ports (a one-byte table lookup).
//
// Matching: flows are keyed by their namespace and 5-tuple (one observer can watch every
// namespace of a kernel, and both ends of a connection may be on it); inside a flow, an event
// covers a sequence range [start, end) and is joined to the newest event of the previous layer
// that holds its last byte, never by skb address alone (the address, on another device, only
// tells a device hop from a first crossing). GSO/GRO skbs are ranges too. Each layer keeps its
// last events per flow (the first layer more: bytes wait there for a slow reader or a full
// send window).
// Sampling: byte k*size-1 of a stream (k >= 1) is a sample, so both ends of a connection pick
// the same bytes without talking; an event holding a sample byte goes to the ring buffer. The
// interval rule marks one more byte per flow and direction when `interval_ns` passed.
// Histograms (hist_mode): every matched segment (ALL); the sampled ones only (SAMPLES); or
// (SCALED, the default of the configuration) the segments holding a histogram byte, one every
// 2^hist_shift bytes of the stream, each counted as the 2^hist_shift / length segments it stands
// for. A byte rule again, so that every layer on both ends picks the same segments. With
// SAMPLES and SCALED only the segments timed are kept and matched (on the byte that picked
// them), and every other segment leaves the first hook on its skb's way after the flow lookup
// and the sampling decision, and the later ones at that verdict (the memo, below): no clock
// read (~37 ns here, the largest part of a hook's work), no matching.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "latscope.bpf.h"
#include "latency.h"
#include "flow_hash.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_CLOSE 7
/* Per flow, a ring of recent events for each layer that a later layer joins to: the first
 * (transmit: socket; receive: TCP, where bytes wait longest), IP and device. */
#define RING_FIRST 0
#define RING_IP 1
#define RING_DEV 2
/* Events kept per flow at the first layer: a bulk sender queues many writes (a 4 MiB send
 * buffer: 64 of 64 KiB) before TCP sends their bytes, and the write of a segment's first byte
 * must still be there when it goes (16 bytes each: a range and a time; the passes of one
 * sendmsg's copy loop make one event, see lt_tcp_send). */
#define LT_FIRST_RING 256
#define LT_RING 8        /* ... at the IP and device layers */
#define LT_EVS (2 * LT_RING)
#define FIRST_RETRANS (1ULL << 63) /* in lt_first.ts: LT_F_RETRANS (CLOCK_MONOTONIC never reaches bit 63) */
#define HOP_WINDOW_NS 10000000ULL /* a device hop follows the previous crossing within 10 ms */

/* The observer runs all of each hook's work (stage 4). bench/observer-overhead builds this file
 * again with less of it (bench/bpf/latency_stage*.bpf.c) to measure what each part costs:
 *   1: the hook's test for a watched segment (port table, headers);
 *   2: + the flow's state (flow table lookup), the sampling decision and the clock;
 *   3: + matching (ring search and push) and sample records;
 *   4: + histograms and their counters. */
#ifndef LT_STAGE
#define LT_STAGE 4
#endif
#define STAGE_END(n, ret) do { if (LT_STAGE < (n)) return ret; } while (0)

/* Settings, written before load, in this order in .rodata: the cgroup's first, read only when a
 * flow is made, so that the ones every segment reads share one cache line (the map's values
 * start 8 bytes before one). */
/* Only the sockets of one cgroup v2 subtree (sampling_info.yaml `cgroup`): its id (the inode of
 * its directory) and its depth below the root; 0: every socket. The cgroup programs are attached
 * there, and the other hooks give a socket outside it no flow state, so they leave its segments
 * at the flow lookup. */
const volatile __u64 cgroup_id = 0;
const volatile __u32 cgroup_level = 0;
const volatile __u32 netns_ino = 0;       /* 0: every namespace */
const volatile __u32 sample_size = 65536; /* bytes between samples; 0: size rule off */
/* floor(2^32 / sample_size), set with it (0: not set, divide): sample_div's multiply */
const volatile __u64 sample_recip = 0;
const volatile __u64 interval_ns = 0;     /* 0: interval rule off */
const volatile __u8 filter_retrans = 0;
/* What the histograms time, LT_HIST_*: with SAMPLES or SCALED a segment that is not timed meets
 * no clock and no matching, so the observer pays per timed segment, not per hook (the
 * receiver's first device still tests it for retransmission, and reads the clock if the
 * interval rule is on). SCALED times the segments holding a histogram byte, stream offset o
 * with (o + 1) % 2^hist_shift == 0: a segment of length L < 2^hist_shift is picked with
 * probability L / 2^hist_shift, and adds 2^hist_shift / L segments to its bucket. */
const volatile __u8 hist_mode = LT_HIST_ALL;
const volatile __u8 hist_shift = 12;
const volatile __u8 port_index[65536];    /* port -> 1 + histogram slot; 0: not watched */

struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 family; /* 0: a free slot of the flow table */
	__u8 dir;    /* LT_DIR_*: both ends of a connection can be on one kernel */
	__u8 pad[2];
};

/* An event of the first layer: what the later layer needs of it, no more. */
struct lt_first {
	__u32 start, end;
	__u64 ts; /* | FIRST_RETRANS */
};

struct lt_ev {
	__u32 start, end;
	__u64 ts;
	__u64 aux; /* device: skb address */
	__u32 flags;
	__u32 dev; /* device: which one (dev_key) */
};

/* What every hook reads for every segment comes first: with the key, one cache line (below). */
struct flow_state {
	__u32 base;     /* sequence number of stream byte 0 */
	__u32 isample;  /* interval-rule sample byte */
	__u8 isample_set;
	__u8 port_slot;
	__u8 dir;
	__u8 pad;
	__u32 max_end;  /* highest end seen at the first wire layer (retransmission test) */
	__u64 last_sample; /* rule_now() of the last sample */
	__u8 head[4];   /* ring heads (RING_*) */
	__u32 netns;    /* the socket's namespace inode */
	__u32 last_dev_end; /* hist_mode != ALL, receive: the last segment at a device, to tell */
	__u64 last_dev_skb; /* a hop from a first crossing without the device ring */
	__u64 send_msg;     /* transmit: the msghdr of the last pass of tcp_sendmsg's copy loop, and */
	__u32 send_mark;    /* write_seq + the bytes it had left to copy (constant over one call) */
	__u32 pad2;
	struct lt_ev ev[LT_EVS]; /* the rings of the IP and device layers */
	struct lt_first first[LT_FIRST_RING]; /* the first layer's ring */
};

/* The flow table: set-associative, FLOW_WAYS slots per set, a set picked by our own hash of the
 * key. Every watched segment looks its flow up at every hook, and an array lookup with our
 * hash costs ~5 ns here against ~27 ns for a hash map's (bench: bpftool prog run, 40-byte
 * keys). A new flow in a full set takes the place of the one sampled least recently (counted);
 * a slot being reused while another CPU still handles the old flow's last segment can give
 * that segment a wrong match, as the rings' unlocked updates can: rare, and never a record
 * of the wrong flow (records carry the key from the packet or socket). */
#define FLOW_WAYS 4
#define FLOW_SETS 2048 /* 8192 flows watched at once, 2.7 KiB each */

/* A slot's size is a multiple of a cache line, and an array map's values start 8 bytes before
 * one (struct bpf_array's header is 312 bytes here): the key and the state's first fields then
 * share a line, the one a segment that holds no sample touches. */
struct flow_slot {
	__u64 owner; /* 0: free; a new flow claims a free slot with a compare-and-swap */
	struct flow_key key;
	struct flow_state st;
} __attribute__((aligned(64)));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOW_SETS * FLOW_WAYS);
	__type(key, __u32);
	__type(value, struct flow_slot);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LT_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LT_MAX_PORTS * LT_PAIRS * LT_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

/* A flow state holds one 5-tuple in one direction; templates for building new ones live here
 * (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_slot);
} scratch SEC(".maps");

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

LATSCOPE_LAYOUT(lt_event);

static __always_inline void count(__u32 idx)
{
	percpu_count(&counters, idx);
}

static __always_inline __u32 port_slot(__u16 sport, __u16 dport)
{
	__u32 s = port_index[dport];
	return s ? s : port_index[sport];
}

static __always_inline int before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int holds(const struct lt_ev *e, __u32 byte)
{
	return e->ts && byte - e->start < e->end - e->start;
}

static __always_inline __u32 ring_base(__u32 ring)
{
	return ring == RING_IP ? 0 : LT_RING;
}

/* The newest event of the IP or device ring whose range holds `byte` (ring is a constant at each call). */
static __always_inline struct lt_ev *find(struct flow_state *st, __u32 ring, __u32 byte)
{
	__u32 h = st->head[ring & 3], base = ring_base(ring);
	for (__u32 i = 1; i <= LT_RING; i++) {
		__u32 idx = base + ((h - i) & (LT_RING - 1));
		if (idx >= LT_EVS)
			break;
		struct lt_ev *e = &st->ev[idx];
		if (holds(e, byte))
			return e;
	}
	return NULL;
}

/* The time of the newest first-layer event whose range holds `byte` (0: none), its flags in *flags. */
static __always_inline __u64 find_first(struct flow_state *st, __u32 byte, __u32 *flags)
{
	__u32 h = st->head[RING_FIRST];
	for (__u32 i = 1; i <= LT_FIRST_RING; i++) {
		struct lt_first *e = &st->first[(h - i) & (LT_FIRST_RING - 1)];
		if (e->ts && byte - e->start < e->end - e->start) {
			*flags = e->ts & FIRST_RETRANS ? LT_F_RETRANS : 0;
			return e->ts & ~FIRST_RETRANS;
		}
	}
	return 0;
}

static __always_inline void push_first(struct flow_state *st, __u32 start, __u32 end, __u64 ts, __u32 flags)
{
	__u32 h = st->head[RING_FIRST];
	struct lt_first *e = &st->first[h & (LT_FIRST_RING - 1)];
	e->start = start;
	e->end = end;
	e->ts = ts | (flags & LT_F_RETRANS ? FIRST_RETRANS : 0);
	st->head[RING_FIRST] = h + 1;
}

/* The newest device event of this skb holding `byte`, within the hop window. */
static __always_inline struct lt_ev *find_hop(struct flow_state *st, __u64 skb, __u32 dev, __u32 byte, __u64 now)
{
	/* a hop runs in the call chain of the crossing before it (a bridge forwarding to its
	 * port), so that crossing is the flow's newest device event, or next to newest when
	 * another CPU got in between */
	__u32 h = st->head[RING_DEV];
	for (__u32 i = 1; i <= 2; i++) {
		struct lt_ev *e = &st->ev[LT_RING + ((h - i) & (LT_RING - 1))];
		/* another device: a new skb at a freed one's address, holding the same bytes (a
		 * retransmission), is not a hop */
		if (e->aux == skb && e->dev != dev && holds(e, byte) && now - e->ts < HOP_WINDOW_NS)
			return e;
	}
	return NULL;
}

static __always_inline void push(struct flow_state *st, __u32 ring, __u32 start, __u32 end, __u64 ts, __u64 aux, __u32 dev, __u32 flags)
{
	__u32 h = st->head[ring & 3];
	__u32 idx = ring_base(ring) + (h & (LT_RING - 1));
	if (idx >= LT_EVS)
		return;
	struct lt_ev *e = &st->ev[idx];
	e->start = start;
	e->end = end;
	e->ts = ts;
	e->aux = aux;
	e->dev = dev;
	e->flags = flags;
	st->head[ring & 3] = h + 1;
}

/* Records the delay from the previous layer's time `from` (0: not found) to `now` into the
 * histogram of `pair`, `weight` LT_HIST_UNITs (hist_weight; 0: not in the histograms nor their
 * counters); `flags` are the segment's (LT_F_RETRANS keeps it out, if so set). */
static __always_inline void account(struct flow_state *st, __u32 pair, __u64 from, __u64 now, __u32 flags, __u32 weight)
{
	STAGE_END(4, );
	if (!weight)
		return;
	if (!from) {
		count(LT_C_UNMATCHED + pair);
		return;
	}
	count(LT_C_MATCHED + pair);
	if (filter_retrans && (flags & LT_F_RETRANS)) {
		count(LT_C_EXCLUDED + pair);
		return;
	}
	__u64 d = now > from ? now - from : 0;
	__u32 b = log2_u64(d);
	if (b >= LT_BUCKETS)
		b = LT_BUCKETS - 1;
	__u32 idx = ((__u32)(st->port_slot - 1) % LT_MAX_PORTS * LT_PAIRS + pair) * LT_BUCKETS + b;
	__u64 *v = bpf_map_lookup_elem(&hist, &idx);
	if (v)
		*v += weight;
}

/* off / sample_size (sample_size > 0) without a division: it runs on every matched segment at
 * every hook, and a DIV takes ~25 cycles. floor(off * sample_recip / 2^32) is the quotient or
 * one less (sample_recip is at most 2^32 / size below it); one step corrects it. */
static __always_inline __u32 sample_div(__u32 off)
{
	if (!sample_recip) /* (known at load: the verifier drops the branch not taken) */
		return off / sample_size;
	__u32 q = ((__u64)off * sample_recip) >> 32;
	if (off - q * sample_size >= sample_size)
		q++;
	return q;
}

/* Whether [start, end) holds a sample byte: stream offset o with (o + 1) % size == 0, or the
 * interval-rule byte. */
static __always_inline __u32 sampled(struct flow_state *st, __u32 start, __u32 end)
{
	if (st->isample_set && st->isample - start < end - start)
		return LT_F_INTERVAL;
	if (!sample_size)
		return 0;
	__u32 off = start - st->base;
	__u64 next = ((__u64)sample_div(off) + 1) * sample_size - 1; /* first sample offset >= off */
	return next < (__u64)off + (__u32)(end - start) ? 1 : 0;
}

/* Whether [start, end) holds a histogram byte (SCALED): some (o + 1) % 2^hist_shift == 0. A
 * shift, not a division, for the test every segment meets. */
static __always_inline int hist_byte(struct flow_state *st, __u32 start, __u32 end)
{
	__u32 off = start - st->base;
	return ((off + (end - start)) >> hist_shift) != (off >> hist_shift);
}

/* Whether a hook times this segment: reads the clock, matches it, keeps it in its ring. */
static __always_inline int timed(struct flow_state *st, __u32 start, __u32 end, __u32 hit)
{
	if (hist_mode == LT_HIST_ALL || hit)
		return 1;
	return hist_mode == LT_HIST_SCALED && hist_byte(st, start, end);
}

/* What a timed segment adds to its bucket, in LT_HIST_UNITs: one segment; in SCALED the
 * segments it stands for, 2^hist_shift / its length (1 from 2^hist_shift bytes on), and 0 for a
 * segment timed only because it holds a sample byte (outside the scaled selection). */
static __always_inline __u32 hist_weight(struct flow_state *st, __u32 start, __u32 end)
{
	if (hist_mode != LT_HIST_SCALED)
		return LT_HIST_UNIT;
	if (!hist_byte(st, start, end))
		return 0;
	__u32 len = end - start;
	return len >= (1U << hist_shift) ? LT_HIST_UNIT : ((__u32)LT_HIST_UNIT << hist_shift) / len;
}

/* The byte a layer's event is matched on: the segment's last byte when every segment is
 * matched; else (only timed events are kept) a byte that got it timed at every layer: the
 * interval-rule byte, the last histogram byte (SCALED: the nearest to the last byte, so that a
 * segment of many writes is matched to one of its last ones, as with every segment), or the
 * sample byte. */
static __always_inline __u32 match_byte(struct flow_state *st, __u32 start, __u32 end, __u32 hit)
{
	if (hist_mode == LT_HIST_ALL)
		return end - 1;
	if (hit & LT_F_INTERVAL)
		return st->isample;
	__u32 off = start - st->base;
	if (hist_mode == LT_HIST_SCALED && hist_byte(st, start, end))
		return st->base + (((off + (end - start)) >> hist_shift) << hist_shift) - 1;
	return st->base + (sample_div(off) + 1) * sample_size - 1; /* hit by size: sample_size > 0 */
}

extern unsigned int CONFIG_HZ __kconfig __weak;

/* The interval rule's clock (and the flow table's "least recently sampled"): the kernel's tick
 * count where the kernel's configuration tells its rate (jiffies: 1 to 10 ms a tick, ample for
 * a rule of seconds), else the clock. It runs on every segment at the first layer of each
 * direction, where the clock (~35 ns) is the largest part of an untimed segment's cost. */
static __always_inline __u64 rule_now(void)
{
	return CONFIG_HZ ? bpf_jiffies64() : bpf_ktime_get_ns();
}

/* Whether `elapsed` (rule_now()'s unit) is shorter than interval_ns. In ticks, multiplied out
 * (elapsed / HZ s < interval_ns / 1e9 s), not divided: a 64-bit DIV costs ~40 cycles on every
 * first-layer segment; at 2^32 ticks (49 days at 1000 Hz) and more, the product would overflow,
 * and the interval has long passed. */
static __always_inline int within_interval(__u64 elapsed)
{
	if (!CONFIG_HZ)
		return elapsed < interval_ns;
	return elapsed < (1ULL << 32) && elapsed * 1000000000ULL < interval_ns * CONFIG_HZ;
}

/* The interval rule, at the first layer of a direction: mark this range's last byte when the
 * flow had no sample for interval_ns. Returns the range's sampled() after the rule. */
static __always_inline __u32 interval_rule(struct flow_state *st, __u32 end, __u32 hit)
{
	if (hit) {
		st->last_sample = rule_now();
	} else if (interval_ns) {
		__u64 now = rule_now();
		if (within_interval(now - st->last_sample))
			return 0;
		st->isample = end - 1;
		st->isample_set = 1;
		st->last_sample = now;
		return LT_F_INTERVAL;
	}
	return hit;
}

static __always_inline void emit(const struct flow_key *k, struct flow_state *st, __u8 layer, __u32 start, __u32 end,
				 __u64 ts, __u64 tcp_ns, __u32 flags, __u32 ifindex, __u32 netns)
{
	struct lt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(LT_C_RING_FULL);
		return;
	}
	e->ts_ns = ts;
	e->tcp_ns = tcp_ns;
	e->start_seq = start;
	e->end_seq = end;
	e->base_seq = st->base;
	e->isample_seq = st->isample;
	e->ifindex = ifindex;
	e->netns = netns;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->cpu = bpf_get_smp_processor_id();
	e->layer = layer;
	e->dir = st->dir;
	e->flags = flags;
	e->family = k->family;
	e->sport = k->sport;
	e->dport = k->dport;
	__builtin_memcpy(e->saddr, k->saddr, 16);
	__builtin_memcpy(e->daddr, k->daddr, 16);
	e->pad[0] = e->pad[1] = 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* user space drains on a timer */
	count(LT_C_EVENTS);
}

/* The first slot of a key's set. */
static __always_inline __u32 flow_set(const struct flow_key *k)
{
	return (flow_hash(k) & (FLOW_SETS - 1)) * FLOW_WAYS;
}

static __always_inline struct flow_slot *flow_slot(const struct flow_key *k)
{
	__u32 set = flow_set(k);
	for (__u32 i = 0; i < FLOW_WAYS; i++) {
		__u32 idx = set + i;
		struct flow_slot *f = bpf_map_lookup_elem(&flows, &idx);
		if (f && flow_key_eq(&f->key, k))
			return f;
	}
	return NULL;
}

/* The state of a flow in one direction, or NULL. */
static __always_inline struct flow_state *flow_get(const struct flow_key *k)
{
	struct flow_slot *f = flow_slot(k);
	return f ? &f->st : NULL;
}

static __always_inline void flow_del(const struct flow_key *k)
{
	struct flow_slot *f = flow_slot(k);
	if (f) {
		f->key.family = 0;
		f->owner = 0;
	}
}

static __always_inline struct flow_state *new_flow(const struct flow_key *k, __u32 slot, __u32 netns, __u32 base, __u32 max_end)
{
	__u32 zero = 0, set = flow_set(k), victim = set, evict = 1;
	__u64 oldest = ~0ULL;
	/* the key's slot if another CPU just made it, else a free one, else the set's least
	 * recently sampled */
	for (__u32 i = 0; i < FLOW_WAYS; i++) {
		__u32 idx = set + i;
		struct flow_slot *f = bpf_map_lookup_elem(&flows, &idx);
		if (!f)
			return NULL;
		if (flow_key_eq(&f->key, k))
			return &f->st;
		if (!f->owner && __sync_val_compare_and_swap(&f->owner, 0, 1) == 0) {
			victim = idx;
			evict = 0;
			break;
		}
		if (f->st.last_sample < oldest) {
			oldest = f->st.last_sample;
			victim = idx;
		}
	}
	if (evict)
		count(LT_C_FLOW_FULL);
	/* The template's rings stay empty: array maps start zeroed and only these fields change. */
	struct flow_slot *ts = bpf_map_lookup_elem(&scratch, &zero);
	if (!ts)
		return NULL;
	ts->owner = 1;
	ts->key = *k;
	struct flow_state *t = &ts->st;
	t->base = base;
	t->max_end = max_end;
	t->last_sample = rule_now();
	t->isample = 0;
	t->isample_set = 0;
	t->port_slot = slot;
	t->dir = k->dir;
	t->netns = netns;
	if (bpf_map_update_elem(&flows, &victim, ts, BPF_ANY))
		return NULL;
	count(LT_C_FLOWS);
	struct flow_slot *f = bpf_map_lookup_elem(&flows, &victim);
	return f ? &f->st : NULL;
}

/* Typed views of kernel objects: direct loads (no helper call) on BTF pointers. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define TCP_SK(sk) ((struct tcp_sock *)bpf_rdonly_cast((sk), bpf_core_type_id_kernel(struct tcp_sock)))

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline __u16 sk_local_port(const struct sock *sk)
{
	return sk->__sk_common.skc_num;
}

static __always_inline __u16 sk_remote_port(const struct sock *sk)
{
	return bpf_ntohs(sk->__sk_common.skc_dport);
}

/* The socket's histogram slot if it is watched and in our namespace, else 0. */
static __always_inline __u32 sk_watched(const struct sock *sk)
{
	__u32 slot = port_slot(sk_local_port(sk), sk_remote_port(sk));
	if (slot && netns_ino && sk_netns(sk) != netns_ino)
		return 0;
	return slot;
}

/* Whether a socket belongs to the watched cgroup subtree: its cgroup (the creating process's),
 * or that cgroup's ancestor at the subtree's depth, is the one. Only when a flow is created. */
static __always_inline int sk_in_cgroup(const struct sock *sk)
{
	if (!cgroup_id)
		return 1;
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (!cg || cg->level < (int)cgroup_level)
		return 0;
	struct cgroup *at = NULL; /* ancestors[] is indexed by a setting: read, not walked */
	bpf_probe_read_kernel(&at, sizeof(at), (void *)cg + bpf_core_field_offset(struct cgroup, ancestors) + (cgroup_level & 0xff) * sizeof(at));
	return at && BPF_CORE_READ(at, kn, id) == cgroup_id;
}

/* The flow key of a socket, in the direction of the data: tx = local -> remote. An IPv6
 * socket talking to an IPv4 peer (::ffff:a.b.c.d, e.g. a dual-stack listener) sends IPv4
 * packets, so its key is IPv4. Direct loads only (no probe_read): this runs on every segment. */
static __always_inline int sk_key(const struct sock *sk, struct flow_key *k, int tx)
{
	const struct sock_common *c = &sk->__sk_common;
	__u16 family = c->skc_family;
	__u16 local = sk_local_port(sk), remote = sk_remote_port(sk);
	__u32 l[4] = {}, r[4] = {};
	if (family == AF_INET) {
		l[0] = c->skc_rcv_saddr;
		r[0] = c->skc_daddr;
	} else if (family == AF_INET6) {
		r[0] = c->skc_v6_daddr.in6_u.u6_addr32[0];
		r[1] = c->skc_v6_daddr.in6_u.u6_addr32[1];
		r[2] = c->skc_v6_daddr.in6_u.u6_addr32[2];
		r[3] = c->skc_v6_daddr.in6_u.u6_addr32[3];
		if (r[0] == 0 && r[1] == 0 && r[2] == bpf_htonl(0xffff)) {
			family = AF_INET;
			r[0] = r[3];
			r[3] = 0;
			r[2] = 0;
			l[0] = c->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		} else {
			l[0] = c->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
			l[1] = c->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
			l[2] = c->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
			l[3] = c->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		}
	} else {
		return -1;
	}
	/* scalars, not pointers, pick the direction: the verifier refuses one load through two
	 * possible stack slots */
	__u32 *sa = (__u32 *)k->saddr, *da = (__u32 *)k->daddr;
	for (int i = 0; i < 4; i++) {
		sa[i] = tx ? l[i] : r[i];
		da[i] = tx ? r[i] : l[i];
	}
	k->sport = tx ? local : remote;
	k->dport = tx ? remote : local;
	k->family = family;
	k->dir = tx ? LT_DIR_TX : LT_DIR_RX;
	k->pad[0] = k->pad[1] = 0;
	return 0;
}

/* ---- transmit: socket ---- */

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(lt_tcp_send, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{
	__u32 slot = sk_watched(sk);
	if (!slot)
		return 0;
	struct flow_key k;
	if (sk_key(sk, &k, 1))
		return 0;
	STAGE_END(2, 0);
	struct tcp_sock *tp = TCP_SK(sk);
	struct flow_state *st = flow_get(&k);
	if (!st && sk_in_cgroup(sk)) /* a connection older than this observer */
		st = new_flow(&k, slot, sk_netns(sk), tp->snd_una - (__u32)tp->bytes_acked, tp->snd_nxt);
	if (!st)
		return 0;

	__u32 start = tp->write_seq;
	__u64 left = msg->msg_iter.count;
	if (size_goal > 0 && left > (__u64)size_goal)
		left = size_goal; /* this pass of the copy loop fills at most one skb */
	if (!left)
		return 0;
	__u32 end = start + (__u32)left;
	__u32 hit = sampled(st, start, end);
	int tm = timed(st, start, end, hit);
	if (!tm && !interval_ns)
		return 0;
	hit = interval_rule(st, end, hit);
	if (!tm && !hit)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, 0);
	/* A later pass of the same sendmsg (the same msghdr; write_seq grew by what the call's
	 * iterator shrank; right after the call's bytes so far): its bytes were handed over when the
	 * call began, so they join the call's event and keep its time. The ring then holds a queue
	 * of calls, not of skbs. */
	__u32 h = st->head[RING_FIRST];
	struct lt_first *last = &st->first[(h - 1) & (LT_FIRST_RING - 1)];
	__u32 mark = start + (__u32)msg->msg_iter.count;
	__u64 at = now;
	if (st->send_msg == (__u64)msg && st->send_mark == mark && last->ts && last->end == start) {
		last->end = end;
		at = last->ts & ~FIRST_RETRANS;
	} else
		push_first(st, start, end, now, 0);
	st->send_msg = (__u64)msg;
	st->send_mark = mark;
	if (hit)
		emit(&k, st, LT_LAYER_SOCK, start, end, at, 0, hit & LT_F_INTERVAL, 0, 0);
	return 0;
}

/* ---- headers ---- */

struct seg {
	struct flow_key k;
	__u32 start, end;
};

/* The segment this CPU last found untimed, with its direction. The hooks after the first on
 * one skb's way run on the same CPU (transmit: IP, then the devices' egress; receive: the
 * first device, then IP, TCP and, when the reader takes the whole skb, the socket), and an
 * untimed segment has no work at them: on an exact match (skb, byte range, ports, direction)
 * they leave without the flow lookup and the decision. Only untimed verdicts are kept; a
 * verdict written over by another context (a softirq between a process's write and its read)
 * only misses, as no field mix names a segment that was not found untimed. Every hook that
 * decides leaves its verdict here, timed ones as none (memo_clear). Not used when every
 * segment is timed. */
struct seg_memo {
	__u64 pad; /* an array's values start 8 bytes before a cache line (see the flow table) */
	__u64 skb;
	__u32 start, end;
	__u32 ports; /* sport << 16 | dport, as the segment travels */
	__u32 dir;
	/* what tells this skb from a later one at its address, for the hooks that take the verdict
	 * before they parse: from IP on transmit, the departure time (memo_departed); from the first
	 * device on receive, the IP packet's length (memo_arrived); else 0 */
	__u64 skb_id;
	__u8 pad2[24];
};

/* One per CPU, a cache line each: a plain array indexed by the CPU (one load to the verdict,
 * where a per-CPU array takes two); a CPU beyond it only goes without. */
#define MEMO_CPUS 512
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEMO_CPUS);
	__type(key, __u32);
	__type(value, struct seg_memo);
} memo SEC(".maps");

/* This CPU's slot; NULL when every segment is timed (the verifier drops the rest). */
static __always_inline struct seg_memo *memo_slot(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	if (hist_mode == LT_HIST_ALL)
		return NULL;
	return bpf_map_lookup_elem(&memo, &cpu);
}

static __always_inline __u32 memo_ports(__u16 sport, __u16 dport)
{
	return (__u32)sport << 16 | dport;
}

static __always_inline int memo_untimed(const void *skb, __u32 start, __u32 end, __u16 sport, __u16 dport, __u32 dir)
{
	struct seg_memo *m = memo_slot();
	return m && m->skb == (__u64)skb && m->start == start && m->end == end &&
	       m->ports == memo_ports(sport, dport) && m->dir == dir;
}

static __always_inline void memo_put(const void *skb, __u32 start, __u32 end, __u16 sport, __u16 dport, __u32 dir, __u64 skb_id)
{
	struct seg_memo *m = memo_slot();
	if (!m)
		return;
	m->skb = (__u64)skb;
	m->start = start;
	m->end = end;
	m->ports = memo_ports(sport, dport);
	m->dir = dir;
	m->skb_id = skb_id;
}

/* The devices' egress, before they parse the headers: the skb IP found untimed, still with the
 * departure time TCP gave this transmission (nanoseconds; a retransmission is another skb and
 * another time). */
static __always_inline int memo_departed(const struct sk_buff *skb)
{
	struct seg_memo *m = memo_slot();
	__u64 t = skb->tstamp;
	return m && t && m->skb == (__u64)skb && m->skb_id == t && m->dir == LT_DIR_TX;
}

/* IP's ingress, before the port test and the flow key: the skb the first device found
 * untimed, with the same length and first sequence number (the headers' first line only). */
static __always_inline int memo_arrived(struct __sk_buff *ctx, const struct sk_buff *skb)
{
	struct seg_memo *m = memo_slot();
	if (!m || m->skb != (__u64)skb || m->dir != LT_DIR_RX || m->skb_id != ctx->len)
		return 0;
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 hl = sizeof(struct ipv6hdr);
	if (ctx->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		if ((void *)(ip + 1) > data_end)
			return 0;
		hl = ip->ihl * 4;
	}
	struct tcphdr *th = data + (hl & 0x3c); /* (IPv6: 40 & 0x3c is 40) */
	if ((void *)(th + 1) > data_end)
		return 0;
	return bpf_ntohl(th->seq) == m->start;
}

/* A timed segment: no later hook on its way may take an earlier verdict for it (an skb at a
 * freed one's address holding the same bytes). */
static __always_inline void memo_clear(void)
{
	struct seg_memo *m = memo_slot();
	if (m)
		m->skb = 0;
}

/* The end of skb_seg and ctx_seg: the port test, then the payload range and the flow key.
 * `ip` is the IP header (v6 or v4), `hl` its length, `len` the bytes from it to the end. */
static __always_inline __u32 seg_from(struct seg *s, const void *ip, int v6, __u32 hl, const struct tcphdr *th, __u32 len)
{
	__u16 sport = bpf_ntohs(th->source), dport = bpf_ntohs(th->dest);
	__u32 slot = port_slot(sport, dport);
	__u32 hdrs = hl + th->doff * 4;
	if (!slot || len <= hdrs)
		return 0; /* unwatched, or no payload (a pure ACK) */
	s->start = bpf_ntohl(th->seq);
	s->end = s->start + (len - hdrs);
	__builtin_memset(&s->k, 0, sizeof(s->k));
	s->k.sport = sport;
	s->k.dport = dport;
	if (v6) {
		const struct ipv6hdr *ip6 = ip;
		s->k.family = AF_INET6;
		__builtin_memcpy(s->k.saddr, &ip6->saddr, 16);
		__builtin_memcpy(s->k.daddr, &ip6->daddr, 16);
	} else {
		const struct iphdr *ip4 = ip;
		s->k.family = AF_INET;
		__builtin_memcpy(s->k.saddr, &ip4->saddr, 4);
		__builtin_memcpy(s->k.daddr, &ip4->daddr, 4);
	}
	return slot;
}

/* The TCP segment in an skb whose network header is set: flow key and payload range.
 * Returns the port's histogram slot for TCP with payload on a watched port, else 0. The
 * fallback of ctx_seg for headers outside the packet's linear part: one probe_read takes the
 * IP and TCP headers (60 bytes: IPv4 without options, or IPv6). */
union hdrs {
	struct { struct iphdr ip; struct tcphdr th; } v4;
	struct { struct ipv6hdr ip; struct tcphdr th; } v6;
};

static __always_inline __u32 skb_seg(const struct sk_buff *skb, struct seg *s)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u32 off = head + nh - skb->data, len = skb->len; /* off: skb->data to the network header */
	__u16 proto = skb->protocol;
	if (off > len || (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6)))
		return 0;
	len -= off;
	union hdrs h;
	if (bpf_probe_read_kernel(&h, sizeof(h.v6), head + nh)) {
		count(LT_C_UNPARSED);
		return 0;
	}
	struct tcphdr *th;
	__u32 hl;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (h.v4.ip.protocol != IPPROTO_TCP || h.v4.ip.version != 4)
			return 0;
		hl = h.v4.ip.ihl * 4;
		th = &h.v4.th;
		if (hl != sizeof(struct iphdr)) { /* IP options: the TCP header is further on */
			if (hl < sizeof(struct iphdr))
				return 0;
			if (bpf_probe_read_kernel(th, sizeof(*th), head + nh + hl)) {
				count(LT_C_UNPARSED);
				return 0;
			}
		}
	} else {
		if (h.v6.ip.nexthdr != IPPROTO_TCP)
			return 0;
		hl = sizeof(struct ipv6hdr);
		th = &h.v6.th;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return seg_from(s, &h.v4.ip, 0, hl, th, len);
	return seg_from(s, &h.v6.ip, 1, hl, th, len);
}

/* skb_seg for tc and cgroup_skb programs: the headers straight from the packet (no helper
 * call), when they are in its linear part; else skb_seg. `l3` is the network header's offset
 * from ctx->data (tc: the link header's length; cgroup_skb: 0). */
static __always_inline __u32 ctx_seg(struct __sk_buff *ctx, const struct sk_buff *skb, __u32 l3, struct seg *s)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u16 proto = ctx->protocol;
	__u32 len = ctx->len;
	l3 &= 0x3f;
	if (len <= l3)
		return 0;
	len -= l3;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + l3;
		if ((void *)(ip + 1) > data_end)
			return skb_seg(skb, s);
		if (ip->protocol != IPPROTO_TCP || ip->version != 4)
			return 0;
		__u32 hl = (ip->ihl * 4) & 0x3c;
		struct tcphdr *th = (void *)ip + hl;
		if (hl < sizeof(*ip) || (void *)(th + 1) > data_end)
			return hl < sizeof(*ip) ? 0 : skb_seg(skb, s);
		return seg_from(s, ip, 0, hl, th, len);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + l3;
		struct tcphdr *th = (void *)(ip6 + 1);
		if ((void *)(th + 1) > data_end)
			return skb_seg(skb, s);
		if (ip6->nexthdr != IPPROTO_TCP)
			return 0;
		return seg_from(s, ip6, 1, sizeof(*ip6), th, len);
	}
	return 0;
}

/* cgroup_skb programs see only socket traffic: the socket's ports tell an unwatched packet
 * before anything is parsed. */
static __always_inline int sk_unwatched(const struct sk_buff *skb)
{
	const struct sock *sk = skb->sk;
	return !sk || !port_slot(sk_local_port(sk), sk_remote_port(sk));
}

/* ---- transmit: TCP (the departure time) and IP ---- */

SEC("cgroup_skb/egress")
int lt_ip_out(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	struct seg s = {}; /* (clang otherwise spills a field left unset when the segment is not ours) */
	if (sk_unwatched(skb) || !ctx_seg(ctx, skb, 0, &s))
		return 1;
	STAGE_END(2, 1);
	s.k.dir = LT_DIR_TX;
	struct flow_state *st = flow_get(&s.k);
	if (!st)
		return 1; /* unknown, or the receiving side of a flow this observer watches */
	__u32 flags = 0;
	if (before(s.start, st->max_end)) {
		flags = LT_F_RETRANS;
		count(LT_C_RETRANS_TX);
	}
	if (before(st->max_end, s.end))
		st->max_end = s.end;
	__u32 hit = sampled(st, s.start, s.end);
	if (!timed(st, s.start, s.end, hit)) {
		memo_put(skb, s.start, s.end, s.k.sport, s.k.dport, LT_DIR_TX, skb->tstamp);
		return 1;
	}
	memo_clear();
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, 1);
	__u32 w = hist_weight(st, s.start, s.end);
	/* __tcp_transmit_skb's departure time; later than now only under pacing, where it is
	 * when TCP lets the segment leave, so the wait counts as TCP's */
	__u64 tcp_ns = skb->tstamp;
	if (tcp_ns > now)
		tcp_ns = now;
	if (!(flags & LT_F_RETRANS)) { /* retransmitted bytes were queued long before */
		__u32 qflags;
		__u64 queued = find_first(st, match_byte(st, s.start, s.end, hit), &qflags);
		if (tcp_ns)
			account(st, LT_PAIR_TX_SOCK_TCP, queued, tcp_ns, flags, w);
	}
	account(st, LT_PAIR_TX_TCP_IP, tcp_ns, now, flags, w);
	push(st, RING_IP, s.start, s.end, now, 0, 0, flags);
	if (hit)
		emit(&s.k, st, LT_LAYER_IP, s.start, s.end, now, tcp_ns, flags | (hit & LT_F_INTERVAL), 0, 0);
	return 1;
}

/* ---- devices, both directions ---- */

/* Which device, for the hop test: ifindexes repeat across namespaces. */
static __always_inline __u32 dev_key(const struct net_device *dev, __u32 ns)
{
	return dev->ifindex ^ (ns * 0x9e3779b1u);
}

/* The receiver's first device: the retransmission test (behind the highest byte seen). */
static __always_inline void rx_first(struct flow_state *st, __u32 start, __u32 end, __u32 *flags)
{
	if (before(start, st->max_end)) {
		*flags |= LT_F_RETRANS;
		count(LT_C_RETRANS_RX);
	}
	if (before(st->max_end, end))
		st->max_end = end;
}

static __always_inline void device_event(struct __sk_buff *ctx, int rx)
{
	const struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	if (LT_STAGE >= 2 && !rx && memo_departed(skb))
		return;
	const struct net_device *dev = skb->dev;
	struct seg s = {}; /* (clang otherwise spills a field left unset when the segment is not ours) */
	/* tc sees the packet from its link header on */
	__u32 l3 = (skb->network_header - skb->mac_header) & 0x3f;
	if (!ctx_seg(ctx, skb, l3, &s))
		return;
	STAGE_END(2, );
	/* Not on ingress: the receiver's first crossing has work of its own (below), and an skb at
	 * a freed one's address holding the same bytes (a retransmission) would match. */
	if (!rx && memo_untimed(skb, s.start, s.end, s.k.sport, s.k.dport, LT_DIR_TX))
		return;
	__u32 ns = dev_netns_ino_btf(dev); /* (after the memo: three dependent loads) */
	if (netns_ino && ns != netns_ino)
		return;
	/* Whose crossing: the receiver's on the receiver's own interface; else the sender's, if
	 * it is on this kernel (its interface, or a veth peer, a bridge port, the outer interface
	 * on the way out, whether or not the crossing before was observed); else the receiver's,
	 * on its way in from outside. Both ends can be on this kernel. */
	struct flow_state *st = NULL, *tx;
	if (rx) {
		s.k.dir = LT_DIR_RX;
		st = flow_get(&s.k);
		if (st && st->netns == ns)
			goto found;
	}
	s.k.dir = LT_DIR_TX;
	tx = flow_get(&s.k);
	if (tx) {
		st = tx;
		goto found;
	}
	if (!rx) {
		s.k.dir = LT_DIR_RX;
		st = flow_get(&s.k);
	}
	if (!st)
		return;
found:;
	__u32 flags = rx ? LT_F_DEV_RX : 0, hit = sampled(st, s.start, s.end);
	if (!timed(st, s.start, s.end, hit)) {
		/* not a sample: only the receiver's first crossing has work, told from a hop by the
		 * skb (the device ring holds samples only) */
		if (st->dir == LT_DIR_RX && (st->last_dev_skb != (__u64)skb || st->last_dev_end != s.end)) {
			st->last_dev_skb = (__u64)skb;
			st->last_dev_end = s.end;
			rx_first(st, s.start, s.end, &flags);
			hit = interval_ns ? interval_rule(st, s.end, 0) : 0;
			if (hit) {
				memo_clear();
				__u64 now = bpf_ktime_get_ns();
				push(st, RING_DEV, s.start, s.end, now, (__u64)skb, dev_key(dev, ns), flags);
				emit(&s.k, st, LT_LAYER_DEV, s.start, s.end, now, 0, flags | hit, dev->ifindex, ns);
				return;
			}
		}
		memo_put(skb, s.start, s.end, s.k.sport, s.k.dport, st->dir, st->dir == LT_DIR_TX ? skb->tstamp : ctx->len - l3);
		return;
	}
	memo_clear();
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, );
	__u32 dev_id = dev_key(dev, ns), byte = match_byte(st, s.start, s.end, hit), w = hist_weight(st, s.start, s.end);
	struct lt_ev *hop = find_hop(st, (__u64)skb, dev_id, byte, now);
	if (hop) {
		flags |= LT_F_HOP | (hop->flags & LT_F_RETRANS);
		account(st, st->dir == LT_DIR_TX ? LT_PAIR_TX_DEV_DEV : LT_PAIR_RX_DEV_DEV, hop->ts, now, flags, w);
	} else if (st->dir == LT_DIR_TX) {
		struct lt_ev *prev = find(st, RING_IP, byte);
		if (prev)
			flags |= prev->flags & LT_F_RETRANS;
		account(st, LT_PAIR_TX_IP_DEV, prev ? prev->ts : 0, now, flags, w);
	} else { /* first device on receive: the retransmission test and the interval rule */
		rx_first(st, s.start, s.end, &flags);
		hit = interval_rule(st, s.end, hit);
	}
	push(st, RING_DEV, s.start, s.end, now, (__u64)skb, dev_id, flags);
	if (hit)
		emit(&s.k, st, LT_LAYER_DEV, s.start, s.end, now, 0, flags | (hit & LT_F_INTERVAL), dev->ifindex, ns);
}

SEC("tc")
int lt_dev_out(struct __sk_buff *ctx)
{
	device_event(ctx, 0);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int lt_dev_in(struct __sk_buff *ctx)
{
	device_event(ctx, 1);
	return TC_ACT_UNSPEC;
}

/* ---- receive: IP ---- */

SEC("cgroup_skb/ingress")
int lt_ip_in(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	if (LT_STAGE >= 2 && memo_arrived(ctx, skb))
		return 1;
	struct seg s = {}; /* (clang otherwise spills a field left unset when the segment is not ours) */
	if (sk_unwatched(skb) || !ctx_seg(ctx, skb, 0, &s))
		return 1;
	STAGE_END(2, 1);
	if (memo_untimed(skb, s.start, s.end, s.k.sport, s.k.dport, LT_DIR_RX))
		return 1;
	s.k.dir = LT_DIR_RX;
	struct flow_state *st = flow_get(&s.k);
	if (!st)
		return 1;
	__u32 hit = sampled(st, s.start, s.end);
	if (!timed(st, s.start, s.end, hit)) {
		memo_put(skb, s.start, s.end, s.k.sport, s.k.dport, LT_DIR_RX, ctx->len);
		return 1;
	}
	memo_clear();
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, 1);
	struct lt_ev *prev = find(st, RING_DEV, match_byte(st, s.start, s.end, hit));
	__u32 flags = prev ? prev->flags & LT_F_RETRANS : 0;
	account(st, LT_PAIR_RX_DEV_IP, prev ? prev->ts : 0, now, flags, hist_weight(st, s.start, s.end));
	push(st, RING_IP, s.start, s.end, now, 0, 0, flags);
	if (hit)
		emit(&s.k, st, LT_LAYER_IP, s.start, s.end, now, 0, flags | (hit & LT_F_INTERVAL), ctx->ifindex, 0);
	return 1;
}

/* ---- receive: TCP ---- */

SEC("tp_btf/tcp_probe")
int BPF_PROG(lt_tcp_recv, struct sock *sk, struct sk_buff *skb)
{
	__u32 slot = sk_watched(sk);
	if (!slot)
		return 0;
	/* TCP's control block in skb->cb, typed for direct loads */
	const struct tcp_skb_cb *cb = bpf_rdonly_cast(skb->cb, bpf_core_type_id_kernel(struct tcp_skb_cb));
	__u32 start = cb->seq, end = cb->end_seq;
	__u16 tcp_flags = cb->tcp_flags;
	if (tcp_flags & 0x01) /* FIN and SYN take a sequence number each, not a byte */
		end--;
	if (tcp_flags & 0x02)
		start++;
	if (!before(start, end))
		return 0; /* no payload */
	__u16 local = sk_local_port(sk), remote = sk_remote_port(sk);
	STAGE_END(2, 0);
	if (memo_untimed(skb, start, end, remote, local, LT_DIR_RX))
		return 0;
	struct flow_key k;
	if (sk_key(sk, &k, 0))
		return 0;
	struct tcp_sock *tp = TCP_SK(sk);
	struct flow_state *st = flow_get(&k);
	if (!st && sk_in_cgroup(sk))
		st = new_flow(&k, slot, sk_netns(sk), tp->rcv_nxt - (__u32)tp->bytes_received, tp->rcv_nxt);
	if (!st)
		return 0;
	__u32 hit = sampled(st, start, end);
	if (!timed(st, start, end, hit)) {
		memo_put(skb, start, end, remote, local, LT_DIR_RX, 0);
		return 0;
	}
	memo_clear();
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, 0);
	struct lt_ev *prev = find(st, RING_IP, match_byte(st, start, end, hit));
	__u32 flags = prev ? prev->flags & LT_F_RETRANS : 0;
	account(st, LT_PAIR_RX_IP_TCP, prev ? prev->ts : 0, now, flags, hist_weight(st, start, end));
	push_first(st, start, end, now, flags);
	if (hit)
		emit(&k, st, LT_LAYER_TCP, start, end, now, 0, flags | (hit & LT_F_INTERVAL), 0, 0);
	return 0;
}

/* ---- receive: socket ---- */

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(lt_sock_recv, struct sk_buff *skb, int len)
{
	struct sock *sk = skb->sk;
	if (!sk || len <= 0 || !sk_watched(sk))
		return 0;
	STAGE_END(2, 0);
	/* tcp_recvmsg copies from copied_seq on and advances it after the copy. Read before the
	 * protocol test, whose field has a cache line of its own: another socket type's memory
	 * read through the cast does no harm, and the memo only holds skbs seen as TCP. */
	__u32 start = TCP_SK(sk)->copied_seq, end = start + len;
	if (memo_untimed(skb, start, end, sk_remote_port(sk), sk_local_port(sk), LT_DIR_RX))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct flow_key k;
	if (sk_key(sk, &k, 0))
		return 0;
	struct flow_state *st = flow_get(&k);
	if (!st)
		return 0;
	__u32 hit = sampled(st, start, end);
	if (!timed(st, start, end, hit))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	STAGE_END(3, 0);
	__u32 flags = 0;
	__u64 prev = find_first(st, match_byte(st, start, end, hit), &flags);
	account(st, LT_PAIR_RX_TCP_SOCK, prev, now, flags, hist_weight(st, start, end));
	if (hit)
		emit(&k, st, LT_LAYER_SOCK, start, end, now, 0, flags | (hit & LT_F_INTERVAL), 0, 0);
	return 0;
}

/* ---- flow lifetime ---- */

SEC("sockops")
int lt_sockops(struct bpf_sock_ops *ops)
{
	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	struct bpf_sock_ops_kern *kops = bpf_cast_to_kern_ctx(ops);
	struct sock *sk = kops->sk;
	if (!sk)
		return 1;
	__u32 slot = sk_watched(sk);
	if (!slot || !sk_in_cgroup(sk))
		return 1;
	struct flow_key k;
	/* at establishment nothing was sent or received yet: snd_una and rcv_nxt are byte 0 */
	if (sk_key(sk, &k, 1) == 0 && !flow_get(&k))
		new_flow(&k, slot, sk_netns(sk), ops->snd_una, ops->snd_nxt);
	if (sk_key(sk, &k, 0) == 0 && !flow_get(&k))
		new_flow(&k, slot, sk_netns(sk), ops->rcv_nxt, ops->rcv_nxt);
	return 1;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(lt_sock_state, struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_CLOSE || sk->sk_protocol != IPPROTO_TCP || !sk_watched(sk))
		return 0;
	struct flow_key k;
	if (sk_key(sk, &k, 1) == 0)
		flow_del(&k);
	if (sk_key(sk, &k, 0) == 0)
		flow_del(&k);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
