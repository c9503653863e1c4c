/**
 * The layers a TCP segment crosses, in the one order the whole project uses: on transmit
 * socket → TCP → IP → device, on receive the reverse. The in-kernel histograms are kept per pair
 * of adjacent layers (PAIRS, in latency.h's order); a path between two servers is the sender's
 * chain, the wire, then the receiver's chain (SEGMENTS).
 */

export const LAYERS = ['sock', 'tcp', 'ip', 'dev'] as const;
export type Layer = (typeof LAYERS)[number];
export type Direction = 'tx' | 'rx';

/** The layers of a direction in the order a segment meets them. */
export const LAYER_ORDER: Record<Direction, readonly Layer[]> = { tx: ['sock', 'tcp', 'ip', 'dev'], rx: ['dev', 'ip', 'tcp', 'sock'] };

/** Adjacent-layer pairs of the in-kernel histograms, in latency.h's order (LT_PAIR_*). */
export const PAIRS = [
  { dir: 'tx', from: 'sock', to: 'tcp' },
  { dir: 'tx', from: 'tcp', to: 'ip' },
  { dir: 'tx', from: 'ip', to: 'dev' },
  { dir: 'tx', from: 'dev', to: 'dev' },
  { dir: 'rx', from: 'dev', to: 'dev' },
  { dir: 'rx', from: 'dev', to: 'ip' },
  { dir: 'rx', from: 'ip', to: 'tcp' },
  { dir: 'rx', from: 'tcp', to: 'sock' },
] as const satisfies readonly { dir: Direction; from: Layer; to: Layer }[];

/**
 * The segments of a path between two servers, in order. Each is the delay between two
 * consecutive timestamps of the packet, so they add up exactly to the end-to-end delay:
 *   tx_sock_tcp  sender: queued on the socket → TCP sends it (departure time)
 *   tx_tcp_ip    sender: TCP → IP output
 *   tx_ip_dev    sender: IP → its first device
 *   tx_hops      sender: first device → last device it crossed on the sender (veth peer, bridge, NIC)
 *   wire         sender's last device → receiver's first device (clocks of two servers: carries a bound)
 *   rx_hops      receiver: first device → last device (NIC, bridge, veth into a container)
 *   rx_dev_ip    receiver: last device → IP (socket filter)
 *   rx_ip_tcp    receiver: IP → TCP
 *   rx_tcp_sock  receiver: TCP → the application reads it
 */
export const SEGMENTS = ['tx_sock_tcp', 'tx_tcp_ip', 'tx_ip_dev', 'tx_hops', 'wire', 'rx_hops', 'rx_dev_ip', 'rx_ip_tcp', 'rx_tcp_sock'] as const;
export type Segment = (typeof SEGMENTS)[number];

/** Totals reported beside the segments: one-way (sender's first device → receiver's first device) and end-to-end (socket → socket). */
export const TOTALS = ['one_way', 'end_to_end'] as const;
export type Total = (typeof TOTALS)[number];
