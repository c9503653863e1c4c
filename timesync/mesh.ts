/**
 * Clocks solved over a probe mesh (issue 26). Every observer probes some peers' responders; each
 * probe pair gives an edge: the offset of clock b against clock a (b − a, NTP's convention) and
 * its causality bound (half the round trip less the responder's hold: whatever the path's
 * asymmetry, the true offset lies within offset ± bound). The manager probes a few anchors the
 * same way, as a node of its own, pinned at 0.
 *
 * The solve is weighted least squares over the servers' own edges (weights 1/bound²): a
 * Laplacian system, solved by conjugate gradients (sparse, a few ms for 1,000 servers). The
 * manager's edges with its anchors only place each connected part of the mesh against the
 * manager (solveTied): they do not bend the servers' clocks relative to each other. Probing both
 * directions of a pair cancels a stamping bias common to every probe, which the star (the
 * manager probing everyone, one way) cannot.
 *
 * Loop consistency: the true offsets satisfy every edge's interval at once, so a solution that
 * leaves an edge outside its own interval shows a bad probe (a forged or corrupted reply, a clock
 * step). The worst such edge is set aside and the solve runs again, until every edge kept agrees.
 *
 * Bounds are hard: along the path of least total bound from the manager, the offsets add up to
 * an estimate p within that total B of the truth; the solution's bound is B + |x − p|.
 *
 * A series of rounds (solveMeshRounds) is solved with the clocks' drifts: each edge carried to
 * its round's time, each clock read from the line fitted through the rounds around it.
 */

import { MESH_MANAGER } from '../protocol/mesh.js';
import { fitClock, offsetAt, MAX_DRIFT_PPB, type ClockFit } from './estimator.js';

export interface MeshEdge {
  /** The prober's node (the manager: MANAGER). */
  a: string;
  /** The responder's node. */
  b: string;
  /** Clock b minus clock a, ns. */
  offsetNs: number;
  /** |offsetNs − truth| ≤ boundNs (the causality interval), ns. */
  boundNs: number;
  /** The bound the edge's weight comes from, when not boundNs: its own measurement's, before a drift carried it in time (see edgeAt). */
  weightBoundNs?: number;
}

export interface NodeClock {
  /** The node's clock minus the manager's, ns. */
  offsetNs: number;
  /** |offsetNs − truth| ≤ boundNs, ns. */
  boundNs: number;
}

export interface MeshSolution {
  clocks: Map<string, NodeClock>;
  /** Nodes with no path of kept edges to the manager. */
  unreached: string[];
  /** Edges set aside by loop consistency, worst first. */
  rejected: MeshEdge[];
  /** Conjugate-gradient iterations over all solves. */
  iterations: number;
  solves: number;
}

export const MANAGER = MESH_MANAGER;

export interface SolveOptions {
  /** Relative residual at which conjugate gradients stop. */
  tolerance?: number;
  /** At most this many edges set aside (then the solve stands as it is). */
  maxRejected?: number;
  /** Where conjugate gradients start: an earlier solution of these nodes (offsets as solveMesh gives them); else 0. */
  start?: Map<string, NodeClock>;
}

