/**
 * Statistics per time window, scope and segment, kept as mergeable sketches so that each run
 * only adds what is new (a window that later records reach is merged, never recomputed from
 * the paths): quantiles within lib/stats.ts RELATIVE_ERROR, max exact.
 *
 * Scopes: `pair` (src -> dst server) and `flow` (one flow of a pair) over joined paths, every
 * segment and the totals; `host` over single records (one server's own layers, whether or not
 * the other end was joined) and its device hops.
 *
 * Tail attribution: per pair and flow, for each bucket of the end-to-end delay, the count of
 * complete paths and the sum of each of their segments. Over the buckets at or above the one
 * holding the end-to-end p99, sum / count is each segment's mean over the tail, and since a
 * complete path's segments add up to its end-to-end delay, these means add up to the tail's
 * mean: each one's share is exact (the Euler decomposition of expected shortfall), to the width
 * of the threshold bucket.
 */
import { LogHistogram, VarReader, VarWriter, bucketOf, smallFloat64Array } from '../lib/stats.js';
import { SEGMENTS, TOTALS } from '../protocol/layers.js';
import { F_ROW_INTERVAL, F_ROW_RETRANS } from '../protocol/records.js';
import { F_PATH_COMPLETE, F_PATH_FAULT, F_PATH_NO_FIT, F_PATH_RETRANS } from '../protocol/paths.js';
import type { FlowEnds, Path, PathColumns, RecordColumns } from './paths.js';

export type Scope = 'pair' | 'flow' | 'host';
/** Tail buckets: 32 per power of two of the end-to-end delay (the tail's edge is known to 2%). */
const TAIL_SHIFT = 2;
const tailBucket = (v: number): number => {
  const b = bucketOf(v);
  return b < 0 ? -(-b >> TAIL_SHIFT) : b >> TAIL_SHIFT;
};
const NSEG = SEGMENTS.length;
export const TAIL_QUANTILE = 0.99;
/** Segments and totals whose values compare two servers' clocks, so carry a bound. */
const CROSS = new Set(['wire', 'one_way', 'end_to_end']);

/** Device hops per direction a group finds by a scan rather than in its Map. */
const HOP_SCAN = 8;
/** The segments and totals by index, for Group.addAt (the hot path, no lookup by name). */
const INDEXED = [...SEGMENTS, 'one_way', 'end_to_end'];
const ONE_WAY = NSEG, END_TO_END = NSEG + 1;

export class Group {
  readonly hist = new Map<string, LogHistogram>();
  bound = 0;
  faults = 0;
  /** End-to-end bucket -> [count, sum of each segment]. */
  readonly tail = new Map<number, Float64Array>();
  /** hist's entries of INDEXED, once they exist (never replaced: merge adds into them). */
  private readonly byIndex: (LogHistogram | undefined)[] = [];
  /** hist's entries of device hops, by direction (0 tx, 1 rx) and "ifindex:netns". */
  private readonly byHop = [new Map<number | string, LogHistogram>(), new Map<number | string, LogHistogram>()] as const;
  /** The first HOP_SCAN hops of each direction: their (ifindex, netns) pairs and histograms. */
  private readonly hopIds: [number[], number[]] = [[], []];
  private readonly hopHists: [LogHistogram[], LogHistogram[]] = [[], []];

  add(segment: string, v: number): void {
    let h = this.hist.get(segment);
    if (!h) this.hist.set(segment, (h = new LogHistogram()));
    h.add(v);
  }

  /** add() of INDEXED[i]. */
  addAt(i: number, v: number): void {
    let h = this.byIndex[i];
    if (!h) {
      const name = INDEXED[i]!;
      h = this.hist.get(name);
      if (!h) this.hist.set(name, (h = new LogHistogram()));
      this.byIndex[i] = h;
    }
    h.add(v);
  }

