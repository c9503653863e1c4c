/**
 * The cross-layer latency probe (latency.bpf.c) from TypeScript: load it with the sampling
 * rules, attach every hook, decode its ring-buffer events, read its counters and histograms.
 * Constants and the event layout come from protocol/latency.ts, the view of latency.h that is
 * checked against the object when it loads.
 */
import { BpfObject, cgroupScope, ensureTracefs, inNetns, type RingReader, type Setting } from '../native/addon.js';
import { LATENCY_H as H, LT_EVENT, LT_SETTINGS } from '../protocol/latency.js';
import type { SamplingInfo } from '../conf/schema.js';
import { LAYERS, PAIRS, type Direction, type Layer } from '../protocol/layers.js';
import type { PairHistogram } from '../protocol/histograms.js';
import type { Flow } from '../protocol/records.js';

export const BUCKETS = H.LT_BUCKETS;
/** Histogram buckets read per syscall and event-loop turn (about 0.3 ms of reading). */
export const HIST_CHUNK = 1024;
export const MAX_PORTS = H.LT_MAX_PORTS;
export const F_RETRANS = H.LT_F_RETRANS;
export const F_INTERVAL = H.LT_F_INTERVAL;
export const F_DEV_RX = H.LT_F_DEV_RX;
export const F_HOP = H.LT_F_HOP;
export const EVENT_BYTES = LT_EVENT.size;
const E = LT_EVENT.offsets;

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
   * What the in-kernel histograms time (sampling_info.yaml `histograms`): every segment (all,
   * the default here), the sampled ones only (samples), or one per `histogramBytes` bytes of
   * each stream with counts scaled by length (scaled). Segments not timed meet no clock and no
   * matching.
   */
  histograms?: HistogramMode;
  /** scaled: bytes of a stream between two histogram bytes (a power of two). */
  histogramBytes?: number;
  /**
   * Interfaces whose crossings are the device layer (tc ingress and egress on each): NAME in
   * the current namespace, or NETNS/NAME in the named one (`ip netns`), for an observer that
   * watches the containers of its host.
   */
  interfaces: string[];
  /** Only this network namespace (inode; 0: all). */
  netnsIno: number;
  /**
   * Only the sockets of this cgroup v2 subtree (a path below the hierarchy's root, or under its
   * mount): the cgroup programs are attached there, not at the root. Default: every socket.
   */
  cgroup?: string;
  /** Ring buffer bytes (a power of two, at least a page). */
  ringBytes?: number;
  /** Another build of latency.bpf.c (a path): bench/observer-overhead's cost stages. */
  object?: string;
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

export type HistogramMode = 'all' | 'samples' | 'scaled';
const HIST_MODES: Record<HistogramMode, number> = { all: H.LT_HIST_ALL, samples: H.LT_HIST_SAMPLES, scaled: H.LT_HIST_SCALED };
export const DEFAULT_HISTOGRAM_BYTES = 4096;

/** log2 of the bytes between histogram bytes; refuses what is not a power of two in 2^6..2^24. */
export function histogramShift(bytes: number): number {
  const shift = Math.log2(bytes);
  if (!Number.isInteger(shift) || shift < 6 || shift > 24) throw new RangeError(`sampling: histogram_bytes ${bytes} is not a power of two from 64 to 16777216`);
  return shift;
}

/** floor(2^32 / size): the kernel's sample test multiplies by it instead of dividing by size (0: no size rule). */
export function sampleReciprocal(size: number): bigint {
  return size > 0 ? (1n << 32n) / BigInt(size) : 0n;
}

