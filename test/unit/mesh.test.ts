/**
 * The mesh solve (timesync/mesh.ts) against the truth of simulated fleets (timesync/simulate.ts):
 * exact on exact data, the probes' common stamping bias cancelled where the star keeps it, a bad
 * probe set aside by loop consistency, hard bounds that hold, and the peers each server probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { edgeAt, MANAGER, solveMesh, solveMeshExact, solveMeshRounds, type ExactEdge, type MeshEdge } from '../../timesync/mesh.js';
import { meshEdge } from '../../timesync/mesh-probing.js';
import { maxMeshPeers, meshAnchors, meshPeers, parseMeshBatch } from '../../protocol/mesh.js';
import type { Sample } from '../../protocol/timesync.js';
import { roundErrors, simulateRound, simulateRounds, type FleetModel } from '../../timesync/simulate.js';

const model: FleetModel = { servers: 200, asymmetryNs: 40, biasNs: 300, noiseNs: 20, oneWayNs: 20_000, anchors: 4, seed: 7 };

function errors(clocks: Map<string, { offsetNs: number; boundNs: number }>, truth: Map<string, number>) {
  const errs: number[] = [];
  let covered = 0;
  for (const [n, t] of truth) {
    const c = clocks.get(n)!;
    const e = Math.abs(c.offsetNs - t);
    errs.push(e);
    if (e <= c.boundNs) covered++;
  }
  errs.sort((a, b) => a - b);
  return { p99: errs[Math.floor(0.99 * (errs.length - 1))]!, coverage: covered / truth.size };
}

test('exact probes: every clock solved exactly, within its bound; a fleet with no path to the manager is named', () => {
  const r = simulateRound({ ...model, asymmetryNs: 0, biasNs: 0, noiseNs: 0 });
  const s = solveMesh(r.mesh);
  const e = errors(s.clocks, r.truth);
  assert.ok(e.p99 < 1e-3, `p99 error ${e.p99} ns`);
  assert.equal(e.coverage, 1);
  assert.deepEqual(s.rejected, []);
  const island: MeshEdge[] = [...r.mesh, { a: 'x1', b: 'x2', offsetNs: 5, boundNs: 100 }];
  assert.deepEqual(solveMesh(island).unreached.sort(), ['x1', 'x2']);
});

test('a stamping bias common to every probe: the mesh cancels it (both ways of each pair), the star keeps it; bounds hold for both', () => {
  const r = simulateRound(model);
  const mesh = errors(solveMesh(r.mesh).clocks, r.truth);
  const star = errors(solveMesh(r.star).clocks, r.truth);
  assert.ok(star.p99 > 250, `star p99 ${star.p99.toFixed(0)} ns (bias 300)`);
  // what is left is the pairs' asymmetry (40 ns each), averaged over each server's peers
  assert.ok(mesh.p99 < 120 && mesh.p99 < star.p99 / 3, `mesh p99 ${mesh.p99.toFixed(0)} ns, star ${star.p99.toFixed(0)} ns`);
  assert.equal(mesh.coverage, 1);
  assert.equal(star.coverage, 1);
});

test('the manager\'s anchor edges place the mesh, they do not bend it: biased anchors with low bounds shift every clock alike, the servers\' differences stay the mesh\'s own', () => {
  const r = simulateRound({ ...model, asymmetryNs: 0, biasNs: 0, noiseNs: 0 });
  // the manager stamps elsewhere than the observers: its edges off by +60 and -20 ns, measured over a short path (bounds 20x lower than the mesh's)
  const bias = new Map([['s00000', 60], ['s00001', -20]]);
  const edges = r.mesh.map((e) => {
    if (e.a !== MANAGER && e.b !== MANAGER) return e;
    const server = e.a === MANAGER ? e.b : e.a;
    const b = bias.get(server) ?? 0;
    return { ...e, offsetNs: e.offsetNs + (e.a === MANAGER ? b : -b), boundNs: e.boundNs / 20 };
  });
  const s = solveMesh(edges);
  const err = (n: string) => s.clocks.get(n)!.offsetNs - r.truth.get(n)!;
  const shift = err('s00000');
  for (const n of ['s00001', 's00002', 's00003', 's00100', 's00199']) assert.ok(Math.abs(err(n) - shift) < 1e-3, `${n}: error ${err(n).toFixed(3)} ns, s00000's ${shift.toFixed(3)}`);
  // the shift: the anchor edges' weighted mean (the other two anchors unbiased, weights alike up to the bounds' spread)
  assert.ok(shift > 0 && shift < 60, `common shift ${shift.toFixed(1)} ns`);
  assert.deepEqual(s.rejected, []);
});

test('unless the mesh contradicts them: a link congested one way biases every probe across it, and the manager\'s edges, left outside their bounds by the mesh alone, are weighed in', () => {
  // two groups of servers; within each, exact edges; across, a queue one way makes every probe see the other group 40 µs off (bounds 100 µs); the manager's edges exact, bounds 1 µs
  const truth = new Map(Array.from({ length: 8 }, (_, i) => [`g${i}`, i * 1000 + (i % 2) * 7]));
  const edge = (a: string, b: string, skew = 0, boundNs = 2000): MeshEdge => ({ a, b, offsetNs: (truth.get(b) ?? 0) - (truth.get(a) ?? 0) + skew, boundNs });
  const edges: MeshEdge[] = [];
  for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) if (i !== j && i % 2 === j % 2) edges.push(edge(`g${i}`, `g${j}`));
  // (from the even group the request waits in the queue, from the odd one the reply: both see the odd group 40 µs ahead)
  for (let i = 0; i < 8; i += 2) edges.push(edge(`g${i}`, `g${i + 1}`, 40_000, 100_000), edge(`g${i + 1}`, `g${i}`, -40_000, 100_000));
  edges.push(edge(MANAGER, 'g0', 0, 1000), edge(MANAGER, 'g1', 0, 1000));
  const s = solveMesh(edges);
  for (const [n, t] of truth) {
    const c = s.clocks.get(n)!;
    assert.ok(Math.abs(c.offsetNs - t) < 1500 && Math.abs(c.offsetNs - t) <= c.boundNs, `${n}: ${c.offsetNs.toFixed(0)} ± ${c.boundNs.toFixed(0)}, truth ${t}`);
  }
});

test('loop consistency: a probe outside its own interval (a forged or corrupted reply) is set aside, and the clocks stay right', () => {
  const r = simulateRound(model);
  const bad = { ...r.mesh[10]!, offsetNs: r.mesh[10]!.offsetNs + 200_000 };
  const edges = r.mesh.map((e, i) => (i === 10 ? bad : e));
  const s = solveMesh(edges);
  assert.deepEqual(s.rejected, [bad]);
  const e = errors(s.clocks, r.truth);
  assert.ok(e.p99 < 120 && e.coverage === 1, JSON.stringify(e));
  // without the rejection it would have spread: the same solve with nothing set aside
  const kept = errors(solveMesh(edges, { maxRejected: 0 }).clocks, r.truth);
  assert.ok(kept.p99 > 2 * e.p99, `with the bad probe kept: p99 ${kept.p99.toFixed(0)} ns`);
});

test('clocks that drift, edges measured seconds apart: each edge carried to its round\'s time along the fitted drifts puts every clock within its bound and near the truth; solved as if simultaneous, errors of tens of µs break the bounds', () => {
  // 20 ppm between clocks (an undisciplined crystal), each observer's peers probed over 5 s, a round every 10 s
  const drifting: FleetModel = { ...model, asymmetryNs: 150, noiseNs: 40, oneWayNs: 5000, driftPpm: 20, roundMs: 5000 };
  const { rounds, sims } = simulateRounds(drifting, 6);
  const judge = (solved: { clocks: Map<string, { offsetNs: bigint; boundNs: number }> }[]) => {
    const { errors, outside } = roundErrors(solved, rounds, sims);
    return { p99: errors[Math.floor(0.99 * (errors.length - 1))]!, outside, n: errors.length };
  };
  const { rounds: solved, drift } = solveMeshRounds(rounds);
  const withDrift = judge(solved);
  const simultaneous = judge(rounds.map((r) => solveMeshExact(r.edges)));
  assert.equal(withDrift.n, 6 * drifting.servers);
  assert.equal(withDrift.outside, 0, `every clock within its bound (${JSON.stringify(withDrift)})`);
  assert.ok(withDrift.p99 < 400, `p99 error with the drifts ${withDrift.p99.toFixed(0)} ns`);
  assert.ok(simultaneous.p99 > 10_000 && simultaneous.outside > 0, `as if simultaneous: p99 ${simultaneous.p99.toFixed(0)} ns, ${simultaneous.outside} clocks outside their bound`);
  // the fitted drifts are the true ones, within their bounds
  const truth = (n: string) => (sims[1]!.truthAt(n, 1e6) - sims[1]!.truthAt(n, 0)) / 1e6 * 1e3; // ppb
  for (const n of ['s00000', 's00050', 's00199']) {
    const d = drift(n, 1);
    assert.ok(Math.abs(d.driftPpb - truth(n)) <= d.boundPpb, `${n}: drift ${d.driftPpb.toFixed(1)} ± ${d.boundPpb.toFixed(1)} ppb, truth ${truth(n).toFixed(1)}`);
  }
  assert.deepEqual(drift(MANAGER, 0), { driftPpb: 0, boundPpb: 0 });
  // one edge by hand: 1 s before its round's time, b drifting +1 ppm against a (bounds 0.1 ppm each)
  const moved = edgeAt({ a: 'x', b: 'y', offsetNs: 5000n, boundNs: 100, atMs: 1000 }, 2000, (n) => (n === 'x' ? { driftPpb: 0, boundPpb: 100 } : { driftPpb: 1000, boundPpb: 100 }));
  assert.deepEqual(moved, { a: 'x', b: 'y', offsetNs: 6000n, boundNs: 300, weightBoundNs: 100 }, 'weighted as measured');
});

test('bad input: an edge without a positive bound is refused, naming it', () => {
  assert.throws(() => solveMesh([{ a: MANAGER, b: 's1', offsetNs: 1, boundNs: 0 }]), /mesh: edge @manager → s1: a bound > 0/);
});

test('meshPeers: everyone in a small fleet; in a large one a ring plus random peers, each pair both ways, the same draw for the same epoch, another for the next', () => {
  const small = Array.from({ length: 8 }, (_, i) => `h${i}`);
  assert.deepEqual(meshPeers(small, 'h3').sort(), small.filter((n) => n !== 'h3'));
  const big = Array.from({ length: 1000 }, (_, i) => `s${String(i).padStart(4, '0')}`);
  const p = meshPeers(big, 's0500', { epoch: 1 });
  assert.ok(p.length >= 7 && p.length <= 20, `peers: ${p.length}`);
  for (const n of ['s0498', 's0499', 's0501', 's0502']) assert.ok(p.includes(n), n);
  assert.ok(!p.includes('s0500'));
  for (const q of p) assert.ok(meshPeers(big, q, { epoch: 1 }).includes('s0500'), `${q} probes s0500 back`);
  assert.deepEqual(meshPeers(big, 's0500', { epoch: 1 }), p);
  assert.notDeepEqual(meshPeers(big, 's0500', { epoch: 2 }), p);
  assert.throws(() => meshPeers(big, 'nope'), /nope is not one of the nodes/);
});

test('exact offsets: clocks far apart (servers booted years apart, beyond 2^53 ns) are solved to the nanosecond', () => {
  // true clocks (minus the manager's), and an asymmetric link between b and c
  const truth = new Map([['a', 9_007_199_254_740_993n * 7n], ['b', -123_456_789_012_345_678n], ['c', 42n]]);
  const edge = (x: string, y: string, biasNs = 0): ExactEdge => ({ a: x, b: y, offsetNs: truth.get(y)! - (x === MANAGER ? 0n : truth.get(x)!) + BigInt(biasNs), boundNs: 500 });
  const s = solveMeshExact([edge(MANAGER, 'a'), edge(MANAGER, 'b'), edge('a', 'b'), edge('b', 'c'), edge('a', 'c'), edge(MANAGER, 'c')]);
  for (const [n, t] of truth) {
    const c = s.clocks.get(n)!;
    assert.equal(c.offsetNs, t, `${n}: ${c.offsetNs} vs ${t}`);
    assert.ok(c.boundNs > 0 && c.boundNs <= 501, `${n}: bound ${c.boundNs}`);
  }
  // a node joined only to another part of the graph stays unreached, named
  const apart = solveMeshExact([edge(MANAGER, 'a'), { a: 'x', b: 'y', offsetNs: 5n, boundNs: 10 }]);
  assert.deepEqual(apart.unreached.sort(), ['x', 'y']);
});

test('anchors spread over the list; the most peers a fleet gives one server', () => {
  const names = Array.from({ length: 10 }, (_, i) => `s${i}`);
  assert.deepEqual(meshAnchors(names, 4), ['s0', 's2', 's5', 's7']);
  assert.deepEqual(meshAnchors(names.slice(0, 3), 4), ['s0', 's1', 's2']);
  assert.equal(maxMeshPeers(10, { fullMesh: 16, ring: 2, random: 4 }), 9);
  assert.equal(maxMeshPeers(10_000, { fullMesh: 16, ring: 2, random: 4 }), 27);
  // the bound holds over many epochs of a large fleet
  const many = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
  let most = 0;
  for (let epoch = 0; epoch < 3; epoch++) for (const n of many) most = Math.max(most, meshPeers(many, n, { fullMesh: 16, ring: 2, random: 4, epoch }).length);
  assert.ok(most <= maxMeshPeers(1000, { fullMesh: 16, ring: 2, random: 4 }), `a server probed ${most} peers`);
});

/** Probes between two clocks: `off` apart (peer − prober), `fwd` and `bwd` one way, with a little noise. */
function probes(n: number, off: bigint, fwd: number, bwd: number): Sample[] {
  const out: Sample[] = [];
  let t = 1_000_000_000n;
  for (let i = 0; i < n; i++) {
    const t1 = t, t2 = t1 + BigInt(fwd + (i % 7) * 10) + off, t3 = t2 + 2000n, t4 = t3 - off + BigInt(bwd + (i % 5) * 10);
    out.push({ t1, t2, t3, t4, round: 1, seq: i, server: 'peer' });
    t += 100_000n;
  }
  return out;
}