  /** A device hop's delay ("hop:tx:ifindex@netns" in hist). */
  addHop(rx: boolean, ifindex: number, netns: number, v: number): void {
    // a host has few devices: the first HOP_SCAN of each direction are found by a scan of their
    // numbers (a Map keyed by a double hashes a boxed number per hop), the rest in the Map
    const d = rx ? 1 : 0, ids = this.hopIds[d], hs = this.hopHists[d];
    for (let j = 0, o = 0; j < hs.length; j++, o += 2)
      if (ids[o] === ifindex && ids[o + 1] === netns) {
        hs[j]!.add(v);
        return;
      }
    const m = this.byHop[d];
    // one exact double for the usual ifindex (below 2^21), else a text key
    const key = ifindex < 0x200000 ? ifindex * 4294967296 + netns : `${ifindex}@${netns}`;
    let h = m.get(key);
    if (!h) {
      const name = `hop:${rx ? 'rx' : 'tx'}:${ifindex}@${netns}`;
      h = this.hist.get(name);
      if (!h) this.hist.set(name, (h = new LogHistogram()));
      m.set(key, h);
      if (hs.length < HOP_SCAN) ids.push(ifindex, netns), hs.push(h);
    }
    h.add(v);
  }

  /** Complete path k's end-to-end delay (e2e[k]) and its segments (seg[k * NSEG] on). */
  addTail(e2e: ArrayLike<number>, seg: ArrayLike<number>, k: number): void {
    const b = tailBucket(e2e[k]!), off = k * NSEG;
    let t = this.tail.get(b);
    if (!t) this.tail.set(b, (t = smallFloat64Array(NSEG + 1)));
    t[0]! += 1;
    for (let i = 0; i < NSEG; i++) t[i + 1]! += seg[off + i]!;
  }

  merge(o: Group): void {
    for (const [s, h] of o.hist) {
      const mine = this.hist.get(s);
      if (mine) mine.merge(h);
      else this.hist.set(s, h);
    }
    this.bound = Math.max(this.bound, o.bound);
    this.faults += o.faults;
    for (const [b, t] of o.tail) {
      const mine = this.tail.get(b);
      if (!mine) this.tail.set(b, t);
      else for (let i = 0; i <= NSEG; i++) mine[i]! += t[i]!;
    }
  }

  /** Each segment's mean over the tail, and the tail's mean (their sum), or undefined without complete paths. */
  tailMeans(): { means: Float64Array; total: number; count: number } | undefined {
    let count = 0;
    for (const t of this.tail.values()) count += t[0]!;
    if (!count) return undefined;
    const buckets = [...this.tail.keys()].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil(TAIL_QUANTILE * count));
    let seen = 0, from = buckets.length - 1;
    for (let i = 0; i < buckets.length; i++) {
      seen += this.tail.get(buckets[i]!)![0]!;
      if (seen >= rank) {
        from = i;
        break;
      }
    }
    const sums = smallFloat64Array(NSEG + 1);
    for (let i = from; i < buckets.length; i++) {
      const t = this.tail.get(buckets[i]!)!;
      for (let k = 0; k <= NSEG; k++) sums[k]! += t[k]!;
    }
    const means = smallFloat64Array(NSEG);
    let total = 0;
    for (let k = 0; k < NSEG; k++) total += (means[k] = sums[k + 1]! / sums[0]!);
    return { means, total, count: sums[0]! };
  }

  /** Stored form: per bucket its count and each segment's sum, whole nanoseconds as varints. */
  tailToBuffer(): Buffer | null {
    if (!this.tail.size) return null;
    const w = new VarWriter();
    w.uint(this.tail.size);
    for (const [b, t] of this.tail) {
      w.int(b);
      w.uint(t[0]!);
      for (let i = 1; i <= NSEG; i++) w.int(Math.round(t[i]!));
    }
    return w.done();
  }

  tailFromBuffer(buf: Buffer): void {
    const r = new VarReader(buf);
    const n = r.uint();
    for (let i = 0; i < n; i++) {
      const b = r.int();
      const t = smallFloat64Array(NSEG + 1);
      t[0] = r.uint();
      for (let k = 1; k <= NSEG; k++) t[k] = r.int();
      const mine = this.tail.get(b);
      if (mine) for (let k = 0; k <= NSEG; k++) mine[k]! += t[k]!;
      else this.tail.set(b, t);
    }
  }
}

export interface GroupKey {
  window: number;
  scope: Scope;
  src: number;
  dst: number;
  flow: number;
}

