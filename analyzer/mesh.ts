/**
 * One-way delay between servers from the probe mesh alone, without application traffic (issue
 * 26). Each mesh round's edges (mesh_edges: what every observer measured to its peers) are
 * solved together with the manager's probes of its anchors (clock_offsets, carried to the round
 * along their fitted drift) for every server's clock (timesync/mesh.ts). Each edge measured its
 * one-way delays as if its own offset were the truth; the solved clocks correct them: what the
 * edge's offset is off by (a path asymmetry, which one pair of probes cannot see) moves from one
 * direction to the other. The bound of a corrected delay is the bound of the pair's solved clock
 * difference: the smaller of the two clocks' bounds added and the edge's own causality bound
 * plus the correction.
 *
 * A round's edges are measured seconds apart (each observer probes its peers one after another),
 * and two clocks 10 ppm apart move 10 µs a second: each edge is carried to its round's time (the
 * median of its edges') along the clocks' drifts, fitted over the range's rounds, its bound grown
 * by theirs (timesync/mesh.ts solveMeshRounds).
 */
import type { Pool } from '../db/pool.js';
import * as store from './store.js';
import { edgeAt, MANAGER, solveMeshRounds, type ExactClock, type TimedEdge } from '../timesync/mesh.js';
import { median } from '../lib/stats.js';

/** One direction between two servers over the report's range. */
export interface MeshDirection {
  src: string;
  dst: string;
  /** Lowest one-way delay over the range (ns), and the median of the rounds' medians. */
  oneWayMinNs: number;
  oneWayP50Ns: number;
  /** The largest bound among the rounds behind oneWayMinNs and oneWayP50Ns (ns). */
  boundNs: number;
  /** The other direction's oneWayP50Ns (null: not measured). */
  reverseP50Ns: number | null;
  /** Rounds that measured this direction. */
  rounds: number;
  /** Probes that crossed this pair (either direction's prober) and those without a reply. */
  sent: number;
  lost: number;
  lossRatio: number;
}

export interface MeshReport {
  /** Mesh rounds in the range. */
  rounds: number;
  /** Edges of those rounds, and those whose clocks could not be tied to the manager (no anchor reached). */
  edges: number;
  unsolved: number;
  /** Edges that loop consistency set aside. */
  rejected: number;
  /** By one-way median, slowest first. */
  directions: MeshDirection[];
  /** Each server's clock minus the manager's as the last round solved it (a decimal: clocks may be far apart), with its bound. */
  clocks: { server: string; offsetNs: string; boundNs: number }[];
  /** The slowest direction and how much slower it is than its reverse (null: no mesh data). */
  slowest: { src: string; dst: string; oneWayP50Ns: number; reverseP50Ns: number | null } | null;
}

interface EdgeRow {
  epoch: number;
  a: string;
  b: string;
  /** When the prober sent its round, and when it measured this edge (wall-clock ms). */
  at: number;
  edgeAt: number;
  sent: number;
  lost: number;
  offset: bigint | null;
  bound: number | null;
  fwdMin: number | null;
  fwdP50: number | null;
  bwdMin: number | null;
  bwdP50: number | null;
}

interface Round {
  at: number;
  offset: bigint;
  bound: number;
  driftPpb: number;
  driftBoundPpb: number;
}

/** The manager's own clock in a solve: pinned at 0. */
const PINNED: ExactClock = { offsetNs: 0n, boundNs: 0 };

/** The manager's anchor edges at wall-clock ms `at`: each server's nearest round, carried along its drift, its bound grown by the drift's bound. */
function anchorEdges(rounds: Map<string, Round[]>, at: number): TimedEdge[] {
  const out: TimedEdge[] = [];
  for (const [server, rs] of rounds) {
    let best: Round | undefined;
    for (const r of rs) if (!best || Math.abs(r.at - at) < Math.abs(best.at - at)) best = r;
    if (!best) continue;
    const dtNs = (at - best.at) * 1e6;
    out.push({ a: MANAGER, b: server, offsetNs: best.offset + BigInt(Math.round((best.driftPpb * dtNs) / 1e9)), boundNs: best.bound + (best.driftBoundPpb * (Math.abs(dtNs) + 1e9)) / 1e9, atMs: at }); // + 1 s: the wall clocks that date both may differ
  }
  return out;
}

