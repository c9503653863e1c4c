/**
 * The analyzer on the project's MariaDB with synthetic collection data (local/synthetic.ts:
 * servers with skewed, drifting clocks, flows between every pair, known extra delays): paths
 * joined across clocks within their bounds, the injected cause named as the tail's holder,
 * incremental runs equal to one run, reruns and concurrent runs changing no row, clock faults
 * shown, and the report from the command line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startMariaDb, stopMariaDb, mariadbRunning, type MariaDbInfo } from '../local/servers.js';
import type { Pool } from '../db/pool.js';
import { freshDatabase } from './helpers/database.js';
import { writeSynthetic, type SyntheticOptions } from '../local/synthetic.js';
import { analyze, type AnalyzeOptions } from '../analyzer/analyze.js';
import { loadReport } from '../analyzer/report.js';
import { projectRoot } from '../lib/paths.js';
import { quantile } from '../lib/stats.js';

let db: MariaDbInfo;
let startedDb = false;
const pools: Pool[] = [];
const OPTS: AnalyzeOptions = { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 };
const BASE: SyntheticOptions = { servers: 4, flowsPerPair: 2, samples: 20_000, startNs: 7_000_000_000_000n, spanNs: 40e9, retransRate: 0, seed: 11, batchRecords: 4000 };

before(async () => {
  startedDb = !mariadbRunning();
  db = await startMariaDb();
});
after(async () => {
  for (const p of pools) await p.end().catch(() => {});
  if (startedDb) await stopMariaDb();
});

/** A fresh database with the schema. */
async function fresh(name: string): Promise<Pool> {
  const pool = await freshDatabase(db, name);
  pools.push(pool);
  return pool;
}

const one = async (pool: Pool, sql: string, args: unknown[] = []) => ((await pool.query(sql, args)) as any)[0][0];
const checksums = async (pool: Pool) => {
  const [rows] = (await pool.query('CHECKSUM TABLE paths, path_stats, flow_windows, unmatched, spikes, analysis_pending')) as any;
  return Object.fromEntries((rows as any[]).map((r) => [r.Table.split('.').pop(), String(r.Checksum)]));
};

test('a clean fleet: every sample joined, no clock fault, one-way delays across skewed drifting clocks within their bounds of the truth', async () => {
  const pool = await fresh('an_clean');
  const syn = await writeSynthetic(pool, BASE);
  const r = await analyze(pool, OPTS);
  assert.equal(r.records, syn.records);
  assert.equal(r.paths, BASE.samples, 'one path per sample byte');
  assert.deepEqual(r.unmatched, { peer_not_observed: 0, no_receiver_record: 0, no_sender_record: 0, no_clock_fit: 0 });
  assert.equal(r.pending, 0);
  assert.equal(r.faults, 0);
  const report = await loadReport(pool);
  assert.equal(report.pairs.length, 12);
  for (const p of report.pairs) {
    const [a, b] = [p.src, p.dst].map((n) => Number(n.replace('syn', '')) - 1);
    const truth = syn.truth.get(`${a}>${b}`)!;
    const want = quantile(truth.oneWayNs, 0.5);
    const got = p.segments.one_way!.p50;
    // the estimate's own error (0.4%) plus the clocks' bound (both rounds: 200 ns each, interpolated)
    assert.ok(Math.abs(got - want) <= want * 0.004 + p.boundNs, `${p.src} → ${p.dst}: one-way p50 ${got} vs true ${want} ± ${p.boundNs}`);
    assert.ok(p.boundNs > 0 && p.boundNs < 1000, `bound ${p.boundNs}`);
    assert.equal(p.faults, 0);
    assert.ok(p.tail && Math.abs(Object.values(p.tail.shares).reduce((s, x) => s + x, 0) - 1) < 1e-9, 'tail shares add up to 1');
  }
  const [[neg]] = (await pool.query('SELECT COUNT(*) AS n FROM paths WHERE wire < -bound_ns')) as any;
  assert.equal(Number(neg.n), 0);
});