/** A bucket's count in segments: the kernel adds LT_HIST_UNITs (scaled segments add fractions). */
const segments = (units: bigint): bigint => (units + BigInt(H.LT_HIST_UNIT / 2)) / BigInt(H.LT_HIST_UNIT);

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
    /** Where the hooks go: the cgroup programs' cgroup, and the interfaces ([netns/]name). */
    private readonly at: { cgroup: string; interfaces: string[] },
  ) {}

  /** sampling_info.yaml as the probe takes it: the one place its settings become probe options. */
  static optionsOf(s: SamplingInfo): Pick<ProbeOptions, 'ports' | 'sampleSize' | 'intervalNs' | 'filterRetrans' | 'histograms' | 'histogramBytes' | 'cgroup'> {
    return {
      ports: s.ports, sampleSize: s.size, intervalNs: BigInt(Math.round(s.interval * 1e9)), filterRetrans: s.filter_retrans,
      histograms: s.histograms, histogramBytes: s.histogram_bytes, cgroup: s.cgroup,
    };
  }

  /** Loads the probe and attaches all its hooks; throws BpfError/MissingFeatureError naming the hook. */
  static open(o: ProbeOptions): LatencyProbe {
    ensureTracefs();
    const scope = cgroupScope(o.cgroup ?? '');
    const bpf = BpfObject.open(o.object ?? 'latency', {
      settings: {
        netns_ino: o.netnsIno,
        sample_size: o.sampleSize,
        sample_recip: sampleReciprocal(o.sampleSize),
        interval_ns: o.intervalNs,
        filter_retrans: o.filterRetrans,
        hist_mode: HIST_MODES[o.histograms ?? 'all'],
        hist_shift: histogramShift(o.histogramBytes ?? DEFAULT_HISTOGRAM_BYTES),
        port_index: portIndexTable(o.ports),
        cgroup_id: o.cgroup ? scope.id : 0n,
        cgroup_level: scope.level,
      } satisfies Record<keyof typeof LT_SETTINGS, Setting>,
      settingsLayout: LT_SETTINGS,
      maxEntries: o.ringBytes ? { events: o.ringBytes } : undefined,
      layouts: [LT_EVENT],
    });
    try {
      const probe = new LatencyProbe(bpf, o.ports, bpf.ring('events'), { cgroup: scope.path, interfaces: o.interfaces });
      probe.attach();
      return probe;
    } catch (e) {
      bpf.close();
      throw e;
    }
  }

  /**
   * Attaches every hook: at open, and again after detachAll() (the maps keep their flows and
   * counts). An interface named without a namespace is the current namespace's, as at open.
   * Throws, naming the hook, with what it attached left attached (detachAll() removes it).
   */
  attach(): void {
    for (const p of ['lt_tcp_send', 'lt_tcp_recv', 'lt_sock_recv', 'lt_sock_state']) this.bpf.attach(p);
    for (const p of ['lt_ip_out', 'lt_ip_in', 'lt_sockops']) this.bpf.attachCgroup(p, this.at.cgroup);
    for (const spec of this.at.interfaces) {
      const [netns, iface] = spec.includes('/') ? spec.split('/', 2) : [undefined, spec];
      const attach = () => {
        this.bpf.attachTc('lt_dev_out', iface!, 'egress');
        this.bpf.attachTc('lt_dev_in', iface!, 'ingress');
      };
      if (netns) inNetns(netns, attach);
      else attach();
    }
  }

  counters(): ProbeCounters {
    const v = this.bpf.map('counters').u64Array();
    const pairs = (base: number) => PAIRS.map((_, i) => v[base + i]!);
    return {
      events: v[H.LT_C_EVENTS]!, ringFull: v[H.LT_C_RING_FULL]!, flows: v[H.LT_C_FLOWS]!, flowFull: v[H.LT_C_FLOW_FULL]!,
      retransTx: v[H.LT_C_RETRANS_TX]!, retransRx: v[H.LT_C_RETRANS_RX]!, unparsed: v[H.LT_C_UNPARSED]!,
      matched: pairs(H.LT_C_MATCHED), unmatched: pairs(H.LT_C_UNMATCHED), excluded: pairs(H.LT_C_EXCLUDED),
    };
  }

  /**
   * The in-kernel histograms with at least one count, per watched port and layer pair. Read in
   * batches of HIST_CHUNK buckets (a syscall each, not one per bucket) with a turn of the event
   * loop between them: with 64 ports that is 16,384 buckets and about 5 ms of reading, which a
   * scrape or a snapshot must not hold the ring draining up for (bench/scrape).
   */
  async histograms(): Promise<PairHistogram[]> {
    const m = this.bpf.map('hist');
    const total = this.ports.length * PAIRS.length * BUCKETS; // the watched ports' slots come first
    const all: bigint[] = [];
    for (let at = 0; at < total; at += HIST_CHUNK) {
      if (at) await new Promise((r) => setImmediate(r));
      for (const v of m.u64Array(Math.min(HIST_CHUNK, total - at), at)) all.push(v);
    }
    const out: PairHistogram[] = [];
    this.ports.forEach((port, slot) => {
      PAIRS.forEach((pair, p) => {
        const at = (slot * PAIRS.length + p) * BUCKETS;
        const buckets = all.slice(at, at + BUCKETS).map(segments);
        if (buckets.some((c) => c > 0n)) out.push({ port, ...pair, buckets });
      });
    });
    return out;
  }

  /** bpf_stats of each program (run counts and time; needs enableBpfStats() to count). */
  programStats(): { name: string; runCount: bigint; runTimeNs: bigint }[] {
    return this.bpf.programs().map((p) => ({ name: p.name, ...this.bpf.programStats(p.name) }));
  }

  /** Stops every hook; counters, histograms and the ring stay readable until close(), and attach() starts them again. */
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
  const family = buf[off + E.family] === 10 ? 6 : 4;
  return {
    tsNs: buf.readBigUInt64LE(off + E.ts_ns),
    tcpNs: buf.readBigUInt64LE(off + E.tcp_ns),
    startSeq: buf.readUInt32LE(off + E.start_seq),
    endSeq: buf.readUInt32LE(off + E.end_seq),
    baseSeq: buf.readUInt32LE(off + E.base_seq),
    isampleSeq: buf.readUInt32LE(off + E.isample_seq),
    ifindex: buf.readUInt32LE(off + E.ifindex),
    netns: buf.readUInt32LE(off + E.netns),
    tid: buf.readUInt32LE(off + E.tid),
    cpu: buf.readUInt16LE(off + E.cpu),
    layer: LAYERS[buf[off + E.layer]!]!,
    dir: buf[off + E.dir] === H.LT_DIR_TX ? 'tx' : 'rx',
    flags: buf[off + E.flags]!,
    flow: {
      family,
      sport: buf.readUInt16LE(off + E.sport),
      dport: buf.readUInt16LE(off + E.dport),
      src: addr(buf, off + E.saddr, family),
      dst: addr(buf, off + E.daddr, family),
    },
  };
}
