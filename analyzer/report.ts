/**
 * The report over a time range, from the analyzer's tables: per pair of servers every segment's
 * percentiles (the stored sketches of the range's windows merged, so a percentile over any range
 * is as exact as over one window), the tail attribution and the segment that grows most, per
 * host its own layers (sampled paths, and the in-kernel histograms of every segment beside them,
 * to one log2 bucket), the worst flows with throughput and retransmissions, unmatched samples,
 * clock faults and spikes. `latscope report` prints it; `--json` prints it as it is (REPORT_VERSION).
 */
import { loadMeshReport, meshAnalysis, seriesOf, type MeshPoint, type MeshReport } from './mesh.js';
import type { Pool } from '../db/pool.js';
import { big } from '../db/pool.js';
import { LogHistogram, bucketMid, log2Quantile } from '../lib/stats.js';
import { SEGMENTS, TOTALS } from '../protocol/layers.js';
import { Group, TAIL_QUANTILE } from './windows.js';
import * as store from './store.js';

export const REPORT_VERSION = 1;

export interface SegmentStats {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface TailAttribution {
  /** The paths at or above this quantile of the end-to-end delay. */
  quantile: number;
  paths: number;
  /** Mean end-to-end delay of those paths, ns: the sum of the segment means. */
  meanNs: number;
  /** Each segment's mean over the tail, ns, and its share of meanNs. */
  means: Record<string, number>;
  shares: Record<string, number>;
  /** The segment with the largest share. */
  holder: string;
  /** The segment whose tail mean exceeds its median by the most, and by how much (ns). */
  growsMost: { segment: string; growthNs: number };
}

export interface PairReport {
  src: string;
  dst: string;
  /** Joined paths in the statistics (end-to-end samples). */
  paths: number;
  segments: Record<string, SegmentStats>;
  /** Largest clock bound of the cross-server values (wire, one_way, end_to_end), ns. */
  boundNs: number;
  faults: number;
  tail?: TailAttribution;
}

export interface KernelQuantile {
  segments: number;
  /** The log2 bucket holding the quantile: the value lies in [low, high) ns. */
  p50: { low: number; high: number };
  p99: { low: number; high: number };
}

export interface HostReport {
  server: string;
  /** Its own layers over every record it sent or received (sampled). */
  segments: Record<string, SegmentStats>;
  /** In-kernel histograms over every matched segment in the range, per port and layer pair ("port dir from->to"). */
  kernel: Record<string, KernelQuantile>;
}

export interface FlowReport {
  flowId: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  srcServer: string | null;
  dstServer: string | null;
  samples: number;
  retransmissions: number;
  retransmissionRate: number;
  throughputBytesPerS: number | null;
  endToEnd?: SegmentStats;
  oneWay?: SegmentStats;
}

export interface Report {
  version: typeof REPORT_VERSION;
  generatedAtUnixMs: number;
  range: { fromUnixMs: number | null; toUnixMs: number | null; windows: number; windowNs: number | null };
  servers: string[];
  pairs: PairReport[];
  hosts: HostReport[];
  flows: FlowReport[];
  unmatched: { src: string; dst: string; reason: string; samples: number }[];
  faults: number;
  /** One-way delay between servers from the probe mesh (time_sync.yaml mesh), without application traffic. */
  mesh: MeshReport;
  spikes: { windowNs: string; atUnixMs: number | null; flow: string | null; src: string; dst: string; endToEndNs: number; medianNs: number; timesMedian: number; topSegment: string; segments: Record<string, number | null>; boundNs: number | null; txCpu: number | null; txTid: number | null; rxCpu: number | null; rxTid: number | null; hostEvents: SpikeHostEvent[] }[];
}

export interface ReportOptions {
  /** Only windows that start at or after this (ms since 1970). */
  sinceUnixMs?: number;
  /** Only windows that start before this (ms since 1970). */
  untilUnixMs?: number;
  /** Only this pair of servers (by name). */
  pair?: [string, string];
  /** Only flows whose id or "src:sport>dst:dport" contains this. */
  flow?: string;
  /** At most this many flows and spikes. */
  top?: number;
}

const stats = (h: LogHistogram): SegmentStats => {
  const [p50, p90, p99, p999] = h.quantiles([0.5, 0.9, 0.99, 0.999]) as [number, number, number, number];
  return { samples: h.count, p50, p90, p99, p999, max: h.max, mean: h.sum / h.count };
};

interface Merged {
  group: Group;
  scope: string;
  src: number;
  dst: number;
  flow: number;
}

export async function loadReport(pool: Pool, o: ReportOptions = {}): Promise<Report> {
  const top = o.top ?? 10;
  const names = new Map<number, string>((await store.servers(pool)).map((r) => [Number(r.id), r.name]));
  const name = (id: number) => names.get(id) ?? (id ? `server ${id}` : '(not observed)');
  const idOf = (n: string) => [...names].find(([, v]) => v === n)?.[0] ?? -1;
  const pairIds: [number, number] | undefined = o.pair && [idOf(o.pair[0]), idOf(o.pair[1])];

  const rows = await store.statSketches(pool, o, pairIds);
  const merged = new Map<string, Merged>();
  const windows = new Set<string>();
  let fromMs: number | null = null, toMs: number | null = null, windowNs: number | null = null;
  for (const r of rows) {
    windows.add(String(r.window_ns));
    windowNs = Number(r.window_len_ns);
    if (r.window_unix_ms !== null) {
      fromMs = fromMs === null ? Number(r.window_unix_ms) : Math.min(fromMs, Number(r.window_unix_ms));
      toMs = toMs === null ? Number(r.window_unix_ms) + windowNs / 1e6 : Math.max(toMs, Number(r.window_unix_ms) + windowNs / 1e6);
    }
    if (!r.sketch) continue;
    const key = `${r.scope}|${r.src_server_id}|${r.dst_server_id}|${r.flow_id}`;
    let m = merged.get(key);
    if (!m) merged.set(key, (m = { group: new Group(), scope: r.scope, src: Number(r.src_server_id), dst: Number(r.dst_server_id), flow: Number(r.flow_id) }));
    const g = new Group();
    g.hist.set(r.segment, LogHistogram.fromBuffer(r.sketch));
    g.bound = Number(r.bound_ns);
    if (r.segment === 'end_to_end') {
      g.faults = Number(r.faults);
      if (r.tail_sketch) g.tailFromBuffer(r.tail_sketch);
    }
    m.group.merge(g);
  }
  const segs = (g: Group) => Object.fromEntries([...SEGMENTS, ...TOTALS, ...[...g.hist.keys()].filter((k) => k.startsWith('hop:')).sort()].filter((s) => g.hist.has(s)).map((s) => [s, stats(g.hist.get(s)!)]));

  const pairs: PairReport[] = [];
  const hosts: HostReport[] = [];
  let faults = 0;
  for (const m of merged.values()) {
    if (m.scope === 'pair') {
      const s = segs(m.group);
      pairs.push({ src: name(m.src), dst: name(m.dst), paths: s.end_to_end?.samples ?? 0, segments: s, boundNs: m.group.bound, faults: m.group.faults, tail: tailOf(m.group, s) });
      faults += m.group.faults;
    } else if (m.scope === 'host') hosts.push({ server: name(m.src), segments: segs(m.group), kernel: {} });
  }
  pairs.sort((a, b) => (b.segments.end_to_end?.p99 ?? b.segments.one_way?.p99 ?? 0) - (a.segments.end_to_end?.p99 ?? a.segments.one_way?.p99 ?? 0));
  hosts.sort((a, b) => a.server.localeCompare(b.server));
  await addKernelHistograms(pool, hosts, names, fromMs, toMs);

  // no window in the range: a list that matches none (an empty IN () is not SQL, and would shift the other placeholders)
  const windowList = windows.size ? [...windows] : ['-1'];
  const flows = await loadFlows(pool, merged, name, windowList, o, top);
  const unmatched = (await store.unmatchedIn(pool, windowList))
    .map((r) => ({ src: name(Number(r.src_server_id)), dst: name(Number(r.dst_server_id)), reason: r.reason, samples: Number(r.n) }))
    .filter((u) => !o.pair || (u.src === o.pair[0] && u.dst === o.pair[1]));
  const sp = await store.spikesIn(pool, windowList, o.pair, top);
  const spikes = sp.map((r) => ({
    windowNs: String(r.window_ns), atUnixMs: r.at_unix_ms === null ? null : Number(r.at_unix_ms),
    flow: r.flow_src === null ? null : `${r.flow_src}:${r.flow_sport} → ${r.flow_dst}:${r.flow_dport}`,
    src: r.src, dst: r.dst, endToEndNs: Number(r.end_to_end_ns), medianNs: Number(r.median_ns), timesMedian: Number(r.times_median), topSegment: r.top_segment,
    segments: Object.fromEntries(SEGMENTS.map((s) => [s, r[s] === null || r[s] === undefined ? null : Number(r[s])])), boundNs: r.bound_ns === null ? null : Number(r.bound_ns),
    txCpu: r.tx_cpu ?? null, txTid: r.tx_tid ?? null, rxCpu: r.rx_cpu ?? null, rxTid: r.rx_tid ?? null,
    hostEvents: [] as SpikeHostEvent[],
  }));
  // what each end's host was doing on the packet's CPUs while it was there (same clock: the host's own)
  for (const [i, r] of sp.entries()) spikes[i]!.hostEvents = await hostEventsOf(pool, name, [[r.tx_server_id, r.tx_seq], [r.rx_server_id, r.rx_seq]]);
  // the probe mesh's one-way delays need no traffic: over the asked range (or all of it)
  const mesh = await loadMeshReport(pool, { sinceUnixMs: o.sinceUnixMs, untilUnixMs: o.untilUnixMs });
  if (o.pair) mesh.directions = mesh.directions.filter((d) => (d.src === o.pair![0] && d.dst === o.pair![1]) || (d.src === o.pair![1] && d.dst === o.pair![0]));
  return {
    version: REPORT_VERSION,
    generatedAtUnixMs: Date.now(),
    range: { fromUnixMs: fromMs, toUnixMs: toMs, windows: windows.size, windowNs },
    servers: [...names.values()],
    pairs, hosts, flows, unmatched, faults, spikes, mesh,
  };
}

/** A host-jitter outlier on a server and CPU a slow packet was on, while it was there. */
export interface SpikeHostEvent {
  server: string;
  kind: string;
  cpu: number;
  comm: string;
  pid: number;
  delayNs: number;
  /** ns from the start of the packet's time on that server to the start of the event (negative: it began before). */
  offsetNs: number;
  otherComm: string | null;
  otherPid: number | null;
  detail: string | null;
}

/** The longest host events overlapping each record's time on its server, on the CPUs it used there. */
async function hostEventsOf(pool: Pool, name: (id: number) => string, records: [number | null, store.Big | null][]): Promise<SpikeHostEvent[]> {
  const out: SpikeHostEvent[] = [];
  for (const [sid, seq] of records) {
    if (sid === null || seq === null) continue;
    const p = await store.recordTimes(pool, sid, seq);
    if (!p) continue;
    const ns = [p.sock_ns, p.tcp_ns, p.ip_ns, p.dev_ns].filter((x) => x !== null).map((x) => BigInt(x));
    const cpus = [...new Set([p.sock_cpu, p.tcp_cpu, p.ip_cpu, p.dev_cpu].filter((x) => x !== null).map(Number))];
    if (!ns.length || !cpus.length) continue;
    const from = ns.reduce((a, b) => (b < a ? b : a)), to = ns.reduce((a, b) => (b > a ? b : a));
    // a database from before migration 6: no host events
    const ev = await store.hostEventsDuring(pool, sid, cpus, from, to).catch((): store.HostEventRow[] => []);
    for (const e of ev)
      out.push({ server: name(Number(sid)), kind: e.kind, cpu: Number(e.cpu), comm: e.comm, pid: Number(e.pid), delayNs: Number(e.delay_ns), offsetNs: Number(e.offset_ns), otherComm: e.other_comm, otherPid: e.other_pid === null ? null : Number(e.other_pid), detail: e.detail });
  }
  return out.sort((a, b) => b.delayNs - a.delayNs);
}

/** The tail attribution of a pair or flow group: shares, the holder, the segment that grows most. */
function tailOf(g: Group, s: Record<string, SegmentStats>): TailAttribution | undefined {
  const t = g.tailMeans();
  if (!t || !(t.total > 0)) return undefined;
  const means = Object.fromEntries(SEGMENTS.map((seg, i) => [seg, t.means[i]!]));
  const shares = Object.fromEntries(SEGMENTS.map((seg, i) => [seg, t.means[i]! / t.total]));
  const holder = SEGMENTS.reduce((a, b) => (means[b]! > means[a]! ? b : a));
  let growsMost = { segment: holder as string, growthNs: -Infinity };
  for (const seg of SEGMENTS) {
    const growth = means[seg]! - (s[seg]?.p50 ?? 0);
    if (growth > growsMost.growthNs) growsMost = { segment: seg, growthNs: growth };
  }
  return { quantile: TAIL_QUANTILE, paths: t.count, meanNs: t.total, means, shares, holder, growsMost };
}

/** An in-kernel histogram's key: "server_id|port dir from->to" (the label after the bar, as reports show it). */
const kernelKey = (r: store.KernelBucketRow): string => `${r.server_id}|${r.port} ${r.dir} ${r.from_layer}->${r.to_layer}`;

/** Per host, the in-kernel histograms over the range: the last snapshot in it minus the last one before it. */
async function addKernelHistograms(pool: Pool, hosts: HostReport[], names: Map<number, string>, fromMs: number | null, toMs: number | null): Promise<void> {
  const snapshot = async (beforeMs: number | null) => {
    const out = new Map<string, number[]>();
    for (const r of await store.kernelSnapshot(pool, beforeMs)) {
      const key = kernelKey(r);
      const b = out.get(key) ?? new Array(32).fill(0);
      b[Number(r.bucket)] = Number(r.count);
      out.set(key, b);
    }
    return out;
  };
  const end = await snapshot(toMs);
  const start = fromMs === null ? new Map<string, number[]>() : await snapshot(fromMs);
  for (const [key, b] of end) {
    const [sid, label] = key.split('|') as [string, string];
    const host = hosts.find((h) => h.server === names.get(Number(sid)));
    if (!host) continue;
    const s = start.get(key);
    // a smaller count than before: the observer restarted, its counts begin again
    const d = b.map((c, i) => (s && c >= s[i]! ? c - s[i]! : c));
    const total = d.reduce((x, y) => x + y, 0);
    const p50 = log2Quantile(d, 0.5), p99 = log2Quantile(d, 0.99);
    if (total && p50 && p99) host.kernel[label] = { segments: total, p50, p99 };
  }
}

async function loadFlows(pool: Pool, merged: Map<string, Merged>, name: (id: number) => string, windows: string[], o: ReportOptions, top: number): Promise<FlowReport[]> {
  const groups = [...merged.values()].filter((m) => m.scope === 'flow');
  if (!groups.length) return [];
  const info = new Map((await store.flowTotals(pool, windows, groups.map((g) => g.flow))).map((r) => [Number(r.flow_id), r]));
  const out: FlowReport[] = [];
  for (const g of groups) {
    const f = info.get(g.flow);
    if (!f) continue;
    const label = `${g.flow} ${f.src}:${f.sport}>${f.dst}:${f.dport}`;
    if (o.flow && !label.includes(o.flow)) continue;
    const e2e = g.group.hist.get('end_to_end'), ow = g.group.hist.get('one_way');
    const span = f.first_ns === null || f.last_ns === null ? 0 : Number(big(f.last_ns) - big(f.first_ns));
    const samples = Number(f.samples ?? 0);
    out.push({
      flowId: g.flow, src: f.src, sport: Number(f.sport), dst: f.dst, dport: Number(f.dport),
      srcServer: f.src_server_id === null ? null : name(Number(f.src_server_id)), dstServer: f.dst_server_id === null ? null : name(Number(f.dst_server_id)),
      samples, retransmissions: Number(f.retrans ?? 0), retransmissionRate: samples ? Number(f.retrans) / samples : 0,
      throughputBytesPerS: span > 0 ? (Number(f.bytes ?? 0) * 1e9) / span : null,
      endToEnd: e2e && stats(e2e), oneWay: ow && stats(ow),
    });
  }
  out.sort((a, b) => (b.endToEnd?.p99 ?? b.oneWay?.p99 ?? 0) - (a.endToEnd?.p99 ?? a.oneWay?.p99 ?? 0));
  return out.slice(0, top);
}

/** Per-window figures for graphs: a pair's one-way delay, a flow's throughput, the kernel's histograms over time, CDFs. */
export interface Series {
  /** One-way delay per pair and window: p50, p99 and the clock bound (ns). */
  oneWay: { src: string; dst: string; unixMs: number; p50: number; p99: number; boundNs: number; samples: number }[];
  /** Per flow (the report's worst ones) and window: throughput and retransmissions. */
  flows: { flow: string; unixMs: number; throughputBytesPerS: number | null; retransmissions: number; samples: number }[];
  /** In-kernel histogram counts between consecutive snapshots: per host, "port dir from->to", time and log2 bucket. */
  kernel: { server: string; label: string; unixMs: number; bucket: number; count: number }[];
  /** Cumulative distributions over the range: per host and layer segment, and per pair for the wire. */
  cdf: { group: string; segment: string; ns: number; fraction: number }[];
  /** The probe mesh: each round's one-way delay per direction, with its bound. */
  mesh: MeshPoint[];
}

export async function loadSeries(pool: Pool, report: Report, o: ReportOptions = {}): Promise<Series> {
  const names = new Map<number, string>((await store.servers(pool)).map((r) => [Number(r.id), r.name]));
  const oneWay = (await store.oneWayWindows(pool, o))
    .map((r) => ({ src: names.get(Number(r.src_server_id)) ?? '?', dst: names.get(Number(r.dst_server_id)) ?? '?', unixMs: Number(r.window_unix_ms), p50: Number(r.p50_ns), p99: Number(r.p99_ns), boundNs: Number(r.bound_ns), samples: Number(r.samples) }))
    .filter((r) => !o.pair || (r.src === o.pair[0] && r.dst === o.pair[1]));
  const flowIds = report.flows.map((f) => f.flowId);
  const flows: Series['flows'] = [];
  if (flowIds.length) {
    for (const r of await store.flowWindows(pool, o, flowIds)) {
      const f = report.flows.find((x) => x.flowId === Number(r.flow_id))!;
      const span = Number(big(r.last_ns) - big(r.first_ns));
      // the legend names hosts where the flow's ends are servers: "node1:5000 → node2:40112"
      flows.push({ flow: `${f.srcServer ?? f.src}:${f.sport} → ${f.dstServer ?? f.dst}:${f.dport}`, unixMs: Number(r.window_unix_ms), throughputBytesPerS: span > 0 ? (Number(r.bytes) * 1e9) / span : null, retransmissions: Number(r.retransmissions), samples: Number(r.samples) });
    }
  }
  const kernel: Series['kernel'] = [];
  const hist = await store.kernelSnapshotsSince(pool, report.range.fromUnixMs === null ? null : report.range.fromUnixMs - 60_000);
  const last = new Map<string, number[]>();
  const snap = new Map<string, { at: number; buckets: number[] }>();
  const flush = (key: string) => {
    const cur = snap.get(key);
    if (!cur) return;
    const [sid, label] = key.split('|') as [string, string];
    const prev = last.get(key);
    if (prev) cur.buckets.forEach((c, b) => {
      const d = c >= (prev[b] ?? 0) ? c - (prev[b] ?? 0) : c; // a restarted observer counts from 0
      if (d > 0) kernel.push({ server: names.get(Number(sid)) ?? '?', label, unixMs: cur.at, bucket: b, count: d });
    });
    last.set(key, cur.buckets);
    snap.delete(key);
  };
  for (const r of hist) {
    const key = kernelKey(r);
    const at = Number(r.at);
    const cur = snap.get(key);
    if (cur && cur.at !== at) flush(key);
    const s = snap.get(key) ?? { at, buckets: new Array(32).fill(0) };
    s.buckets[Number(r.bucket)] = Number(r.count);
    snap.set(key, s);
  }
  for (const key of [...snap.keys()]) flush(key);
  const cdf: Series['cdf'] = [];
  const merged = new Map<string, LogHistogram>();
  for (const r of await store.cdfSketches(pool, o)) {
    const group = r.scope === 'host' ? names.get(Number(r.src_server_id)) ?? '?' : `${names.get(Number(r.src_server_id))} → ${names.get(Number(r.dst_server_id))}`;
    if (o.pair && r.scope === 'pair' && group !== `${o.pair[0]} → ${o.pair[1]}`) continue;
    const key = `${group}|${r.segment}`;
    const h = merged.get(key) ?? new LogHistogram();
    h.merge(LogHistogram.fromBuffer(r.sketch));
    merged.set(key, h);
  }
  for (const [key, h] of merged) {
    const [group, segment] = key.split('|') as [string, string];
    let seen = 0;
    for (const [b, c] of h.sortedBuckets()) {
      seen += c;
      const ns = Math.min(h.max, Math.max(h.min, bucketMid(b)));
      if (ns > 0) cdf.push({ group, segment, ns, fraction: seen / h.count });
    }
  }
  const solved = seriesOf.get(report.mesh) ?? (await meshAnalysis(pool, { sinceUnixMs: o.sinceUnixMs, untilUnixMs: o.untilUnixMs })).series;
  const mesh = solved.filter((x) => !o.pair || (x.src === o.pair[0] && x.dst === o.pair[1]) || (x.src === o.pair[1] && x.dst === o.pair[0]));
  return { oneWay, flows, kernel, cdf, mesh };
}