export const groupKey = (k: GroupKey): string => `${k.window}|${k.scope}|${k.src}|${k.dst}|${k.flow}`;
export function parseGroupKey(s: string): GroupKey {
  const [w, scope, src, dst, flow] = s.split('|');
  return { window: Number(w), scope: scope as Scope, src: Number(src), dst: Number(dst), flow: Number(flow) };
}

export interface FlowWindow {
  window: number;
  flow: number;
  src: number;
  dst: number;
  samples: number;
  sizeSamples: number;
  retransmissions: number;
  firstNs: number;
  lastNs: number;
}

export interface StatsOptions {
  windowNs: number;
  /** Keep retransmissions out of the statistics (sampling_info filter_retrans); their paths are still stored. */
  filterRetrans: boolean;
}

/** The values of joined paths that the statistics read (PathColumns, or one path's in arrays of one). */
type PathValues = Pick<PathColumns, 'tNs' | 'src' | 'dst' | 'flags' | 'oneWay' | 'e2e' | 'bound' | 'seg'>;

/** Path k's totals, bound, fault and tail into a group. */
function totals(g: Group, paths: PathValues, k: number, cross: boolean): void {
  const oneWay = paths.oneWay[k]!, e2e = paths.e2e[k]!, bound = paths.bound[k]!, flags = paths.flags[k]!;
  if (cross && !Number.isNaN(oneWay)) g.addAt(ONE_WAY, oneWay);
  if (cross && !Number.isNaN(e2e)) g.addAt(END_TO_END, e2e);
  if (cross && Number.isFinite(bound)) g.bound = Math.max(g.bound, bound);
  if (flags & F_PATH_FAULT) g.faults++;
  else if (flags & F_PATH_COMPLETE) g.addTail(paths.e2e, paths.seg, k);
}

/** What one analysis chunk adds, per window and group. */
export class WindowStats {
  readonly groups = new Map<string, Group>();
  readonly flows = new Map<string, FlowWindow>();
  /** A fast path to groups: window -> numeric key -> group (the same objects as in groups), a map per scope. */
  private readonly cache = { pair: new Map<number, Map<number, Group>>(), flow: new Map<number, Map<number, Group>>(), host: new Map<number, Map<number, Group>>() };
  /** window -> its entries of flows, by flow id and by the flow's number in the records' columns. */
  private readonly flowCache = new Map<number, { byId: Map<number, FlowWindow>; byNumber: (FlowWindow | undefined)[] }>();

  /** The groups of the last path and of the last record added, and what they were for. */
  private readonly lastPath: { window: number; flowId: number; src: number; dst: number; pair?: Group; flow?: Group } = { window: NaN, flowId: NaN, src: NaN, dst: NaN };
  private readonly lastRecord: { window: number; server: number; group?: Group } = { window: NaN, server: NaN };

  constructor(private readonly o: StatsOptions) {}

  windowOf(globalNs: number): number {
    return Math.floor(globalNs / this.o.windowNs);
  }

