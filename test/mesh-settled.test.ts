/**
 * Settled mesh rounds against the project's MariaDB (analyzer/mesh.ts): a round that enough later
 * rounds follow is solved once and kept, and a report reads it rather than solving it again. The
 * rounds are a simulated fleet's (timesync/simulate.ts: drifting clocks, edges seconds apart),
 * stored as the ingest and the manager store them (mesh_edges, the anchors' clock_offsets), so
 * every true one-way delay is known.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMariaDb } from '../local/servers.js';
import type { Pool } from '../db/pool.js';
import { MANAGER } from '../timesync/mesh.js';
import { simulateRounds, type FleetModel } from '../timesync/simulate.js';
import { meshAnalysis, SETTLE_ROUNDS } from '../analyzer/mesh.js';
import { freshDatabase } from './helpers/database.js';

const NAME = 'mesh_settled';
/** Every one-way delay of the simulated fleet, ns. */
const ONE_WAY = 5000;
/** Wall-clock ms of the first round, and the rounds' interval. */
const BASE_MS = 1_800_000_000_000;
const INTERVAL_MS = 10_000;
const model: FleetModel = { servers: 24, biasNs: 0, asymmetryNs: 30, noiseNs: 20, oneWayNs: ONE_WAY, anchors: 3, seed: 11, driftPpm: 20, roundMs: 5000 };
const { rounds, sims } = simulateRounds(model, 70, INTERVAL_MS);
const names = [...sims[0]!.truth.keys()];
const id = (n: string) => (n === MANAGER ? 0 : names.indexOf(n) + 1);
let pool: Pool;

before(async () => {
  pool = await freshDatabase(await startMariaDb(), NAME);
  await pool.query('INSERT INTO servers (id, name) VALUES ?', [names.map((n) => [id(n), n])]);
});
after(async () => {
  if (!process.env.KEEP_DB) await pool?.query(`DROP DATABASE IF EXISTS latscope_test_${NAME}`);
  await pool?.end();
});

/** Rounds from..to-1 into mesh_edges (each edge's one-way delays as the prober computes them: as if its offset were the truth) and the anchors' manager rounds into clock_offsets. */
async function store(from: number, to: number): Promise<void> {
  const edges: unknown[][] = [], anchors: unknown[][] = [];
  for (let k = from; k < to; k++) {
    const startMs = k * INTERVAL_MS, sim = sims[k]!;
    for (const e of rounds[k]!.edges) {
      if (e.a === MANAGER) continue; // the manager's own probes come as clock_offsets
      const err = Number(e.offsetNs) - (sim.truthAt(e.b, e.atMs) - sim.truthAt(e.a, e.atMs));
      edges.push([1000 + k, id(e.a), id(e.b), INTERVAL_MS, BASE_MS + startMs, BASE_MS + e.atMs, 50, 0, e.offsetNs.toString(), e.boundNs, ONE_WAY - err, ONE_WAY - err, ONE_WAY + err, ONE_WAY + err]);
    }
    for (const a of names.slice(0, model.anchors)) {
      const at = startMs + 2500, drift = sim.truthAt(a, at + 1000) - sim.truthAt(a, at); // what it gains in a second: ppb
      anchors.push([a, k + 1, at * 1e6, Math.round(sim.truthAt(a, at)), 40, drift, 50, 200, 50, 0, 10_000, 10_000, BASE_MS + at]);
    }
  }
  await pool.query('INSERT INTO mesh_edges (epoch, server_id, peer_id, interval_ms, at_unix_ms, edge_unix_ms, sent, lost, offset_ns, bound_ns, fwd_min_ns, fwd_p50_ns, bwd_min_ns, bwd_p50_ns) VALUES ?', [edges]);
  await pool.query('INSERT INTO clock_offsets (server, round, at_ns, offset_ns, bound_ns, drift_ppb, drift_bound_ppb, samples, kept, lost, min_delay_ns, median_delay_ns, at_unix_ms) VALUES ?', [anchors]);
}