test('causes injected on purpose: a slowed link holds its pair\'s tail on the wire; a slow reader holds it in rx tcp→sock; the extra delay is measured', async () => {
  const pool = await fresh('an_causes');
  await writeSynthetic(pool, { ...BASE, slowLink: { from: 0, to: 1, extraNs: 2_000_000, share: 0.03 }, slowReader: { server: 3, extraNs: 1_000_000, share: 0.03 } });
  await analyze(pool, OPTS);
  const report = await loadReport(pool);
  const pair = (a: string, b: string) => report.pairs.find((p) => p.src === a && p.dst === b)!;
  const slow = pair('syn1', 'syn2');
  assert.equal(slow.tail?.holder, 'wire');
  assert.equal(slow.tail?.growsMost.segment, 'wire');
  assert.ok(Math.abs(slow.tail!.means.wire! - slow.segments.wire!.p50 - 2e6) < 0.1 * 2e6, `extra wire delay in the tail ${slow.tail!.means.wire! - slow.segments.wire!.p50} ns, injected 2 ms`);
  assert.equal(report.pairs[0]!.src, 'syn1', 'the slowed pair is the worst');
  for (const from of ['syn1', 'syn2', 'syn3']) {
    const p = pair(from, 'syn4');
    assert.equal(p.tail?.holder, 'rx_tcp_sock', `${from} → syn4`);
    assert.ok(Math.abs(p.tail!.means.rx_tcp_sock! - p.segments.rx_tcp_sock!.p50 - 1e6) < 0.1 * 1e6);
  }
  const clean = pair('syn2', 'syn3');
  assert.ok(clean.segments.end_to_end!.p99 < 200_000, 'a clean pair stays fast');
  assert.ok(report.spikes.length > 0 && report.spikes.every((s) => s.timesMedian > 10));
  assert.ok(report.spikes.some((s) => s.src === 'syn1' && s.dst === 'syn2' && s.topSegment === 'wire'));
  // each spike with its flow and its time, within the report's range (window starts + one window)
  for (const s of report.spikes) {
    assert.match(s.flow ?? '', /^[\d.]+:\d+ → [\d.]+:\d+$/, `a spike's flow: ${s.flow}`);
    assert.ok(s.atUnixMs !== null && s.atUnixMs >= report.range.fromUnixMs! && s.atUnixMs <= report.range.toUnixMs! + Number(report.range.windowNs) / 1e6, `a spike's time ${s.atUnixMs} in ${report.range.fromUnixMs}..${report.range.toUnixMs}`);
  }
});

test('incremental: two runs over two halves equal one run; a rerun and two concurrent runs change no row', async () => {
  const once = await fresh('an_once');
  const halves = await fresh('an_halves');
  const both = await fresh('an_both');
  await writeSynthetic(once, BASE);
  await analyze(once, OPTS);
  const want = await checksums(once);
  // the same records, ingested and analyzed in two steps: records of one path land in different runs
  await writeSynthetic(halves, BASE);
  await halves.query('UPDATE ingest_batches SET analyzed = 1 WHERE id > (SELECT m FROM (SELECT MAX(id) / 2 AS m FROM ingest_batches) x)');
  const first = await analyze(halves, { ...OPTS, graceMs: 3_600_000 });
  assert.ok(first.pending > 0, 'records waiting for their other end');
  await halves.query('UPDATE ingest_batches SET analyzed = 0 WHERE id > (SELECT m FROM (SELECT MAX(id) / 2 AS m FROM ingest_batches) x)');
  await analyze(halves, OPTS);
  const got = await checksums(halves);
  for (const t of ['paths', 'flow_windows', 'unmatched', 'analysis_pending']) assert.equal(got[t], want[t], `${t} after two runs`);
  // the same values; shares within 1e-5 (stored tail sums are whole nanoseconds, so a merge rounds them)
  const stat = async (p: Pool) => ((await p.query('SELECT scope, src_server_id, dst_server_id, flow_id, segment, samples, p50_ns, p99_ns, max_ns, tail_share FROM path_stats ORDER BY window_ns, scope, src_server_id, dst_server_id, flow_id, segment')) as any)[0] as any[];
  const [a2, a1] = [await stat(halves), await stat(once)];
  assert.equal(a2.length, a1.length);
  a2.forEach((r, i) => {
    const w = a1[i]!;
    const { tail_share: s2, ...rest2 } = r;
    const { tail_share: s1, ...rest1 } = w;
    assert.deepEqual(rest2, rest1, 'statistics merged over two runs equal those of one');
    assert.ok(s1 === null ? s2 === null : Math.abs(s2 - s1) <= 1e-5 * Math.abs(s1) + 1e-12, `tail share ${s2} vs ${s1}`);
  });
  // nothing new: a rerun writes nothing
  const again = await analyze(once, OPTS);
  assert.equal(again.records, 0);
  assert.deepEqual(await checksums(once), want);
  // two workers at once: the lock serializes them, the second finds nothing left
  await writeSynthetic(both, BASE);
  const [a, b] = await Promise.all([analyze(both, OPTS), analyze(both, OPTS)]);
  assert.equal(a.records + b.records, (await one(both, 'SELECT COUNT(*) AS n FROM packets')).n);
  assert.deepEqual(await checksums(both), want);
});

