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
 *
 * A round's solve depends on the rounds around it, up to SETTLE_ROUNDS on either side; once that
 * many later rounds have come it is settled: settleMesh solves each round once, with the rounds
 * before it as context, and keeps its clocks and drifts (mesh_rounds_settled, mesh_clocks). A
 * report reads the settled rounds of its range and solves only the newest, the ones not settled
 * yet (or a round that gained edges since), so its cost no longer grows with the range.
 */
import type { Pool } from '../db/pool.js';
import * as store from './store.js';
import { DRIFT_WINDOW, edgeAt, MANAGER, NO_DRIFT, solveMeshRounds, UNKNOWN_DRIFT, type ExactClock, type NodeDrift, type TimedEdge } from '../timesync/mesh.js';
import { median } from '../lib/stats.js';
import { KEEP_JOBS, RETRY, type FeatureJobs } from '../lib/jobs.js';
import { QUEUES } from '../protocol/redis.js';

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
  /** Of those, rounds read as settled (solved once and kept); the rest were solved for this report. */
  settledRounds: number;
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

/** Rounds on either side of a round that can move its solve: three passes of drift fits over DRIFT_WINDOW rounds either side (timesync/mesh.ts). */
export const SETTLE_ROUNDS = 3 * DRIFT_WINDOW;
/** Rounds solved together when settling (each solved once, with SETTLE_ROUNDS before it as context). */
const SETTLE_CHUNK = 400;

/** One round's solve: the clocks at its reference time and each node's drift there. */
interface SolvedRound {
  refMs: number;
  /** Its edges when solved. */
  edges: number;
  /** Edges that loop consistency set aside, the manager's own probes of its anchors not counted. */
  rejected: number;
  clocks: Map<string, ExactClock>;
  drift: Map<string, NodeDrift>;
}

const num = (v: number | null) => (v === null ? null : Number(v));
const edgeRow = (r: store.StoredMeshEdgeRow): EdgeRow => ({
  epoch: Number(r.epoch), a: r.a, b: r.b, at: Number(r.at_unix_ms), edgeAt: Number(r.edge_unix_ms), sent: Number(r.sent), lost: Number(r.lost),
  offset: r.offset_ns === null ? null : BigInt(r.offset_ns), bound: num(r.bound_ns), fwdMin: num(r.fwd_min_ns), fwdP50: num(r.fwd_p50_ns), bwdMin: num(r.bwd_min_ns), bwdP50: num(r.bwd_p50_ns),
});

/** Edges by round, oldest round first. */
function byRound(edges: EdgeRow[]): Map<number, EdgeRow[]> {
  const out = new Map<number, EdgeRow[]>();
  for (const e of edges) (out.get(e.epoch) ?? out.set(e.epoch, []).get(e.epoch)!).push(e);
  return new Map([...out].sort((x, y) => x[0] - y[0]));
}

/** Rounds solved together (oldest first), with the manager's anchor rounds around them. */
async function solveRounds(pool: Pool, lists: EdgeRow[][]): Promise<SolvedRound[]> {
  if (!lists.length) return [];
  let first = Infinity, last = -Infinity;
  for (const list of lists) for (const e of list) (first = Math.min(first, e.at)), (last = Math.max(last, e.at));
  // the anchors' rounds around them (an hour either side: their drift carries them)
  const rounds = new Map<string, Round[]>();
  for (const r of await store.roundsBetween(pool, first - 3_600_000, last + 3_600_000)) {
    const list = rounds.get(r.server) ?? rounds.set(r.server, []).get(r.server)!;
    list.push({ at: Number(r.at_unix_ms), offset: BigInt(r.offset_ns), bound: Number(r.bound_ns), driftPpb: Number(r.drift_ppb), driftBoundPpb: Number(r.drift_bound_ppb) });
  }
  // every round's clocks at its own time, solved together for the drifts
  const { rounds: solved, drift } = solveMeshRounds(
    lists.map((list) => {
      const refMs = median(list.map((e) => e.edgeAt));
      const measured = list.filter((e) => e.offset !== null && e.bound !== null && e.bound > 0);
      return { refMs, edges: [...anchorEdges(rounds, refMs), ...measured.map((e) => ({ a: e.a, b: e.b, offsetNs: e.offset!, boundNs: e.bound!, atMs: e.edgeAt }))] };
    }),
  );
  return solved.map((r, k) => ({
    refMs: r.refMs, edges: lists[k]!.length, rejected: r.rejected.filter((e) => e.a !== MANAGER).length, clocks: r.clocks,
    drift: new Map([...r.clocks.keys()].map((n) => [n, drift(n, k)])),
  }));
}

/**
 * Solves and keeps every round that SETTLE_ROUNDS later rounds follow and no earlier call kept,
 * SETTLE_CHUNK at a time, each with the SETTLE_ROUNDS rounds before it as context; returns how
 * many it kept. Rounds keep coming in order (a round whose edges come SETTLE_ROUNDS rounds late is
 * kept without them; a report sees its count differ and solves it again).
 */
