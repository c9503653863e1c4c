/**
 * The TypeScript view of observer/bpf/latency.h, the contract between the latency probe in the
 * kernel and user space: constants (by their C names) and the layout of struct lt_event. A unit
 * test compares both with the header; the layout is also checked against the object's BTF when
 * the probe is loaded.
 */
import { struct, type FieldSpec } from './layout.js';

/** Every #define of latency.h, by name. */
export const LATENCY_H = {
  LT_LAYER_SOCK: 0,
  LT_LAYER_TCP: 1,
  LT_LAYER_IP: 2,
  LT_LAYER_DEV: 3,
  LT_DIR_TX: 0,
  LT_DIR_RX: 1,
  LT_PAIR_TX_SOCK_TCP: 0,
  LT_PAIR_TX_TCP_IP: 1,
  LT_PAIR_TX_IP_DEV: 2,
  LT_PAIR_TX_DEV_DEV: 3,
  LT_PAIR_RX_DEV_DEV: 4,
  LT_PAIR_RX_DEV_IP: 5,
  LT_PAIR_RX_IP_TCP: 6,
  LT_PAIR_RX_TCP_SOCK: 7,
  LT_PAIRS: 8,
  LT_BUCKETS: 32,
  LT_HIST_UNIT: 256,
  LT_HIST_ALL: 0,
  LT_HIST_SAMPLES: 1,
  LT_HIST_SCALED: 2,
  LT_MAX_PORTS: 64,
  LT_F_RETRANS: 1,
  LT_F_INTERVAL: 2,
  LT_F_DEV_RX: 4,
  LT_F_HOP: 8,
  LT_C_EVENTS: 0,
  LT_C_RING_FULL: 1,
  LT_C_FLOWS: 2,
  LT_C_FLOW_FULL: 3,
  LT_C_RETRANS_TX: 4,
  LT_C_RETRANS_RX: 5,
  LT_C_UNPARSED: 6,
  LT_C_MATCHED: 8,
  LT_C_UNMATCHED: 16,
  LT_C_EXCLUDED: 24,
  LT_C_MAX: 32,
} as const;

/** One layer crossing of a sampled segment (the ring buffer's record). */
/**
 * The `const volatile` settings of latency.bpf.c, by name and C type: checked against the
 * object's .rodata when it is opened (a setting of another size is refused, LayoutError), and
 * against the C source by a unit test.
 */
export const LT_SETTINGS = {
  netns_ino: 'u32',
  sample_size: 'u32',
  sample_recip: 'u64',
  interval_ns: 'u64',
  filter_retrans: 'u8',
  hist_mode: 'u8',
  hist_shift: 'u8',
  port_index: ['u8', 65536],
  cgroup_id: 'u64',
  cgroup_level: 'u32',
} as const satisfies FieldSpec;

export const LT_EVENT = struct('lt_event', {
  ts_ns: 'u64',
  tcp_ns: 'u64',
  start_seq: 'u32',
  end_seq: 'u32',
  base_seq: 'u32',
  isample_seq: 'u32',
  ifindex: 'u32',
  netns: 'u32',
  tid: 'u32',
  cpu: 'u16',
  layer: 'u8',
  dir: 'u8',
  flags: 'u8',
  family: 'u8',
  sport: 'u16',
  dport: 'u16',
  saddr: ['u8', 16],
  daddr: ['u8', 16],
  pad: ['u8', 2],
});
