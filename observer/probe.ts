/**
 * The cross-layer latency probe (latency.bpf.c) from TypeScript: load it with the sampling
 * rules, attach every hook, decode its ring-buffer events, read its counters and histograms.
 * The event layout and constants mirror observer/bpf/latency.h.
 */
import { BpfObject, cgroupV2Root, ensureTracefs, inNetns, type RingReader } from '../native/bpf.js';

export const LAYERS = ['sock', 'tcp', 'ip', 'dev'] as const;
export type Layer = (typeof LAYERS)[number];
export type Direction = 'tx' | 'rx';

/** Adjacent-layer pairs of the in-kernel histograms, in latency.h's order. */
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
export const BUCKETS = 32;
export const MAX_PORTS = 64;

export const F_RETRANS = 1;
export const F_INTERVAL = 2;
export const F_DEV_RX = 4;
export const F_HOP = 8;

const C = { events: 0, ringFull: 1, flows: 2, flowFull: 3, retransTx: 4, retransRx: 5, unparsed: 6, matched: 8, unmatched: 16, excluded: 24 } as const;
const C_MAX = 32;
export const EVENT_BYTES = 88;

/** One layer crossing of a sampled segment, as the kernel reports it. */
export interface LayerEvent {
  tsNs: bigint;
  /** Transmit IP events: TCP's departure time of the segment (0n: unknown). */
  tcpNs: bigint;
  startSeq: number;
  endSeq: number;
  baseSeq: number;
  isampleSeq: number;
  ifindex: number;
  netns: number;
  tid: number;
  cpu: number;
  layer: Layer;
  dir: Direction;
  flags: number;
  flow: Flow;
}

export interface Flow {
  family: 4 | 6;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

export interface ProbeOptions {
  /** TCP ports to watch (local or remote end), at most 64. */
  ports: number[];
  /** Bytes between samples (0: size rule off). */
  sampleSize: number;
  /** Nanoseconds after which a flow without a sample gets one (0: off). */
  intervalNs: bigint;
  /** Keep retransmissions out of the histograms. */
  filterRetrans: boolean;
  /**
   * Interfaces whose crossings are the device layer (tc ingress and egress on each): NAME in
   * the current namespace, or NETNS/NAME in the named one (`ip netns`), for an observer that
   * watches the containers of its host.
   */
  interfaces: string[];
  /** Only this network namespace (inode; 0: all). */
  netnsIno: number;
  /** Ring buffer bytes (a power of two, at least a page). */
  ringBytes?: number;
}

export interface ProbeCounters {
  events: bigint;
  ringFull: bigint;
  flows: bigint;
  flowFull: bigint;
  retransTx: bigint;
  retransRx: bigint;
  unparsed: bigint;
  /** Per pair (PAIRS order). */
  matched: bigint[];
  unmatched: bigint[];
  excluded: bigint[];
}

export interface PairHistogram {
  port: number;
  dir: Direction;
  from: Layer;
  to: Layer;
  /** Counts per log2 bucket: buckets[b] counts delays in [2^b, 2^(b+1)) ns (b = 0 also holds 0). */
  buckets: bigint[];
}

export function portIndexTable(ports: number[]): Buffer {
  if (ports.length === 0) throw new RangeError('sampling: at least one port to watch is needed');
  if (ports.length > MAX_PORTS) throw new RangeError(`sampling: at most ${MAX_PORTS} ports, got ${ports.length}`);
  const table = Buffer.alloc(65536);
  ports.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`sampling: port ${p} is not in 1..65535`);
    table[p] = i + 1;
  });
  return table;
}

export class LatencyProbe {
  private constructor(
    private readonly bpf: BpfObject,
    readonly ports: number[],
    readonly ring: RingReader,
  ) {}