/** Solves the mesh; see the module's comment. */
export function solveMesh(edges: MeshEdge[], o: SolveOptions = {}): MeshSolution {
  const names = new Map<string, number>([[MANAGER, 0]]);
  const id = (n: string) => names.get(n) ?? (names.set(n, names.size), names.size - 1);
  const A = new Int32Array(edges.length), B = new Int32Array(edges.length);
  const theta = new Float64Array(edges.length), bound = new Float64Array(edges.length), weight = new Float64Array(edges.length);
  edges.forEach((e, i) => {
    if (!(e.boundNs > 0) || !Number.isFinite(e.offsetNs)) throw new RangeError(`mesh: edge ${e.a} → ${e.b}: a bound > 0 and a finite offset are needed`);
    A[i] = id(e.a);
    B[i] = id(e.b);
    theta[i] = e.offsetNs;
    bound[i] = e.boundNs;
    weight[i] = 1 / (e.weightBoundNs ?? e.boundNs) ** 2;
  });
  const n = names.size;
  const kept = new Uint8Array(edges.length).fill(1);
  const rejected: number[] = [];
  let iterations = 0, solves = 0;
  let x = new Float64Array(n);
  if (o.start) for (const [name, i] of names) x[i] = o.start.get(name)?.offsetNs ?? 0;
  let reach: Uint8Array;
  for (;;) {
    reach = reachable(n, A, B, kept);
    const r = solveTied(n, A, B, theta, bound, weight, kept, reach, x, o.tolerance ?? 1e-10);
    x = r.x;
    iterations += r.iterations;
    solves++;
    if (rejected.length >= (o.maxRejected ?? Math.ceil(edges.length / 10))) break;
    // the edge furthest outside its own interval, if any
    let worst = -1, worstBy = 1 + 1e-9;
    for (let e = 0; e < edges.length; e++) {
      if (!kept[e] || !reach[A[e]!]) continue;
      const by = Math.abs(x[B[e]!]! - x[A[e]!]! - theta[e]!) / bound[e]!;
      if (by > worstBy) {
        worst = e;
        worstBy = by;
      }
    }
    if (worst < 0) break;
    kept[worst] = 0;
    rejected.push(worst);
  }
  // (the loop ends right after a solve: `reach` and `x` are those of the edges kept)
  const paths = leastBoundPaths(n, A, B, theta, bound, kept);
  const clocks = new Map<string, NodeClock>();
  const unreached: string[] = [];
  for (const [name, i] of names) {
    if (i === 0) continue;
    if (!reach[i]) {
      unreached.push(name);
      continue;
    }
    clocks.set(name, { offsetNs: x[i]!, boundNs: paths.bound[i]! + Math.abs(x[i]! - paths.offset[i]!) });
  }
  return { clocks, unreached, rejected: rejected.map((e) => edges[e]!), iterations, solves };
}

/** Which nodes a path of kept edges joins to the manager (node 0). */
function reachable(n: number, A: Int32Array, B: Int32Array, kept: Uint8Array): Uint8Array {
  const adj = adjacency(n, A, B, kept);
  const seen = new Uint8Array(n);
  const stack = [0];
  seen[0] = 1;
  while (stack.length) {
    const v = stack.pop()!;
    for (let k = adj.start[v]!; k < adj.start[v + 1]!; k++) {
      const w = adj.other[k]!;
      if (!seen[w]) {
        seen[w] = 1;
        stack.push(w);
      }
    }
  }
  return seen;
}

/** Compressed adjacency over the kept edges: for node v, entries start[v]..start[v+1]. */
function adjacency(n: number, A: Int32Array, B: Int32Array, kept: Uint8Array) {
  const deg = new Int32Array(n + 1);
  for (let e = 0; e < A.length; e++) {
    if (!kept[e]) continue;
    deg[A[e]!] = deg[A[e]!]! + 1;
    deg[B[e]!] = deg[B[e]!]! + 1;
  }
  const start = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) start[v + 1] = start[v]! + deg[v]!;
  const fill = start.slice(0, n);
  const other = new Int32Array(start[n]!), edge = new Int32Array(start[n]!), sign = new Int8Array(start[n]!);
  const add = (from: number, to: number, e: number, s: number) => {
    const k = fill[from]!;
    fill[from] = k + 1;
    other[k] = to;
    edge[k] = e;
    sign[k] = s;
  };
  for (let e = 0; e < A.length; e++) {
    if (!kept[e]) continue;
    add(A[e]!, B[e]!, e, 1); // from a, b is ahead by θ
    add(B[e]!, A[e]!, e, -1);
  }
  return { start, other, edge, sign };
}

/**
 * The servers' clocks relative to each other from their own edges, and the manager's edges (its
 * anchors') only for where each connected part of the mesh sits against the manager: one shift
 * per part, their weighted mean. The manager is not a server: its prober and responder may stamp
 * elsewhere than the observers' do (on the testbed, on each host's port and on the bridge), so
 * its few edges carry a bias of their own; weighted in with the rest, the anchors' low bounds
 * would let that bias bend the servers' relative clocks, the one-way delays between servers the
 * mesh is for. A part reached through the manager's edges only (the star) is those edges' solve.
 * Unless that leaves a manager's edge outside its bound: then the servers' own edges are wrong
 * somewhere, and every edge is weighed together.
 */