export async function settleMesh(pool: Pool, maxRounds = Infinity): Promise<number> {
  let kept = 0;
  const ids = new Map((await store.servers(pool)).map((s) => [s.name, s.id]));
  for (;;) {
    const newest = await store.newestSettledMeshRound(pool);
    const context = newest === null ? [] : await store.meshRoundsFrom(pool, newest, SETTLE_ROUNDS, false);
    const epochs = await store.meshRoundsFrom(pool, context.at(-1) ?? 0, context.length + SETTLE_CHUNK + SETTLE_ROUNDS, true);
    const fresh = epochs.filter((e) => newest === null || e > newest);
    if (fresh.length <= SETTLE_ROUNDS || kept >= maxRounds) return kept;
    const lists = [...byRound((await store.meshEdgesOfRounds(pool, MANAGER, epochs[0]!, epochs.at(-1)!)).map(edgeRow)).values()];
    const solved = await solveRounds(pool, lists);
    const rounds: Parameters<typeof store.saveSettledMeshRounds>[1] = [];
    const clocks: Parameters<typeof store.saveSettledMeshRounds>[2] = [];
    for (let k = 0; k < solved.length - SETTLE_ROUNDS; k++) {
      const epoch = lists[k]![0]!.epoch, r = solved[k]!;
      if (newest !== null && epoch <= newest) continue;
      rounds.push([epoch, r.refMs, r.edges, r.rejected]);
      for (const [n, c] of r.clocks) {
        const id = ids.get(n), d = r.drift.get(n)!;
        if (id !== undefined) clocks.push([epoch, id, c.offsetNs.toString(), c.boundNs, d.driftPpb, d.boundPpb]);
      }
    }
    if (!rounds.length) return kept;
    const conn = await pool.getConnection();
    try {
      await store.saveSettledMeshRounds(conn, rounds, clocks);
    } finally {
      conn.release();
    }
    kept += rounds.length;
  }
}

/** The settled rounds fromEpoch..toEpoch, by round. */
async function loadSettled(pool: Pool, fromEpoch: number, toEpoch: number): Promise<Map<number, SolvedRound>> {
  const out = new Map<number, SolvedRound>();
  for (const r of await store.settledMeshRounds(pool, fromEpoch, toEpoch)) out.set(Number(r.epoch), { refMs: Number(r.ref_unix_ms), edges: Number(r.edges), rejected: Number(r.rejected), clocks: new Map(), drift: new Map() });
  for (const c of await store.settledMeshClocks(pool, fromEpoch, toEpoch)) {
    const r = out.get(Number(c.epoch));
    if (!r) continue;
    r.clocks.set(c.server, { offsetNs: BigInt(c.offset_ns), boundNs: Number(c.bound_ns) });
    r.drift.set(c.server, { driftPpb: Number(c.drift_ppb), boundPpb: Number(c.drift_bound_ppb) });
  }
  return out;
}

/** What a mesh report covers: [sinceUnixMs, untilUnixMs), and whether it first settles what it can (else it only reads what is settled: the gauges, read on a scrape). */
export interface MeshRange {
  sinceUnixMs?: number;
  untilUnixMs?: number;
  settle?: boolean;
}

/** The mesh's one-way delays over the range. */
export async function loadMeshReport(pool: Pool, o: MeshRange = {}): Promise<MeshReport> {
  const { report, series } = await meshAnalysis(pool, o);
  seriesOf.set(report, series);
  return report;
}

/** Each report's series, from the same solve, for loadSeries (analyzer/report.ts): a report is solved once. */
export const seriesOf = new WeakMap<MeshReport, MeshPoint[]>();