  /** Loads the probe and attaches all its hooks; throws BpfError/MissingFeatureError naming the hook. */
  static open(o: ProbeOptions): LatencyProbe {
    ensureTracefs();
    const bpf = BpfObject.open('latency', {
      settings: {
        netns_ino: o.netnsIno,
        sample_size: o.sampleSize,
        interval_ns: o.intervalNs,
        filter_retrans: o.filterRetrans,
        port_index: portIndexTable(o.ports),
      },
      maxEntries: o.ringBytes ? { events: o.ringBytes } : undefined,
    });
    try {
      for (const p of ['lt_tcp_send', 'lt_tcp_recv', 'lt_sock_recv', 'lt_sock_state']) bpf.attach(p);
      const cgroup = cgroupV2Root();
      for (const p of ['lt_ip_out', 'lt_ip_in', 'lt_sockops']) bpf.attachCgroup(p, cgroup);
      for (const spec of o.interfaces) {
        const [netns, iface] = spec.includes('/') ? spec.split('/', 2) : [undefined, spec];
        const attach = () => {
          bpf.attachTc('lt_dev_out', iface!, 'egress');
          bpf.attachTc('lt_dev_in', iface!, 'ingress');
        };
        if (netns) inNetns(netns, attach);
        else attach();
      }
      return new LatencyProbe(bpf, o.ports, bpf.ring('events'));
    } catch (e) {
      bpf.close();
      throw e;
    }
  }

  counters(): ProbeCounters {
    const m = this.bpf.map('counters');
    const v = Array.from({ length: C_MAX }, (_, i) => m.u64At(i));
    const pairs = (base: number) => PAIRS.map((_, i) => v[base + i]!);
    return {
      events: v[C.events]!, ringFull: v[C.ringFull]!, flows: v[C.flows]!, flowFull: v[C.flowFull]!,
      retransTx: v[C.retransTx]!, retransRx: v[C.retransRx]!, unparsed: v[C.unparsed]!,
      matched: pairs(C.matched), unmatched: pairs(C.unmatched), excluded: pairs(C.excluded),
    };
  }

  /** The in-kernel histograms with at least one count, per watched port and layer pair. */
  histograms(): PairHistogram[] {
    const m = this.bpf.map('hist');
    const key = Buffer.alloc(4);
    const out: PairHistogram[] = [];
    this.ports.forEach((port, slot) => {
      PAIRS.forEach((pair, p) => {
        const buckets: bigint[] = [];
        for (let b = 0; b < BUCKETS; b++) {
          key.writeUInt32LE((slot * PAIRS.length + p) * BUCKETS + b);
          const value = m.lookup(key)!;
          buckets.push(m.perCpuValues(value).reduce((s, x) => s + x.readBigUInt64LE(0), 0n));
        }
        if (buckets.some((c) => c > 0n)) out.push({ port, ...pair, buckets });
      });
    });
    return out;
  }

  /** bpf_stats of each program (run counts and time; needs enableBpfStats() to count). */
  programStats(): { name: string; runCount: bigint; runTimeNs: bigint }[] {
    return this.bpf.programs().map((p) => ({ name: p.name, ...this.bpf.programStats(p.name) }));
  }

  /** Stops every hook; counters, histograms and the ring stay readable until close(). */
  detachAll(): void {
    this.bpf.detachAll();
  }

  close(): void {
    this.bpf.close();
  }
}

function addr(buf: Buffer, off: number, family: 4 | 6): string {
  if (family === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(off + i).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes "::"
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** Decodes one struct lt_event. */
export function decodeEvent(buf: Buffer, off: number): LayerEvent {
  const family = buf[off + 49] === 10 ? 6 : 4;
  return {
    tsNs: buf.readBigUInt64LE(off),
    tcpNs: buf.readBigUInt64LE(off + 8),
    startSeq: buf.readUInt32LE(off + 16),
    endSeq: buf.readUInt32LE(off + 20),
    baseSeq: buf.readUInt32LE(off + 24),
    isampleSeq: buf.readUInt32LE(off + 28),
    ifindex: buf.readUInt32LE(off + 32),
    netns: buf.readUInt32LE(off + 36),
    tid: buf.readUInt32LE(off + 40),
    cpu: buf.readUInt16LE(off + 44),
    layer: LAYERS[buf[off + 46]!]!,
    dir: buf[off + 47] === 0 ? 'tx' : 'rx',
    flags: buf[off + 48]!,
    flow: {
      family,
      sport: buf.readUInt16LE(off + 50),
      dport: buf.readUInt16LE(off + 52),
      src: addr(buf, off + 54, family),
      dst: addr(buf, off + 70, family),
    },
  };
}