/** One direction's corrected one-way delay in one round (the graphs' series). */
export interface MeshPoint {
  src: string;
  dst: string;
  unixMs: number;
  oneWayNs: number;
  boundNs: number;
}

/** The mesh's one-way delays over [sinceUnixMs, untilUnixMs). */
export async function loadMeshReport(pool: Pool, o: { sinceUnixMs?: number; untilUnixMs?: number } = {}): Promise<MeshReport> {
  const { report, series } = await meshAnalysis(pool, o);
  seriesOf.set(report, series);
  return report;
}

/** Each report's series, from the same solve, for loadSeries (analyzer/report.ts): a report is solved once. */
export const seriesOf = new WeakMap<MeshReport, MeshPoint[]>();

/** The report, and each round's corrected one-way delay per direction. */
export async function meshAnalysis(pool: Pool, o: { sinceUnixMs?: number; untilUnixMs?: number } = {}): Promise<{ report: MeshReport; series: MeshPoint[] }> {
  const since = o.sinceUnixMs ?? 0, until = o.untilUnixMs ?? 8.64e15;
  const num = (v: number | null) => (v === null ? null : Number(v));
  const edges: EdgeRow[] = (await store.meshEdges(pool, MANAGER, since, until)).map((r) => ({
    epoch: Number(r.epoch), a: r.a, b: r.b, at: Number(r.at_unix_ms), edgeAt: Number(r.edge_unix_ms), sent: Number(r.sent), lost: Number(r.lost),
    offset: r.offset_ns === null ? null : BigInt(r.offset_ns), bound: num(r.bound_ns), fwdMin: num(r.fwd_min_ns), fwdP50: num(r.fwd_p50_ns), bwdMin: num(r.bwd_min_ns), bwdP50: num(r.bwd_p50_ns),
  }));
  const report: MeshReport = { rounds: 0, edges: edges.length, unsolved: 0, rejected: 0, directions: [], clocks: [], slowest: null };
  const series: MeshPoint[] = [];
  if (!edges.length) return { report, series };
  // the anchors' rounds around the range (an hour either side: their drift carries them)
  const rounds = new Map<string, Round[]>();
  for (const r of await store.roundsBetween(pool, edges[0]!.at - 3_600_000, edges[edges.length - 1]!.at + 3_600_000)) {
    const list = rounds.get(r.server) ?? rounds.set(r.server, []).get(r.server)!;
    list.push({ at: Number(r.at_unix_ms), offset: BigInt(r.offset_ns), bound: Number(r.bound_ns), driftPpb: Number(r.drift_ppb), driftBoundPpb: Number(r.drift_bound_ppb) });
  }
  // per direction: the corrected one-way delays of every round, with their bounds
  const dirs = new Map<string, { src: string; dst: string; mins: number[]; p50s: number[]; bounds: number[]; sent: number; lost: number }>();
  const dir = (src: string, dst: string) => {
    const k = `${src}\u0000${dst}`;
    return dirs.get(k) ?? dirs.set(k, { src, dst, mins: [], p50s: [], bounds: [], sent: 0, lost: 0 }).get(k)!;
  };
  const byEpoch = new Map<number, EdgeRow[]>();
  for (const e of edges) (byEpoch.get(e.epoch) ?? byEpoch.set(e.epoch, []).get(e.epoch)!).push(e);
  // every round's clocks at its own time, solved together for the drifts (oldest round first)
  const lists = [...byEpoch.values()];
  const { rounds: solvedRounds, drift: driftOf } = solveMeshRounds(
    lists.map((list) => {
      const refMs = median(list.map((e) => e.edgeAt));
      const measured = list.filter((e) => e.offset !== null && e.bound !== null && e.bound > 0);
      return { refMs, edges: [...anchorEdges(rounds, refMs), ...measured.map((e) => ({ a: e.a, b: e.b, offsetNs: e.offset!, boundNs: e.bound!, atMs: e.edgeAt }))] };
    }),
  );
  let lastClocks = new Map<string, ExactClock>();
  for (const [r, list] of lists.entries()) {
    report.rounds++;
    const solved = solvedRounds[r]!;
    report.rejected += solved.rejected.filter((e) => e.a !== MANAGER).length;
    lastClocks = solved.clocks; // rounds come oldest first
    const clockOf = (n: string) => (n === MANAGER ? PINNED : solved.clocks.get(n));
    for (const e of list) {
      // loss counts for both directions of the pair: a probe or its reply was lost, which one is not known
      for (const d of [dir(e.a, e.b), dir(e.b, e.a)]) {
        d.sent += e.sent;
        d.lost += e.lost;
      }
      const ca = clockOf(e.a), cb = clockOf(e.b);
      if (e.offset === null || e.bound === null) continue;
      if (!ca || !cb) {
        report.unsolved++;
        continue;
      }
      // what the edge's own offset is off by, against the whole mesh's clocks (the edge carried
      // to the round's time; the clocks' bounds grown by their drifts' over the time between)
      const moved = edgeAt({ a: e.a, b: e.b, offsetNs: e.offset, boundNs: e.bound, atMs: e.edgeAt }, solved.refMs, (n) => driftOf(n, r));
      const corr = Number(moved.offsetNs - (cb.offsetNs - ca.offsetNs));
      const bound = Math.min(ca.boundNs + cb.boundNs + (moved.boundNs - e.bound), e.bound + Math.abs(corr));
      const fwd = dir(e.a, e.b), bwd = dir(e.b, e.a);
      fwd.mins.push(e.fwdMin! + corr), fwd.p50s.push(e.fwdP50! + corr), fwd.bounds.push(bound);
      bwd.mins.push(e.bwdMin! - corr), bwd.p50s.push(e.bwdP50! - corr), bwd.bounds.push(bound);
      series.push({ src: e.a, dst: e.b, unixMs: e.at, oneWayNs: e.fwdP50! + corr, boundNs: bound }, { src: e.b, dst: e.a, unixMs: e.at, oneWayNs: e.bwdP50! - corr, boundNs: bound });
    }
  }
  report.clocks = [...lastClocks].map(([server, c]) => ({ server, offsetNs: c.offsetNs.toString(), boundNs: c.boundNs })).sort((x, y) => x.server.localeCompare(y.server));
  const p50Of = new Map<string, number>();
  for (const [k, d] of dirs) if (d.p50s.length) p50Of.set(k, median(d.p50s));
  for (const [k, d] of dirs) {
    // directions between servers (an anchor's probes of the manager tie the clocks only)
    if (!d.p50s.length || d.src === MANAGER || d.dst === MANAGER) continue;
    const reverse = p50Of.get(`${d.dst}\u0000${d.src}`);
    report.directions.push({
      src: d.src, dst: d.dst, oneWayMinNs: Math.min(...d.mins), oneWayP50Ns: p50Of.get(k)!, boundNs: Math.max(...d.bounds), reverseP50Ns: reverse ?? null,
      rounds: d.p50s.length, sent: d.sent, lost: d.lost, lossRatio: d.sent ? d.lost / d.sent : 0,
    });
  }
  report.directions.sort((x, y) => y.oneWayP50Ns - x.oneWayP50Ns);
  const top = report.directions[0];
  if (top) report.slowest = { src: top.src, dst: top.dst, oneWayP50Ns: top.oneWayP50Ns, reverseP50Ns: top.reverseP50Ns };
  return { report, series };
}
