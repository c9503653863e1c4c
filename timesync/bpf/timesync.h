/* timesync: the probe's wire format and the counters, shared by responder.bpf.c, prober.bpf.c
 * and protocol/timesync.ts (a unit test compares them; struct layouts are also checked against
 * the objects' BTF when they are loaded). All fields are in network byte order on the wire, but mac: SipHash's 8 output bytes. */
#ifndef LATSCOPE_TIMESYNC_H
#define LATSCOPE_TIMESYNC_H

#define TS_MAGIC 0x4c545331 /* "LTS1" */
#define TS_VERSION 2
#define TS_REQUEST 1
#define TS_REPLY 2

/* The UDP payload of a probe and of its reply (56 bytes). The key never travels: a request
 * carries a MAC over its first 4 words (magic to issued), a reply one over its first 6 (magic
 * to t3, type REPLY), both SipHash-2-4 under the 128-bit deployment key (siphash.h). */
struct ts_probe {
	__u32 magic;
	__u8 version;
	__u8 type;
	__u16 flags;
	__u32 round;
	__u32 seq;    /* unique per prober: joins the reply to its send time */
	__u64 nonce;  /* random per round: a reply from another round is not this one's */
	__u64 issued; /* prober's CLOCK_REALTIME (ns), rising: a responder answers a prober only with a later one (replays get nothing) */
	__u64 t2;     /* responder's receive time (its clock), written in the reply */
	__u64 t3;     /* responder's transmit time */
	__u64 mac;
};
#define TS_REQUEST_WORDS 4 /* words the request's MAC covers */
#define TS_REPLY_WORDS 6   /* words the reply's MAC covers */

/* What a responder keeps per prober it answers (a hash map keyed by the prober's IPv4 address,
 * network order, filled from user space: an address not in it gets no reply). */
struct ts_peer {
	__u64 last_issued;  /* the latest request answered: replays and older ones get nothing */
	__u64 window_start; /* the current one-second rate window (responder's clock) */
	__u64 window_count; /* replies in it */
};
#define TS_MAX_PEERS 16384

/* Responder counters (per-CPU array). Every packet to the port that is not answered is counted
 * under exactly one reason and dropped (no reply, no ICMP). A probe is answered only when it is
 * well-formed IPv4 UDP to a unicast address of this host, not fragmented, from a configured
 * prober, with a valid MAC, newer than the last from that prober and within its rate: the XDP
 * responder and the user-space one (behind the same stateless checks at tc ingress) answer the
 * same set. */
#define TS_MAX_ADDRS 8 /* addresses of the responder's interface it knows */
#define TS_R_ANSWERED 0
#define TS_R_BAD_MAC 1     /* well-formed probe without a valid MAC (sent without the key) */
#define TS_R_MALFORMED 2   /* bad magic, version or type */
#define TS_R_TRUNCATED 3   /* headers or payload shorter than a probe */
#define TS_R_BAD_HEADER 4  /* IP version, header checksum, a length field that lies, TTL 0 */
#define TS_R_BAD_SOURCE 5  /* source MAC or IP not a unicast peer (broadcast, multicast, ours, 0), source port 0 */
#define TS_R_FRAGMENT 6    /* an IP fragment */
#define TS_R_NOT_LOCAL 7   /* to a broadcast or multicast MAC (another host's address is not the responder's: passed on) */
#define TS_R_NOT_PROBER 8  /* from an address that is not a configured prober */
#define TS_R_REPLAY 9      /* issued no later than the last request answered from that prober */
#define TS_R_RATE 10       /* over the prober's replies per second */
#define TS_R_MAX 11

/* Prober counters. */
#define TS_P_SENT 0       /* probes stamped on the way out */
#define TS_P_COMPLETED 1  /* replies joined to their send time */
#define TS_P_UNKNOWN 2    /* replies with no send time (late, duplicate or another prober's) */
#define TS_P_BAD 3        /* packets from the port that are no reply */
#define TS_P_RING_FULL 4  /* completions lost: ring buffer full */
#define TS_P_BAD_MAC 5    /* replies to a probe in flight with a wrong MAC or nonce: forged, dropped */
#define TS_P_BAD_SOURCE 6 /* replies to a probe in flight from another address than it went to */
#define TS_P_MAX 7

/* A probe in flight, in the prober's map under its seq. */
struct ts_inflight {
	__u64 t1;
	__u64 nonce;
	__u32 daddr; /* where it went, network order */
	__u32 pad;
};

/* A completed probe, prober to user space. */
struct ts_sample {
	__u64 t1, t2, t3, t4;
	__u32 round, seq;
	__u32 saddr; /* responder's IPv4 address, network order */
	__u32 pad;
};

#endif
