/* timesync: the probe's wire format and the counters, shared by responder.bpf.c, prober.bpf.c
 * and protocol/timesync.ts (a unit test compares them; struct layouts are also checked against
 * the objects' BTF when they are loaded). All fields are in network byte order on the wire. */
#ifndef LATSCOPE_TIMESYNC_H
#define LATSCOPE_TIMESYNC_H

#define TS_MAGIC 0x4c545331 /* "LTS1" */
#define TS_VERSION 1
#define TS_REQUEST 1
#define TS_REPLY 2

/* The UDP payload of a probe and of its reply (48 bytes). */
struct ts_probe {
	__u32 magic;
	__u8 version;
	__u8 type;
	__u16 flags;
	__u64 key;   /* per-deployment key: a probe without it gets no reply */
	__u32 round;
	__u32 seq;   /* unique per prober: joins the reply to its send time */
	__u64 t1;    /* prober's send time (its clock); echoed back unchanged */
	__u64 t2;    /* responder's receive time (its clock), written in the reply */
	__u64 t3;    /* responder's transmit time */
};

/* Responder counters (per-CPU array). Every packet to the port that is not answered is counted
 * under exactly one reason and dropped (no reply, no ICMP). A probe is answered only when it is
 * well-formed IPv4 UDP to a unicast address of this host, not fragmented, with the key: the XDP
 * responder and the user-space one (behind the same checks at tc ingress) answer the same set. */
#define TS_MAX_ADDRS 8 /* addresses of the responder's interface it knows */
#define TS_R_ANSWERED 0
#define TS_R_BAD_KEY 1    /* well-formed probe with another key */
#define TS_R_MALFORMED 2  /* bad magic, version or type */
#define TS_R_TRUNCATED 3  /* headers or payload shorter than a probe */
#define TS_R_BAD_HEADER 4 /* IP version, header checksum, a length field that lies, TTL 0 */
#define TS_R_BAD_SOURCE 5 /* source MAC or IP not a unicast peer (broadcast, multicast, ours, 0), source port 0 */
#define TS_R_FRAGMENT 6   /* an IP fragment */
#define TS_R_NOT_LOCAL 7  /* to a broadcast or multicast MAC, or to an IP address that is not this host's */
#define TS_R_MAX 8

/* Prober counters. */
#define TS_P_SENT 0       /* probes stamped on the way out */
#define TS_P_COMPLETED 1  /* replies joined to their send time */
#define TS_P_UNKNOWN 2    /* replies with no send time (late, duplicate or forged seq) */
#define TS_P_BAD 3        /* packets from the port that are no valid reply */
#define TS_P_RING_FULL 4  /* completions lost: ring buffer full */
#define TS_P_MAX 5

/* A completed probe, prober to user space. */
struct ts_sample {
	__u64 t1, t2, t3, t4;
	__u32 round, seq;
	__u32 saddr; /* responder's IPv4 address, network order */
	__u32 pad;
};

#endif
