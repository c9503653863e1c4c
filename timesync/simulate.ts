/**
 * A simulated fleet for the mesh solve (bench/mesh, the unit tests): servers with true clock
 * offsets, and one round's edges as the probes would measure them.
 *
 * What a probe pair measures (estimator.ts): the offset plus half the path's asymmetry (the
 * forward delay less the backward, a property of each pair's routes, opposite in the two
 * directions) plus a stamping bias common to every probe (the responder stamps in XDP, the
 * prober at tc: the same for every pair, in every direction), plus what is left of the noise
 * after the round's minimum-delay filter. The bound is half the round trip, as the causality
 * interval gives it. The star is the manager probing every server, one way.
 */
import { MANAGER, type MeshEdge, type TimedRound } from './mesh.js';
import { meshPeers } from '../protocol/mesh.js';
import { median } from '../lib/stats.js';

export interface FleetModel {
  servers: number;
  /** Standard deviation of a pair's half asymmetry, ns. */
  asymmetryNs: number;
  /** The stamping bias of every probe, ns. */
  biasNs: number;
  /** Standard deviation of a round's remaining noise, ns. */
  noiseNs: number;
  /** One-way delay between two servers, ns (the bound is about this). */
  oneWayNs: number;
  /** Servers the manager probes, both ways (it answers their probes too). */
  anchors: number;
  /** Standard deviation of the servers' true drifts against the manager, ppm (0: none). */
  driftPpm?: number;
  /** How long a round takes: its edges are measured at times spread evenly over it, ms (0: all at once). */
  roundMs?: number;
  /** meshPeers options. */
  ring?: number;
  random?: number;
  fullMesh?: number;
  seed: number;
}

export interface SimulatedRound {
  /** Each server's true offset against the manager at the round's start, ns. */
  truth: Map<string, number>;
  /** A server's true offset at wall-clock ms `atMs`, ns. */
  truthAt(server: string, atMs: number): number;
  /** The mesh's edges: every server's probes to its peers, and the anchors' with the manager, each with when it was measured. */
  mesh: (MeshEdge & { atMs: number })[];
  /** The star's: the manager's probes to every server. */
  star: MeshEdge[];
}

/**
 * One round of the fleet, starting at wall-clock ms `startMs`: the same servers, offsets and
 * drifts for every round of a model (its seed), the noise of each round its own.
 */
export function simulateRound(m: FleetModel, startMs = 0, round = 0): SimulatedRound {
  const base = gaussian(m.seed);
  const names = Array.from({ length: m.servers }, (_, i) => `s${String(i).padStart(5, '0')}`);
  const truth0 = new Map(names.map((n) => [n, base() * 1e6]));
  const driftOf = gaussian(m.seed ^ 0x5eed);
  const drift = new Map(names.map((n) => [n, (m.driftPpm ?? 0) * 1e3 * driftOf()])); // ppb
  const truthAt = (n: string, atMs: number) => (n === MANAGER ? 0 : truth0.get(n)! + (drift.get(n)! * atMs * 1e6) / 1e9);
  const truth = new Map(names.map((n) => [n, truthAt(n, startMs)]));
  const rnd = round === 0 ? base : gaussian(m.seed + round * 1_000_003);
  const asym = new Map<string, number>();
  // the pair's half asymmetry, seen from a towards b (the other way it is the opposite)
  const half = (a: string, b: string) => {
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (!asym.has(key)) asym.set(key, rnd() * m.asymmetryNs);
    return a < b ? asym.get(key)! : -asym.get(key)!;
  };
  // each prober's peers one after the other over the round (the anchors' with the manager last)
  const probe = (a: string, b: string, atMs = startMs): MeshEdge & { atMs: number } => ({
    a,
    b,
    offsetNs: truthAt(b, atMs) - truthAt(a, atMs) + half(a, b) + m.biasNs + rnd() * m.noiseNs,
    boundNs: m.oneWayNs * (1 + 0.2 * Math.abs(rnd())),
    atMs,
  });
  const mesh: (MeshEdge & { atMs: number })[] = [];
  const span = m.roundMs ?? 0;
  for (const n of names) {
    const peers = meshPeers(names, n, { ring: m.ring, random: m.random, fullMesh: m.fullMesh, epoch: m.seed });
    peers.forEach((p, k) => mesh.push(probe(n, p, startMs + (span * (k + 0.5)) / (peers.length + 1))));
  }
  for (const n of names.slice(0, m.anchors)) mesh.push(probe(MANAGER, n, startMs + span / 2), probe(n, MANAGER, startMs + span - span / 4));
  const star = names.map((n) => probe(MANAGER, n, startMs + span / 2));
  return { truth, truthAt, mesh, star };
}

/** Uniform numbers in (0, 1) from a seed (mulberry32), so that a failure can be replayed. */
export function uniform(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** Standard normal numbers from a seed (Box-Muller over uniform). */
export function gaussian(seed: number): () => number {
  const u = uniform(seed);
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** `count` rounds of a model, one every `intervalMs`, as solveMeshRounds takes them: each round at the median of its edges' times. */
export function simulateRounds(m: FleetModel, count: number, intervalMs = 10_000): { rounds: TimedRound[]; sims: SimulatedRound[] } {
  const sims = Array.from({ length: count }, (_, r) => simulateRound(m, r * intervalMs, r));
  const rounds = sims.map((sim) => ({ refMs: median(sim.mesh.map((e) => e.atMs)), edges: sim.mesh.map((e) => ({ a: e.a, b: e.b, offsetNs: BigInt(Math.round(e.offsetNs)), boundNs: e.boundNs, atMs: e.atMs })) }));
  return { rounds, sims };
}

/** Every solved clock of every round against the truth at its round's time: the errors, sorted, and how many lie outside their bound. */
export function roundErrors(solved: { clocks: Map<string, { offsetNs: bigint; boundNs: number }> }[], rounds: TimedRound[], sims: SimulatedRound[]): { errors: number[]; outside: number } {
  const errors: number[] = [];
  let outside = 0;
  solved.forEach((s, r) => {
    for (const [n, c] of s.clocks) {
      const e = Math.abs(Number(c.offsetNs) - sims[r]!.truthAt(n, rounds[r]!.refMs));
      errors.push(e);
      if (e > c.boundNs) outside++;
    }
  });
  errors.sort((a, b) => a - b);
  return { errors, outside };
}