function solveTied(n: number, A: Int32Array, B: Int32Array, theta: Float64Array, bound: Float64Array, weight: Float64Array, kept: Uint8Array, reach: Uint8Array, x0: Float64Array, tol: number) {
  // the parts of the servers' own graph (union-find), each pinned at one of its nodes
  const up = Int32Array.from({ length: n }, (_, v) => v);
  const find = (v: number): number => {
    while (up[v] !== v) v = up[v] = up[up[v]!]!;
    return v;
  };
  const own = new Uint8Array(A.length);
  for (let e = 0; e < A.length; e++) {
    if (!kept[e] || !reach[A[e]!] || A[e] === 0 || B[e] === 0) continue;
    own[e] = 1;
    const ra = find(A[e]!), rb = find(B[e]!);
    if (ra !== rb) up[Math.max(ra, rb)] = Math.min(ra, rb);
  }
  const pinned = new Uint8Array(n);
  pinned[0] = 1;
  for (let v = 1; v < n; v++) if (reach[v] && find(v) === v) pinned[v] = 1;
  const start = new Float64Array(n);
  for (let v = 1; v < n; v++) if (reach[v]) start[v] = (x0[v] ?? 0) - (x0[find(v)] ?? 0);
  const { x: y, iterations } = solveLaplacian(n, A, B, theta, weight, own, pinned, reach, start, tol);
  // each part's shift: the weighted mean of what the manager's edges say of its nodes
  const tie: number[] = [];
  for (let e = 0; e < A.length; e++) if (kept[e] && reach[A[e]!] && !own[e]) tie.push(e);
  const sum = new Float64Array(n), wsum = new Float64Array(n);
  for (const e of tie) {
    const v = A[e] === 0 ? B[e]! : A[e]!;
    const says = A[e] === 0 ? theta[e]! : -theta[e]!; // v's clock minus the manager's
    const r = find(v), w = weight[e]!;
    sum[r] = sum[r]! + w * (says - y[v]!);
    wsum[r] = wsum[r]! + w;
  }
  const x = new Float64Array(n);
  for (let v = 1; v < n; v++) if (reach[v]) x[v] = y[v]! + sum[find(v)]! / wsum[find(v)]!;
  // the truth lies within every edge's bound: a manager's edge left outside its own shows that
  // the servers' edges alone place some of them wrong (a link congested one way: every probe
  // across it lopsided), and the manager's edges are then what ties the parts: weighed in
  if (tie.every((e) => Math.abs(x[B[e]!]! - x[A[e]!]! - theta[e]!) <= bound[e]!)) return { x, iterations };
  for (const e of tie) own[e] = 1;
  const joint = solveLaplacian(n, A, B, theta, weight, own, Uint8Array.from({ length: n }, (_, v) => (v === 0 ? 1 : 0)), reach, x0, tol);
  return { x: joint.x, iterations: iterations + joint.iterations };
}

/**
 * Weighted least squares over the edges `use`, the `pinned` nodes held at 0: L x = g over the
 * other nodes of `reach`, L the weighted Laplacian, g_v = Σ w·(±θ) of v's edges. Conjugate
 * gradients with a diagonal preconditioner, started from x0.
 */
function solveLaplacian(n: number, A: Int32Array, B: Int32Array, theta: Float64Array, weight: Float64Array, use: Uint8Array, pinned: Uint8Array, reach: Uint8Array, x0: Float64Array, tol: number) {
  const x = new Float64Array(n);
  const g = new Float64Array(n), diag = new Float64Array(n);
  for (let e = 0; e < A.length; e++) {
    if (!use[e]) continue;
    const w = weight[e]!;
    g[B[e]!] = g[B[e]!]! + w * theta[e]!;
    g[A[e]!] = g[A[e]!]! - w * theta[e]!;
    diag[A[e]!] = diag[A[e]!]! + w;
    diag[B[e]!] = diag[B[e]!]! + w;
  }
  const active = (v: number) => pinned[v] === 0 && reach[v] === 1;
  for (let v = 0; v < n; v++) if (active(v)) x[v] = x0[v] ?? 0;
  const apply = (p: Float64Array, out: Float64Array) => {
    out.fill(0);
    for (let e = 0; e < A.length; e++) {
      if (!use[e]) continue;
      const a = A[e]!, b = B[e]!, w = weight[e]!;
      const d = w * ((pinned[a] ? 0 : p[a]!) - (pinned[b] ? 0 : p[b]!));
      if (!pinned[a]) out[a] = out[a]! + d;
      if (!pinned[b]) out[b] = out[b]! - d;
    }
  };
  const r = new Float64Array(n), z = new Float64Array(n), p = new Float64Array(n), q = new Float64Array(n);
  apply(x, q);
  let gNorm = 0;
  for (let v = 0; v < n; v++) if (active(v)) (r[v] = g[v]! - q[v]!), (gNorm += g[v]! * g[v]!);
  for (let v = 0; v < n; v++) if (active(v)) (z[v] = r[v]! / diag[v]!), (p[v] = z[v]!);
  let rz = 0;
  for (let v = 0; v < n; v++) rz += r[v]! * z[v]!;
  const stop = tol * tol * Math.max(gNorm, 1e-300);
  let it = 0;
  for (; it < 10 * n + 100; it++) {
    let rr = 0;
    for (let v = 0; v < n; v++) rr += r[v]! * r[v]!;
    if (rr <= stop) break;
    apply(p, q);
    let pq = 0;
    for (let v = 0; v < n; v++) if (active(v)) pq += p[v]! * q[v]!;
    if (pq <= 0) break;
    const alpha = rz / pq;
    for (let v = 0; v < n; v++)
      if (active(v)) {
        x[v] = x[v]! + alpha * p[v]!;
        r[v] = r[v]! - alpha * q[v]!;
      }
    let rzNext = 0;
    for (let v = 0; v < n; v++) if (active(v)) (z[v] = r[v]! / diag[v]!), (rzNext += r[v]! * z[v]!);
    const beta = rzNext / rz;
    rz = rzNext;
    for (let v = 0; v < n; v++) if (active(v)) p[v] = z[v]! + beta * p[v]!;
  }
  return { x, iterations: it };
}