test('a mesh edge: the offset as a pair of probes sees it, and one-way delays that the solved clocks correct', () => {
  // 300 µs forward, 20 µs back: the pair alone puts half the difference into the offset
  const off = 5_000_000_000_000n;
  const e = meshEdge('peer', probes(60, off, 300_000, 20_000), 64, 4);
  assert.equal(e.peer, 'peer');
  assert.equal(e.sent, 64);
  assert.equal(e.lost, 4);
  const seen = BigInt(e.offsetNs!) - off;
  assert.ok(seen > 130_000n && seen < 150_000n, `the pair's offset is off by half the asymmetry: ${seen}`);
  assert.ok(e.boundNs! >= Number(seen), 'the causality bound holds the truth');
  // corrected with the true offset, each direction comes back
  const corr = Number(BigInt(e.offsetNs!) - off);
  assert.ok(Math.abs(e.fwdMinNs! + corr - 300_000) <= 1, `forward ${e.fwdMinNs! + corr}`);
  assert.ok(Math.abs(e.bwdMinNs! - corr - 20_000) <= 1, `backward ${e.bwdMinNs! - corr}`);
  assert.ok(e.fwdP50Ns! >= e.fwdMinNs! && e.rttMinNs! <= e.rttP50Ns!);
  // no reply at all: only what was sent and lost
  assert.deepEqual(meshEdge('peer', [], 50, 50), { peer: 'peer', sent: 50, lost: 50 });
});

