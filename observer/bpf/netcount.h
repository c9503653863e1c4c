/* Contract between netcount.bpf.c and observer/netcount.ts: packet and byte counters of the
 * observer's own network namespace, per direction. */
#ifndef NETCOUNT_H
#define NETCOUNT_H

enum netcount_slot { NC_TX_PACKETS = 0, NC_TX_BYTES = 1, NC_RX_PACKETS = 2, NC_RX_BYTES = 3, NC_MAX = 4 };

#endif
