/**
 * The mesh solve (timesync/mesh.ts) against the truth of simulated fleets (timesync/simulate.ts):
 * exact on exact data, the probes' common stamping bias cancelled where the star keeps it, a bad
 * probe set aside by loop consistency, hard bounds that hold, and the peers each server probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MANAGER, meshPeers, solveMesh, type MeshEdge } from '../../timesync/mesh.js';
import { simulateRound, type FleetModel } from '../../timesync/simulate.js';

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