const count = async (table: string) => Number(((await pool.query(`SELECT COUNT(*) AS n FROM ${table}`)) as any)[0][0].n);

test('rounds that enough later rounds follow are solved once and kept; a report reads them, solves only the newest, and its one-way delays hold the truth within their bounds', async () => {
  await store(0, 60);
  const first = await meshAnalysis(pool);
  assert.equal(first.report.rounds, 60);
  assert.equal(await count('mesh_rounds_settled'), 60 - SETTLE_ROUNDS, 'every round with SETTLE_ROUNDS after it is kept');
  assert.equal(first.report.settledRounds, 60 - SETTLE_ROUNDS);
  assert.equal(await count('mesh_clocks'), (60 - SETTLE_ROUNDS) * names.length);
  assert.equal(first.report.unsolved, 0);
  // every direction's one-way delay, from kept and from fresh rounds alike, near the truth and within its bound
  assert.equal(first.report.directions.length, new Set(rounds[0]!.edges.filter((e) => e.a !== MANAGER && e.b !== MANAGER).flatMap((e) => [`${e.a}>${e.b}`, `${e.b}>${e.a}`])).size);
  for (const d of first.report.directions) {
    assert.ok(Math.abs(d.oneWayP50Ns - ONE_WAY) <= d.boundNs, `${d.src} → ${d.dst}: ${d.oneWayP50Ns.toFixed(0)} ns ± ${d.boundNs.toFixed(0)}, truth ${ONE_WAY}`);
    assert.ok(Math.abs(d.oneWayP50Ns - ONE_WAY) < 200, `${d.src} → ${d.dst}: ${d.oneWayP50Ns.toFixed(0)} ns, truth ${ONE_WAY}`);
  }
  for (const p of first.series) assert.ok(Math.abs(p.oneWayNs - ONE_WAY) <= p.boundNs, `${p.src} → ${p.dst} at ${p.unixMs}: ${p.oneWayNs.toFixed(0)} ± ${p.boundNs.toFixed(0)}`);

  // the same report again: read, not solved again, the same answers
  const again = await meshAnalysis(pool);
  assert.deepEqual(again.report, first.report);

  // ten rounds more: ten more settle, the older ones stay as they were kept
  const kept = ((await pool.query('SELECT epoch, server_id, CAST(offset_ns AS CHAR) AS o FROM mesh_clocks ORDER BY epoch, server_id')) as any)[0];
  await store(60, 70);
  const later = await meshAnalysis(pool);
  assert.equal(later.report.settledRounds, 70 - SETTLE_ROUNDS);
  assert.deepEqual(((await pool.query('SELECT epoch, server_id, CAST(offset_ns AS CHAR) AS o FROM mesh_clocks WHERE epoch < ? ORDER BY epoch, server_id', [1000 + 60 - SETTLE_ROUNDS])) as any)[0], kept);

  // the kept clocks are what the report uses: one server's moved by 10 µs in every kept round moves its directions' delays
  const s = names[5]!;
  await pool.query('UPDATE mesh_clocks SET offset_ns = offset_ns + 10000 WHERE server_id = ?', [id(s)]);
  const moved = await meshAnalysis(pool);
  const before = later.report.directions.find((d) => d.src === s)!, after = moved.report.directions.find((d) => d.src === before.src && d.dst === before.dst)!;
  assert.ok(after.oneWayP50Ns - before.oneWayP50Ns > 5000, `${before.src} → ${before.dst}: ${before.oneWayP50Ns.toFixed(0)} → ${after.oneWayP50Ns.toFixed(0)} ns`);

  // a kept round whose edges changed since (a row that came late, or went) is solved again for the report
  const [[late]] = (await pool.query('SELECT * FROM mesh_edges WHERE epoch = 1010 LIMIT 1')) as any;
  await pool.query('DELETE FROM mesh_edges WHERE epoch = 1010 AND server_id = ? AND peer_id = ?', [late.server_id, late.peer_id]);
  assert.equal((await meshAnalysis(pool)).report.settledRounds, 70 - SETTLE_ROUNDS - 1, 'a round whose edges changed is solved again');
});
