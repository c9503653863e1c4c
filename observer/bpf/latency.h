/* latency: the contract between latency.bpf.c and user space (event layout, constants). Its
 * TypeScript view is protocol/latency.ts: a unit test compares the two, and the layout of
 * struct lt_event is checked against the object's BTF whenever the probe is loaded. */
#ifndef LATSCOPE_LATENCY_H
#define LATSCOPE_LATENCY_H

/* Layers, in the order a segment meets them on transmit (and in reverse on receive). */
#define LT_LAYER_SOCK 0
#define LT_LAYER_TCP 1
#define LT_LAYER_IP 2
#define LT_LAYER_DEV 3

#define LT_DIR_TX 0
#define LT_DIR_RX 1

/* Adjacent-layer pairs of the in-kernel histograms, indexed dir * 4 + pair. */
#define LT_PAIR_TX_SOCK_TCP 0
#define LT_PAIR_TX_TCP_IP 1
#define LT_PAIR_TX_IP_DEV 2
#define LT_PAIR_TX_DEV_DEV 3 /* one device to the next (veth -> bridge -> outer interface) */
#define LT_PAIR_RX_DEV_DEV 4
#define LT_PAIR_RX_DEV_IP 5
#define LT_PAIR_RX_IP_TCP 6
#define LT_PAIR_RX_TCP_SOCK 7
#define LT_PAIRS 8

#define LT_BUCKETS 32 /* log2 buckets of nanoseconds: bucket b holds [2^b, 2^(b+1)) */
#define LT_HIST_UNIT 256 /* a histogram bucket counts segments in 1/256ths (scaled histograms add H/len) */

/* What the histograms time (setting hist_mode). */
#define LT_HIST_ALL 0     /* every segment */
#define LT_HIST_SAMPLES 1 /* the sampled segments only */
#define LT_HIST_SCALED 2  /* the segments holding a histogram byte (every 2^hist_shift bytes), scaled */
#define LT_MAX_PORTS 64

/* Event flags. */
#define LT_F_RETRANS 1  /* sender: bytes sent before; receiver: behind the highest byte seen */
#define LT_F_INTERVAL 2 /* sampled by the interval rule (isample_seq), not by size */
#define LT_F_DEV_RX 4   /* device event seen on receive (netif_receive_skb), else on transmit */
#define LT_F_HOP 8      /* device event that follows another device crossing of the same skb */

/* Counters (per-CPU array), each index a u64. */
#define LT_C_EVENTS 0       /* sample events written to the ring */
#define LT_C_RING_FULL 1    /* sample events lost: ring buffer full */
#define LT_C_FLOWS 2        /* flow states created */
#define LT_C_FLOW_FULL 3    /* flow states dropped: a new flow took a full set's least recently sampled slot */
#define LT_C_RETRANS_TX 4   /* retransmitted segments seen at the IP layer */
#define LT_C_RETRANS_RX 5   /* segments received behind the highest byte seen */
#define LT_C_UNPARSED 6     /* IP packets whose headers could not be read (port unknown) */
#define LT_C_MATCHED 8      /* + pair: segments matched to the previous layer */
#define LT_C_UNMATCHED 16   /* + pair: segments whose previous-layer event was not found */
#define LT_C_EXCLUDED 24    /* + pair: matched retransmissions kept out of the histograms */
#define LT_C_MAX 32

struct lt_event {
	__u64 ts_ns;     /* CLOCK_MONOTONIC at this layer */
	__u64 tcp_ns;    /* IP transmit events: TCP's departure time of the segment (0: unknown) */
	__u32 start_seq; /* sequence range [start, end) this layer handled */
	__u32 end_seq;
	__u32 base_seq;  /* sequence number of byte 0 of the stream in this direction */
	__u32 isample_seq; /* the interval-rule sample byte, when LT_F_INTERVAL */
	__u32 ifindex;   /* device events */
	__u32 netns;     /* device events: namespace inode of the device */
	__u32 tid;
	__u16 cpu;
	__u8 layer;
	__u8 dir;
	__u8 flags;
	__u8 family;     /* 2: IPv4, 10: IPv6 */
	__u16 sport;     /* flow in the direction of the data, host byte order */
	__u16 dport;
	__u8 saddr[16];  /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u8 pad[2];
};

#endif