/**
 * From the manager, the path of least total bound to each node (Dijkstra over the kept edges):
 * the offsets summed along it, and that total, a hard bound of the sum.
 */
function leastBoundPaths(n: number, A: Int32Array, B: Int32Array, theta: Float64Array, bound: Float64Array, kept: Uint8Array) {
  const adj = adjacency(n, A, B, kept);
  const best = new Float64Array(n).fill(Infinity);
  const offset = new Float64Array(n);
  const done = new Uint8Array(n);
  best[0] = 0;
  // a binary heap of [bound, node]
  const heap: [number, number][] = [[0, 0]];
  const push = (item: [number, number]) => {
    heap.push(item);
    for (let i = heap.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (heap[up]![0] <= heap[i]![0]) break;
      [heap[up], heap[i]] = [heap[i]!, heap[up]!];
      i = up;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]![0] < heap[m]![0]) m = l;
        if (r < heap.length && heap[r]![0] < heap[m]![0]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  while (heap.length) {
    const [d, v] = pop();
    if (done[v]) continue;
    done[v] = 1;
    for (let k = adj.start[v]!; k < adj.start[v + 1]!; k++) {
      const w = adj.other[k]!, e = adj.edge[k]!;
      const nd = d + bound[e]!;
      if (nd < best[w]!) {
        best[w] = nd;
        offset[w] = offset[v]! + adj.sign[k]! * theta[e]!;
        push([nd, w]);
      }
    }
  }
  return { bound: best, offset };
}


/** An edge with its offset exact (clocks of servers booted far apart differ by more than 2^53 ns). */
export interface ExactEdge {
  a: string;
  b: string;
  offsetNs: bigint;
  boundNs: number;
  weightBoundNs?: number;
}

/** A node's clock minus the manager's, exact, with its bound. */
export interface ExactClock {
  offsetNs: bigint;
  boundNs: number;
}

/** A graph's edges against priors: each node's clock summed along a tree from the manager (exact), each edge's offset less its nodes' priors (small, exact as a double). */
interface AgainstPriors<E extends ExactEdge> {
  prior: Map<string, bigint>;
  small: MeshEdge[];
  /** small[i] is edges[i]'s. */
  edges: E[];
}

/** Each node's prior, the offsets summed along a breadth-first tree from the manager (in bigint), and what each edge adds to them. */
function againstPriors<E extends ExactEdge>(edges: E[]): AgainstPriors<E> {
  const prior = new Map<string, bigint>([[MANAGER, 0n]]);
  const around = new Map<string, ExactEdge[]>();
  for (const e of edges) for (const n of [e.a, e.b]) (around.get(n) ?? around.set(n, []).get(n)!).push(e);
  const queue = [MANAGER];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!, pv = prior.get(v)!;
    for (const e of around.get(v) ?? []) {
      const w = e.a === v ? e.b : e.a;
      if (prior.has(w)) continue;
      prior.set(w, e.a === v ? pv + e.offsetNs : pv - e.offsetNs);
      queue.push(w);
    }
  }
  const small = edges.map((e): MeshEdge => {
    const pa = prior.get(e.a), pb = prior.get(e.b);
    // an edge away from the manager's part of the graph: its nodes stay unreached
    return { a: e.a, b: e.b, offsetNs: pa === undefined || pb === undefined ? 0 : Number(e.offsetNs - (pb - pa)), boundNs: e.boundNs, weightBoundNs: e.weightBoundNs };
  });
  return { prior, small, edges };
}