  group(k: GroupKey): Group {
    const key = groupKey(k);
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = new Group()));
    return g;
  }

  private cached(window: number, scope: Scope, src: number, dst: number, flow: number): Group {
    const byWindow = this.cache[scope];
    let w = byWindow.get(window);
    if (!w) byWindow.set(window, (w = new Map()));
    // a flow's id is 52 bits; a pair (or a host) is two server ids below 2^26 each
    const k = scope === 'flow' ? flow : src * 67108864 + dst;
    let g = w.get(k);
    if (!g) w.set(k, (g = this.group({ window, scope, src, dst, flow })));
    return g;
  }

  /** One path object (the tests'): as a path of columns of one. */
  addPath(p: Path): void {
    const one: PathValues = {
      tNs: Float64Array.of(p.tNs), src: Int32Array.of(p.src), dst: Int32Array.of(p.dst), flags: Uint8Array.of(p.flags),
      oneWay: Float64Array.of(p.oneWay), e2e: Float64Array.of(p.e2e), bound: Float64Array.of(p.bound), seg: Float64Array.from(p.seg),
    };
    this.addPathAt(one, 0, [p.tx.flow], 0);
  }

  /**
   * Every joined path, `flow[tx[k]]` being path k's flow id: a flow's paths go in together, so
   * the sketches they update (the flow's, its pair's) stay in the CPU's cache while they do; in
   * the order they were joined, each path touched another flow's, a cache miss per add.
   */
  addPaths(paths: PathColumns, c: RecordColumns): void {
    const n = paths.n, fx = c.fx;
    // a counting sort by the flows' numbers in c (stable: each flow's paths in their order)
    const at = new Int32Array(c.flowIds.length + 1);
    for (let k = 0; k < n; k++) at[fx[paths.tx[k]!]! + 1]!++;
    for (let i = 1; i < at.length; i++) at[i]! += at[i - 1]!;
    const order = new Int32Array(n);
    for (let k = 0; k < n; k++) order[at[fx[paths.tx[k]!]!]!++] = k;
    for (let j = 0; j < n; j++) {
      const k = order[j]!;
      this.addPathAt(paths, k, c.flowIds, fx[paths.tx[k]!]!);
    }
  }

  /**
   * Path k of joined columns, of flow flowIds[fx]. Its calls take slots and arrays, not values:
   * a number passed to a call V8 does not inline is boxed (an allocation per path), and a flow
   * id (52 bits) always is.
   */
  private addPathAt(paths: PathValues, k: number, flowIds: readonly number[], fx: number): void {
    const flags = paths.flags[k]!;
    if (this.o.filterRetrans && flags & F_PATH_RETRANS) return;
    const window = this.windowOf(paths.tNs[k]!), src = paths.src[k]!, dst = paths.dst[k]!, flowId = flowIds[fx]!;
    const cross = !(flags & F_PATH_NO_FIT);
    // paths come flow by flow (addPaths): the groups of the path before are most often this one's
    const m = this.lastPath;
    if (m.window !== window || m.flowId !== flowId || m.src !== src || m.dst !== dst)
      (m.window = window), (m.flowId = flowId), (m.src = src), (m.dst = dst), (m.pair = this.cached(window, 'pair', src, dst, 0)), (m.flow = this.cached(window, 'flow', src, dst, flowId));
    const pair = m.pair!, flow = m.flow!, seg = paths.seg;
    // every segment's percentiles are its pair's; a flow keeps its totals and its tail's segments
    for (let i = 0, off = k * NSEG; i < NSEG; i++) {
      const v = seg[off + i]!;
      if (v === v) pair.addAt(i, v); // x === x: not NaN
    }
    totals(pair, paths, k, cross);
    totals(flow, paths, k, cross);
  }

  /**
   * Every record of c from slot `from` on, each at firstNs[i] on the global timeline: its own
   * layers and hops on its server (host scope), and a sender record's sample to its flow (its
   * ends: ends[c.fx[i]]). The calls per record take slots, not times: a number passed to a call
   * V8 does not inline is boxed, an allocation per record.
   */
  addRecords(c: RecordColumns, from: number, firstNs: Float64Array, ends: readonly FlowEnds[]): void {
    for (let i = from; i < c.n; i++) {
      this.addRecordAt(c, i, firstNs);
      if (c.tx[i]) this.addFlowSampleAt(c, i, firstNs, ends[c.fx[i]!]!);
    }
  }

  /** Record i's own layers and hops, on its server (host scope), at firstNs[i]. */
  private addRecordAt(c: RecordColumns, i: number, firstNs: Float64Array): void {
    if (this.o.filterRetrans && (c.attempt[i]! > 0 || c.flags[i]! & F_ROW_RETRANS)) return;
    const tNs = firstNs[i]!;
    // records come entry by entry, each of one server
    const window = this.windowOf(tNs), server = c.server[i]!, m = this.lastRecord;
    if (m.window !== window || m.server !== server) (m.window = window), (m.server = server), (m.group = this.cached(window, 'host', server, 0, 0));
    const g = m.group!;
    const sock = c.sock[i]!, tcp = c.tcp[i]!, ip = c.ip[i]!, dev = c.dev[i]!, last = c.last[i]!;
    // the layer segments the record tells on its own (SEGMENTS indices); x === x: not NaN
    // (written out, not through a helper closure: one made per record was most of what this allocated)
    const rx = c.tx[i] === 0;
    let v: number;
    if (!rx) {
      if ((v = tcp - sock) === v) g.addAt(0, v);
      if ((v = ip - tcp) === v) g.addAt(1, v);
      if ((v = dev - ip) === v) g.addAt(2, v);
      if ((v = last - dev) === v) g.addAt(3, v);
    } else {
      if ((v = last - dev) === v) g.addAt(5, v);
      if ((v = ip - last) === v) g.addAt(6, v);
      if ((v = tcp - ip) === v) g.addAt(7, v);
      if ((v = sock - tcp) === v) g.addAt(8, v);
    }
    for (let h = c.hopFirst[i]!, end = h + c.hopCount[i]!; h < end; h++) g.addHop(rx, c.hopIfindex[h]!, c.hopNetns[h]!, c.hopDelay[h]!);
  }

  /** Another chunk's records come (added to the same statistics): flows are numbered anew in their columns. */
  newRecords(): void {
    for (const f of this.flowCache.values()) f.byNumber.length = 0;
  }

  /**
   * Sender record i's contribution to its flow's throughput and retransmissions, at firstNs[i];
   * the flow's number in the records' columns (RecordColumns.fx) finds its entry without a lookup
   * by id.
   */
  private addFlowSampleAt(c: RecordColumns, i: number, firstNs: Float64Array, e: FlowEnds): void {
    const tNs = firstNs[i]!, fx = c.fx[i]!, flow = c.flowIds[fx]!, attempt = c.attempt[i]!, rowFlags = c.flags[i]!;
    const src = e.src || c.server[i]!, dst = e.dst;
    const window = this.windowOf(tNs);
    let byFlow = this.flowCache.get(window);
    if (!byFlow) this.flowCache.set(window, (byFlow = { byId: new Map(), byNumber: [] }));
    let f = byFlow.byNumber[fx];
    if (!f) {
      f = byFlow.byId.get(flow);
      if (!f) {
        byFlow.byId.set(flow, (f = { window, flow, src, dst, samples: 0, sizeSamples: 0, retransmissions: 0, firstNs: tNs, lastNs: tNs }));
        this.flows.set(`${window}|${flow}`, f);
      }
      byFlow.byNumber[fx] = f;
    }
    f.samples++;
    const retrans = attempt > 0 || (rowFlags & F_ROW_RETRANS) !== 0;
    if (retrans) f.retransmissions++;
    else if (!(rowFlags & F_ROW_INTERVAL)) f.sizeSamples++; // by the size rule: one per sample size of stream
    f.firstNs = Math.min(f.firstNs, tNs);
    f.lastNs = Math.max(f.lastNs, tNs);
  }
}