test('a clock wrong beyond its bound: clock faults counted and shown, the negative delays kept', async () => {
  const pool = await fresh('an_fault');
  await writeSynthetic(pool, { ...BASE, samples: 4000 });
  // tell the analyzer syn2's clock is 1 ms further ahead than it is, "within 200 ns"
  await pool.query("UPDATE clock_offsets SET offset_ns = offset_ns + 1000000 WHERE server = 'syn2'");
  const r = await analyze(pool, OPTS);
  assert.ok(r.faults > 0, 'faults counted');
  const [[neg]] = (await pool.query('SELECT COUNT(*) AS n, MIN(wire) AS w FROM paths WHERE flags & 2')) as any;
  assert.equal(Number(neg.n), r.faults);
  assert.ok(Number(neg.w) < -900_000, `the wire delay stays negative (${neg.w} ns), never made positive`);
  const report = await loadReport(pool);
  assert.equal(report.faults, r.faults);
  assert.ok(report.pairs.filter((p) => p.dst === 'syn2').every((p) => p.faults > 0));
});

test('latscope analyze and latscope report from the command line: summary, tables, --json, clear errors', async () => {
  const pool = await fresh('an_cli');
  await writeSynthetic(pool, { ...BASE, samples: 4000, slowLink: { from: 2, to: 0, extraNs: 3_000_000, share: 0.05 } });
  const dir = mkdtempSync(join(tmpdir(), 'latscope-an-conf-'));
  try {
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]); // conf check judges the key as ssh would
    writeFileSync(join(dir, 'known_hosts'), '');
    writeFileSync(join(dir, 'db.password'), `${db.password}\n`, { mode: 0o600 });
    const put = (f: string, v: unknown) => writeFileSync(join(dir, f), stringify(v), { mode: 0o600 });
    put('connect_info.yaml', { known_hosts: 'known_hosts', defaults: { key_file: 'id' }, servers: [1, 2, 3, 4].map((i) => ({ hostname: `syn${i}`, address: `10.77.1.${i}`, metadata_key: i })) });
    put('sampling_info.yaml', { ports: [5000, 5001, 5002, 5003], size: 65536 });
    put('redis_info.yaml', { address: '127.0.0.1' });
    put('database_info.yaml', { host: db.host, port: db.port, user: db.user, passwd_file: 'db.password', db: 'latscope_test_an_cli' });
    put('management_server_info.yaml', { address: '127.0.0.1', eth: 'lo' });
    put('analysis_info.yaml', { window: 10, grace: 0 });
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });
    const an = cli('analyze', '--conf', dir);
    assert.equal(an.status, 0, an.stderr);
    assert.match(an.stdout, /analyzed 8000 records of \d+ batches in [\d.]+ s: 4000 paths, none unmatched, 0 waiting for their other end, 0 clock faults/);
    const text = cli('report', '--conf', dir);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /syn3 → syn1 .* wire \d+%/);
    assert.match(text.stdout, /Worst pair syn3 → syn1: .*\n.*\n  → wire holds the tail/);
    assert.match(text.stdout, /Unmatched samples: none/);
    assert.doesNotMatch(text.stdout + text.stderr, new RegExp(db.password));
    const json = cli('report', '--conf', dir, '--json', '--pair', 'syn3,syn1');
    assert.equal(json.status, 0, json.stderr);
    const rep = JSON.parse(json.stdout);
    assert.equal(rep.version, 1);
    assert.deepEqual(rep.pairs.map((p: any) => [p.src, p.dst, p.tail.holder]), [['syn3', 'syn1', 'wire']]);
    for (const k of ['range', 'servers', 'pairs', 'hosts', 'flows', 'unmatched', 'faults', 'spikes']) assert.ok(k in rep, k);
    const bad = cli('report', '--conf', dir, '--pair', 'syn3,nope');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--pair: nope is not a server in the results \(servers: syn1, syn2, syn3, syn4\)/);
    // an analyst with database access only: database_info.yaml and its secret, no SSH key, no Redis
    const analyst = mkdtempSync(join(tmpdir(), 'latscope-analyst-'));
    try {
      writeFileSync(join(analyst, 'db.password'), `${db.password}\n`, { mode: 0o600 });
      writeFileSync(join(analyst, 'database_info.yaml'), stringify({ host: db.host, port: db.port, user: db.user, passwd_file: 'db.password', db: 'latscope_test_an_cli' }), { mode: 0o600 });
      const r = cli('report', '--conf', analyst, '--json');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).pairs.length, 12, 'every pair, from database_info alone');
      const g = cli('graph', '--conf', analyst, '--out', join(analyst, 'graphs'));
      assert.equal(g.status, 0, g.stderr);
      const a = cli('analyze', '--conf', analyst, '--json');
      assert.equal(a.status, 0, a.stderr);
      assert.equal(JSON.parse(a.stdout).records, 0, 'nothing new to analyze');
      const none = cli('report', '--conf', join(analyst, 'graphs'));
      assert.equal(none.status, 1);
      assert.match(none.stderr, /database_info\.yaml: missing: this command reads the results database/);
    } finally {
      rmSync(analyst, { recursive: true, force: true });
    }
    // an incident's range: windows start at 2023-11-14T22:13:20Z (the synthetic rounds' dates), 10 s each
    const part = cli('report', '--conf', dir, '--json', '--from', '2023-11-14T22:13:30Z', '--to', '2023-11-14T23:13:50+01:00');
    assert.equal(part.status, 0, part.stderr);
    assert.equal(JSON.parse(part.stdout).range.windows, 2, 'two windows of the four');
    const backwards = cli('report', '--conf', dir, '--from', '2023-11-14T22:13:30Z', '--to', '2023-11-14T22:13:00Z');
    assert.equal(backwards.status, 64, 'a usage error');
    assert.match(backwards.stderr, /--to .* is not after the start/);
    // --watch: a JSON document per line, every second, until SIGINT (exit 0)
    const watched = await new Promise<{ code: number | null; out: string }>((res) => {
      const c = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'report', '--conf', dir, '--json', '--watch', '1s'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      setTimeout(() => c.kill('SIGINT'), 3500);
      c.on('exit', (code) => res({ code, out }));
    });
    assert.equal(watched.code, 0);
    const docs = watched.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(docs.length >= 2 && docs.every((d) => d.version === 1 && d.pairs.length === 12), `${docs.length} documents`);
    const since = cli('report', '--conf', dir, '--since', 'soon');
    assert.equal(since.status, 64, 'a usage error');
    assert.match(since.stderr, /"soon" is not a duration: write it like 90s, 15m, 1h30m, 2h or 1d/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a record without a time at any layer is counted as unusable and the run goes on (it used to stop every analysis)', async () => {
  const pool = await fresh('an_unusable');
  await writeSynthetic(pool, { ...BASE, samples: 400 });
  const [b] = (await pool.query('INSERT INTO ingest_batches (records) VALUES (1)')) as any;
  const { id } = await one(pool, 'SELECT MIN(id) AS id FROM servers');
  await pool.query(
    "INSERT INTO packets (server_id, observer_seq, dir, family, src, sport, dst, dport, flow_id, sample_seq, stream_offset, seg_start, seg_end, attempt, flags, batch_id) VALUES (?, 1, 'tx', 4, '10.77.1.1', 1, '10.77.1.2', 2, 99, 1, 1, 0, 1, 0, 0, ?)",
    [id, b.insertId],
  );
  const r = await analyze(pool, OPTS);
  assert.equal(r.unusable, 1);
  assert.ok(r.records >= 401);
});