/** solveMesh over edges against their priors (`small`, or edges of the same nodes made from them); the priors added back. */
function solveAgainstPriors<E extends ExactEdge>(p: AgainstPriors<E>, small: MeshEdge[], o: SolveOptions): { clocks: Map<string, ExactClock>; unreached: string[]; rejected: E[]; small: Map<string, NodeClock> } {
  const sol = solveMesh(small, o);
  const clocks = new Map<string, ExactClock>();
  for (const [n, c] of sol.clocks) clocks.set(n, { offsetNs: p.prior.get(n)! + BigInt(Math.round(c.offsetNs)), boundNs: c.boundNs + 0.5 });
  const index = sol.rejected.length ? new Map(small.map((e, i) => [e, i])) : undefined;
  return { clocks, unreached: sol.unreached, rejected: sol.rejected.map((e) => p.edges[index!.get(e)!]!), small: sol.clocks };
}

/**
 * solveMesh over exact offsets: each node first gets a prior, and the solve runs on what the
 * edges add to the priors (small numbers, exact as doubles); the priors are added back.
 */
export function solveMeshExact(edges: ExactEdge[], o: SolveOptions = {}): { clocks: Map<string, ExactClock>; unreached: string[]; rejected: ExactEdge[] } {
  const p = againstPriors(edges);
  const { clocks, unreached, rejected } = solveAgainstPriors(p, p.small, o);
  return { clocks, unreached, rejected };
}

/** An edge and when it was measured (wall-clock ms): a round's edges are taken one peer after another, seconds apart. */
export interface TimedEdge extends ExactEdge {
  atMs: number;
}

/** A node's drift against the manager's clock (what its offset gains per unit of time, ppb) and the bound of that drift. */
export interface NodeDrift {
  driftPpb: number;
  boundPpb: number;
}

/** One round for solveMeshRounds: its edges and the time its clocks are solved for. */
export interface TimedRound {
  refMs: number;
  edges: TimedEdge[];
}

export interface RoundSolution {
  refMs: number;
  clocks: Map<string, ExactClock>;
  unreached: string[];
  rejected: ExactEdge[];
}

/** The manager's clock is the timeline: no drift against itself. */
export const NO_DRIFT: NodeDrift = { driftPpb: 0, boundPpb: 0 };
/** A node no round reached: any drift a crystal may have. */
export const UNKNOWN_DRIFT: NodeDrift = { driftPpb: 0, boundPpb: MAX_DRIFT_PPB };

/**
 * An edge carried to `refMs` along its clocks' drifts: b − a moves by their difference over the
 * time between, and its bound grows by both drift bounds over that time.
 */
export function edgeAt(e: TimedEdge, refMs: number, drift: (node: string) => NodeDrift): ExactEdge {
  const c = carried(e, e.atMs, refMs, drift);
  return { a: e.a, b: e.b, offsetNs: e.offsetNs + BigInt(Math.round(c.byNs)), boundNs: c.boundNs, weightBoundNs: c.weightBoundNs };
}

/** What carrying edge e (measured at atMs) to refMs adds to its offset, and its bound and weight there (edgeAt). */
function carried(e: { a: string; b: string; boundNs: number; weightBoundNs?: number }, atMs: number, refMs: number, drift: (node: string) => NodeDrift) {
  const dtNs = (refMs - atMs) * 1e6;
  const da = drift(e.a), db = drift(e.b);
  return {
    byNs: ((db.driftPpb - da.driftPpb) * dtNs) / 1e9,
    boundNs: e.boundNs + ((da.boundPpb + db.boundPpb) * Math.abs(dtNs)) / 1e9,
    // weighted as measured: a pair's two directions, carried over different times, keep equal
    // weights, so the stamping bias common to every probe still cancels between them
    weightBoundNs: e.weightBoundNs ?? e.boundNs,
  };
}

/** Rounds on either side of a round whose solved offsets give a node's drift there. */
export const DRIFT_WINDOW = 8;