/** One row of path_stats, computed from a (merged) group. */
export interface StatRow {
  segment: string;
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  bound: number;
  faults: number;
  tailMean: number | null;
  tailShare: number | null;
  sketch: Buffer;
  tailSketch: Buffer | null;
}

export function statRows(g: Group, scope: Scope): StatRow[] {
  const tail = scope === 'host' ? undefined : g.tailMeans();
  const rows: StatRow[] = [];
  for (const [segment, h] of g.hist) {
    const [p50, p90, p99, p999] = h.quantiles([0.5, 0.9, 0.99, 0.999]) as [number, number, number, number];
    const i = SEGMENTS.indexOf(segment as (typeof SEGMENTS)[number]);
    const tailMean = !tail ? null : i >= 0 ? tail.means[i]! : segment === 'end_to_end' ? tail.total : null;
    rows.push({
      segment, samples: h.count, p50, p90, p99, p999, max: h.max, mean: h.sum / h.count,
      bound: CROSS.has(segment) ? g.bound : 0,
      faults: CROSS.has(segment) ? g.faults : 0,
      tailMean,
      tailShare: tailMean === null || !tail!.total ? null : tailMean / tail!.total,
      sketch: h.toBuffer(),
      tailSketch: segment === 'end_to_end' ? g.tailToBuffer() : null,
    });
  }
  return rows;
}

/** The segment that took the largest part of a path, its segments at seg[off] (for spikes). */
export function topSegment(seg: ArrayLike<number>, off = 0): string {
  let best = -1, bestV = -Infinity;
  for (let i = 0; i < NSEG; i++) if (seg[off + i]! > bestV) (bestV = seg[off + i]!), (best = i);
  return best < 0 ? 'unknown' : SEGMENTS[best]!;
}

export const ALL_SEGMENTS: readonly string[] = [...SEGMENTS, ...TOTALS];