test('mesh entries: a good one reads; anything else is refused with the reason', () => {
  const edges = [meshEdge('h2', probes(10, 0n, 1000, 1000), 10, 0), { peer: 'h3', sent: 10, lost: 10 }, meshEdge('@manager', probes(10, 0n, 1000, 1000), 10, 0)];
  const good = new Map(Object.entries({ node: 'h1', format: 'mesh1', epoch: '177000', intervalMs: '10000', at: '1770000000000', edges: JSON.stringify(edges) }));
  const ok = parseMeshBatch(good);
  assert.ok('edges' in ok, JSON.stringify(ok));
  assert.equal(ok.edges.length, 3, 'an anchor\'s edge to the manager too');
  assert.ok(Number.isSafeInteger(ok.edges[0]!.atUnixMs), 'each measured edge carries its wall-clock time');
  const bad: [Record<string, string>, RegExp][] = [
    [{ format: 'mesh0' }, /format/],
    [{ node: '../etc' }, /node/],
    [{ epoch: '-1' }, /epoch/],
    [{ intervalMs: '5' }, /intervalMs/],
    [{ edges: '{' }, /not JSON/],
    [{ edges: '{}' }, /not a list/],
    [{ edges: JSON.stringify([{ peer: 'h2', sent: 1, lost: 2 }]) }, /edges\[0\]/],
    [{ edges: JSON.stringify([{ peer: '@other', sent: 1, lost: 0 }]) }, /edges\[0\]/],
    [{ edges: JSON.stringify([{ peer: 'h2', sent: 1, lost: 0, offsetNs: '1e9', boundNs: 1 }]) }, /edges\[0\]/],
    [{ edges: JSON.stringify([{ peer: 'h2', sent: 1, lost: 0, offsetNs: '12' }]) }, /edges\[0\]/],
    [{ edges: JSON.stringify([{ peer: 'h2', sent: 1, lost: 0, atUnixMs: -5 }]) }, /edges\[0\]/],
    [{ edges: JSON.stringify([{ peer: 'h2', sent: 1, lost: 0, atUnixMs: '1770000000000' }]) }, /edges\[0\]/],
    [{ edges: 'x'.repeat((1 << 20) + 1) }, /larger than/],
  ];
  for (const [change, why] of bad) {
    const r = parseMeshBatch(new Map([...good, ...Object.entries(change)]));
    assert.ok('refused' in r && why.test(r.refused), `${JSON.stringify(change).slice(0, 60)}: ${JSON.stringify(r).slice(0, 120)}`);
  }
});