/**
 * Every round's clocks at its reference time, with the drift between the moments its edges were
 * measured: two clocks 10 ppm apart move 10 µs in a second, and one observer's peers are probed
 * one after the other over up to the whole interval. Each edge is carried to its round's time
 * along the drifts of its two clocks (edgeAt). The drifts come from the rounds themselves: each
 * round first solved as if its edges were simultaneous, then each node's offsets fitted over the
 * rounds around it (DRIFT_WINDOW on either side, so a drift that wanders over a long range is
 * followed: fitClock, least squares and a hard bound from the window's first and last rounds; a
 * node seen in one round only gets ±500 ppm), and the rounds solved again, twice (the second fit
 * starts from offsets that the first drifts already corrected).
 *
 * Last, each clock is taken from its fit at the round's time rather than from the round alone:
 * a round's probes are noisy (on the testbed ±200 ns from round to round), and a clock moves
 * along a line over the seconds of a window, so the line through the window's rounds is nearer
 * the truth (bench/mesh's testbed: p99 412 → 211 ns). Its bound is the fit's (offsetAt: the
 * round that best supports it, plus the drift bound over the time between), or the round's own
 * widened by the distance to the line, whichever is smaller.
 */
export function solveMeshRounds(rounds: TimedRound[], o: SolveOptions = {}): { rounds: RoundSolution[]; drift: (node: string, round: number) => NodeDrift } {
  let fits: Map<string, ClockFit>[] = [];
  const drift = (n: string, k: number): NodeDrift => {
    if (n === MANAGER) return NO_DRIFT;
    const f = fits[k]?.get(n);
    return f ? { driftPpb: f.driftPpb, boundPpb: f.driftBoundPpb } : UNKNOWN_DRIFT;
  };
  // each round's edges against its priors once: the passes carry doubles, not bigints
  const prepared = rounds.map((r) => againstPriors(r.edges));
  // each pass starts from the one before (the drifts move a round's clocks little)
  const last: (Map<string, NodeClock> | undefined)[] = [];
  const solveAll = (so: SolveOptions): RoundSolution[] =>
    rounds.map((r, k) => {
      const p = prepared[k]!;
      const at = (n: string) => drift(n, k);
      const small = p.small.map((e, i): MeshEdge => {
        const c = carried(e, r.edges[i]!.atMs, r.refMs, at);
        return { a: e.a, b: e.b, offsetNs: e.offsetNs + c.byNs, boundNs: c.boundNs, weightBoundNs: c.weightBoundNs };
      });
      const { clocks, unreached, rejected, small: start } = solveAgainstPriors(p, small, { ...so, start: last[k] });
      last[k] = start;
      return { refMs: r.refMs, clocks, unreached, rejected };
    });
  // the first solve only gives the fit its offsets: without the drifts, edges measured apart
  // disagree, and loop consistency would set good ones aside (and solve again for each)
  let solved = solveAll({ ...o, maxRejected: 0 });
  for (let pass = 0; pass < 2; pass++) {
    fits = fitWindows(solved);
    solved = solveAll(o);
  }
  fits = fitWindows(solved);
  const smoothed = solved.map((r, k) => {
    const clocks = new Map<string, ExactClock>();
    for (const [n, c] of r.clocks) {
      const f = fits[k]!.get(n)!;
      const at = offsetAt(f, BigInt(Math.round(r.refMs * 1e6)));
      clocks.set(n, { offsetNs: at.offsetNs, boundNs: Math.min(at.boundNs, c.boundNs + Math.abs(Number(at.offsetNs - c.offsetNs))) });
    }
    return { ...r, clocks };
  });
  return { rounds: smoothed, drift };
}

/** For each round, each node's fit over its solved offsets in the rounds around it. */
function fitWindows(solved: RoundSolution[]): Map<string, ClockFit>[] {
  const series = new Map<string, { k: number; atNs: bigint; offsetNs: bigint; boundNs: number }[]>();
  solved.forEach((r, k) => {
    for (const [n, c] of r.clocks) (series.get(n) ?? series.set(n, []).get(n)!).push({ k, atNs: BigInt(Math.round(r.refMs * 1e6)), offsetNs: c.offsetNs, boundNs: c.boundNs });
  });
  const out = solved.map(() => new Map<string, ClockFit>());
  for (const [n, list] of series) {
    // list is in round order; each round's window: the nearest DRIFT_WINDOW rounds either side that have this node
    for (let i = 0; i < list.length; i++) {
      const from = Math.max(0, Math.min(i - DRIFT_WINDOW, list.length - 1 - 2 * DRIFT_WINDOW)), to = Math.min(list.length, from + 2 * DRIFT_WINDOW + 1);
      out[list[i]!.k]!.set(n, fitClock(list.slice(from, to)));
    }
  }
  return out;
}