/** The report, and each round's corrected one-way delay per direction. */
export async function meshAnalysis(pool: Pool, o: MeshRange = {}): Promise<{ report: MeshReport; series: MeshPoint[] }> {
  const since = o.sinceUnixMs ?? 0, until = o.untilUnixMs ?? 8.64e15;
  const edges = (await store.meshEdges(pool, MANAGER, since, until)).map(edgeRow);
  const report: MeshReport = { rounds: 0, settledRounds: 0, edges: edges.length, unsolved: 0, rejected: 0, directions: [], clocks: [], slowest: null };
  const series: MeshPoint[] = [];
  if (!edges.length) return { report, series };
  // per direction: the corrected one-way delays of every round, with their bounds
  type Dir = { src: string; dst: string; mins: number[]; p50s: number[]; bounds: number[]; sent: number; lost: number };
  // by source, then destination: a pair's edges come back every round (no key text made per edge)
  const dirs = new Map<string, Map<string, Dir>>();
  const dir = (src: string, dst: string): Dir => {
    let from = dirs.get(src);
    if (!from) dirs.set(src, (from = new Map()));
    let d = from.get(dst);
    if (!d) from.set(dst, (d = { src, dst, mins: [], p50s: [], bounds: [], sent: 0, lost: 0 }));
    return d;
  };
  const byEpoch = byRound(edges);
  const epochs = [...byEpoch.keys()];
  // the range's settled rounds as they were kept; the others (the newest, or one that gained
  // edges since) solved now, with SETTLE_ROUNDS rounds either side as context
  if (o.settle !== false) await settleMesh(pool);
  const solvedOf = await loadSettled(pool, epochs[0]!, epochs.at(-1)!);
  const open = epochs.filter((e) => solvedOf.get(e)?.edges !== byEpoch.get(e)!.length);
  report.settledRounds = epochs.length - open.length;
  // open rounds near each other are solved together (a late round far back apart from the newest)
  const place = new Map(epochs.map((e, k) => [e, k]));
  for (let i = 0; i < open.length; ) {
    let j = i + 1;
    while (j < open.length && place.get(open[j]!)! - place.get(open[j - 1]!)! <= 2 * SETTLE_ROUNDS) j++;
    const before = await store.meshRoundsFrom(pool, open[i]!, SETTLE_ROUNDS + 1, false);
    const after = await store.meshRoundsFrom(pool, open[j - 1]!, SETTLE_ROUNDS + 1, true);
    const around = byRound((await store.meshEdgesOfRounds(pool, MANAGER, Math.min(...before), Math.max(...after))).map(edgeRow));
    const solved = await solveRounds(pool, [...around.values()]);
    const at = new Map([...around.keys()].map((e, k) => [e, solved[k]!]));
    for (const e of open.slice(i, j)) solvedOf.set(e, at.get(e)!);
    i = j;
  }
  let lastClocks = new Map<string, ExactClock>();
  for (const [epoch, list] of byEpoch) {
    report.rounds++;
    const solved = solvedOf.get(epoch)!;
    report.rejected += solved.rejected;
    lastClocks = solved.clocks; // rounds come oldest first
    const clockOf = (n: string) => (n === MANAGER ? PINNED : solved.clocks.get(n));
    const driftOf = (n: string) => (n === MANAGER ? NO_DRIFT : (solved.drift.get(n) ?? UNKNOWN_DRIFT));
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
      const moved = edgeAt({ a: e.a, b: e.b, offsetNs: e.offset, boundNs: e.bound, atMs: e.edgeAt }, solved.refMs, driftOf);
      const corr = Number(moved.offsetNs - (cb.offsetNs - ca.offsetNs));
      const bound = Math.min(ca.boundNs + cb.boundNs + (moved.boundNs - e.bound), e.bound + Math.abs(corr));
      const fwd = dir(e.a, e.b), bwd = dir(e.b, e.a);
      fwd.mins.push(e.fwdMin! + corr), fwd.p50s.push(e.fwdP50! + corr), fwd.bounds.push(bound);
      bwd.mins.push(e.bwdMin! - corr), bwd.p50s.push(e.bwdP50! - corr), bwd.bounds.push(bound);
      series.push({ src: e.a, dst: e.b, unixMs: e.at, oneWayNs: e.fwdP50! + corr, boundNs: bound }, { src: e.b, dst: e.a, unixMs: e.at, oneWayNs: e.bwdP50! - corr, boundNs: bound });
    }
  }
  report.clocks = [...lastClocks].map(([server, c]) => ({ server, offsetNs: c.offsetNs.toString(), boundNs: c.boundNs })).sort((x, y) => x.server.localeCompare(y.server));
  const p50Of = new Map<Dir, number>();
  const all = [...dirs.values()].flatMap((m) => [...m.values()]);
  for (const d of all) if (d.p50s.length) p50Of.set(d, median(d.p50s));
  for (const d of all) {
    // directions between servers (an anchor's probes of the manager tie the clocks only)
    if (!d.p50s.length || d.src === MANAGER || d.dst === MANAGER) continue;
    const back = dirs.get(d.dst)?.get(d.src);
    const reverse = back && p50Of.get(back);
    report.directions.push({
      src: d.src, dst: d.dst, oneWayMinNs: d.mins.reduce((m, v) => Math.min(m, v)), oneWayP50Ns: p50Of.get(d)!, boundNs: d.bounds.reduce((m, v) => Math.max(m, v)), reverseP50Ns: reverse ?? null,
      rounds: d.p50s.length, sent: d.sent, lost: d.lost, lossRatio: d.sent ? d.lost / d.sent : 0,
    });
  }
  report.directions.sort((x, y) => y.oneWayP50Ns - x.oneWayP50Ns);
  const top = report.directions[0];
  if (top) report.slowest = { src: top.src, dst: top.dst, oneWayP50Ns: top.oneWayP50Ns, reverseP50Ns: top.reverseP50Ns };
  return { report, series };
}

export const MESH_SETTLE_SCHEDULER = 'mesh-settle';
/** Rounds one settle job solves at most (the rest wait for the next job: each stays short). */
const SETTLE_PER_JOB = 3 * SETTLE_CHUNK;

/** With the mesh on: a job every minute settles the rounds that have become settled, so reports and gauges only read them. */
export function meshJobs(pool: Pool): FeatureJobs {
  return {
    queue: QUEUES.mesh,
    concurrency: 1,
    run: async () => ({ settled: await settleMesh(pool, SETTLE_PER_JOB) }),
    schedules: [{ id: MESH_SETTLE_SCHEDULER, everyMs: 60_000, name: 'settle', opts: { ...KEEP_JOBS, ...RETRY } }],
  };
}
