/**
 * The manager's metrics where operators look, against Debian's Prometheus: the alert rules pass
 * promtool; a real Prometheus scrapes a manager's /metrics (its registry served as the manager
 * serves it, fed by a real ingest, stream stage, Redis and a database of analysed results) and
 * loads the rules; every PromQL expression of the Grafana dashboard and of the rules (without its
 * threshold) returns data, and every MySQL panel's query returns rows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { startRedis, startMariaDb, type MariaDbInfo, type RedisInfo } from '../local/servers.js';
import { startPrometheus, stopPrometheus, type PrometheusInfo } from '../local/prometheus.js';
import type { Pool } from '../db/pool.js';
import { freshDatabase } from './helpers/database.js';
import { writeSynthetic } from '../local/synthetic.js';
import { analyze } from '../analyzer/analyze.js';
import { Ingest } from '../ingest/ingest.js';
import { MESH_FORMAT, MESH_MANAGER, type MeshBatch } from '../protocol/mesh.js';
import { toFields } from '../protocol/redis.js';
import { StreamStage } from '../analyzer/stream/stage.js';
import { serveManagerMetrics } from '../manager/metrics.js';
import type { ServerStatus } from '../manager/state.js';
import { projectRoot } from '../lib/paths.js';
import { waitFor } from '../local/exec.js';

const RULES = join(projectRoot, 'deploy', 'prometheus', 'latscope-rules.yml');
const DASHBOARD = join(projectRoot, 'deploy', 'grafana', 'latscope.json');
/** The rules the file holds, each with its alert name and expression. */
const ruleList = () => (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
let redisInfo: RedisInfo, db: MariaDbInfo, redis: Redis, pool: Pool, server: Server, prom: PrometheusInfo;
const stream = `latscope:test:prom:${process.pid}`;

before(async () => {
  redisInfo = await startRedis();
  db = await startMariaDb();
  redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  pool = await freshDatabase(db, 'prom');
  await writeSynthetic(pool, { servers: 3, flowsPerPair: 2, samples: 3000, startNs: 7_000_000_000_000n, spanNs: 40e9, retransRate: 0.01, seed: 5 });
  await analyze(pool, { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 });
  await redis.xadd(stream, '*', 'format', 'rows2', 'node', 'n', 'n', '0', 'rows', ''); // a batch waiting: the ingest lag is its age
  // the records stream keeps its waiting batch (records: false); the other lanes on the test's own streams
  const ingest = new Ingest(redis, pool, { consumer: 'prom', stream, records: false, meshStream: `${stream}:mesh`, histogramStream: `${stream}:hist`, hostStream: `${stream}:host`, entriesPerRead: 8, blockMs: 100, retryMs: 100 });
  await meshRounds(ingest);
  const stage = new StreamStage(redis, pool, { stream, consumer: 'prom', windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 });
  const status = (state: ServerStatus['state']): ServerStatus => ({ state, detail: state === 'failed' ? 'cannot reach 10.77.1.3:22' : '', atMs: Date.now() });
  server = await serveManagerMetrics('127.0.0.1', 0, {
    jobs: () => ({ completed: { 'latscope-analysis:analyze': 3 }, failed: {}, errors: {} }),
    ingest: () => ingest.counters,
    stream: () => stage.counters,
    states: async () => new Map([['syn1', status('running')], ['syn2', status('running')], ['syn3', status('failed')]]),
    pool,
    redis,
    recordStreams: [stream],
  });
  prom = await startPrometheus({ targets: [`127.0.0.1:${(server.address() as AddressInfo).port}`], ruleFiles: [RULES] });
});
after(async () => {
  await stopPrometheus();
  server?.close();
  await redis?.del(stream, `${stream}:mesh`, `${stream}:hist`, `${stream}:host`);
  redis?.disconnect();
  await pool?.query('DROP DATABASE IF EXISTS latscope_test_prom').catch(() => {});
  await pool?.end();
});

/**
 * Three rounds of the probe mesh between the three servers as their observers send them (syn1
 * an anchor, probing the manager too), loaded by the ingest's mesh lane: the mesh gauges cover
 * the last minute of rounds.
 */
async function meshRounds(ingest: Ingest): Promise<void> {
  const nodes = ['syn1', 'syn2', 'syn3'];
  const edge = (peer: string) => ({ peer, sent: 50, lost: 1, offsetNs: '0', boundNs: 400, atNs: '1000', rttMinNs: 20_000, rttP50Ns: 21_000, fwdMinNs: 10_000, fwdP50Ns: 10_500, bwdMinNs: 10_000, bwdP50Ns: 10_500 });
  const epoch = Math.floor(Date.now() / 10_000);
  for (let k = 2; k >= 0; k--)
    for (const node of nodes) {
      const edges = [...nodes.filter((n) => n !== node).map(edge), ...(node === 'syn1' ? [edge(MESH_MANAGER)] : [])];
      await redis.xadd(`${stream}:mesh`, '*', ...toFields({ node, format: MESH_FORMAT, epoch: epoch - k, intervalMs: 10_000, at: Date.now() - k * 10_000, edges: JSON.stringify(edges) } satisfies MeshBatch));
    }
  ingest.start();
  try {
    await waitFor('the mesh rounds loaded', 20_000, async () => (ingest.counters.meshRows >= 21 ? true : undefined));
  } finally {
    await ingest.stop();
  }
}

async function query(expr: string): Promise<unknown[]> {
  const r = (await (await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string; data: { result: unknown[] } };
  assert.equal(r.status, 'success', `${expr}: ${r.error}`);
  return r.data.result;
}

/** waitFor (local/exec.ts) of a yes/no check. */
const until = (what: string, ms: number, check: () => Promise<boolean> | boolean) => waitFor(what, ms, async () => ((await check()) ? true : undefined));

test('the alert rules pass promtool check rules', () => {
  const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(ruleList().length >= 10, 'the rules of the file are read');
  assert.match(r.stdout, new RegExp(`SUCCESS: ${ruleList().length} rules found`));
});

test('a real Prometheus scrapes the manager: every dashboard and rule expression returns data, every MySQL panel returns rows', async () => {
  // a few scrapes, so that rate() and increase() have two points
  await until('three scrapes of the manager', 30_000, async () => {
    const r = (await query('count_over_time(up{job="latscope"}[1m])')) as { value: [number, string] }[];
    return r.length === 1 && Number(r[0]!.value[1]) >= 3;
  });
  const [up] = (await query('up{job="latscope"}')) as { value: [number, string] }[];
  assert.equal(up!.value[1], '1', 'the target is up');
  // the metrics operators expect, by their conventional names
  for (const m of ['latscope_build_info', 'process_resident_memory_bytes', 'process_cpu_seconds_total', 'latscope_ingest_rows_total', 'latscope_stream_records_total', 'latscope_ingest_mesh_rows_total'])
    assert.ok((await query(m)).length > 0, `${m} is exported`);
  // the rules loaded and healthy
  const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; query: string }[] }[] } };
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  assert.equal(loaded.length, ruleList().length, 'Prometheus loaded every rule of the file');
  await until('every rule evaluated', 30_000, async () => {
    const r = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as typeof rules;
    return r.data.groups.flatMap((g) => g.rules).every((x) => x.health === 'ok');
  });
  // each rule's expression without its threshold: data, so the alert watches something that exists
  const ruleExprs = ruleList();
  for (const r of ruleExprs) {
    const m = /^(.*\S)\s*[<>]=?\s*[\d.e+-]+\s*$/s.exec(r.expr.trim());
    assert.ok(m, `${r.alert}: an expression and a threshold`);
    assert.ok((await query(m[1]!)).length > 0, `${r.alert}: ${m[1]} returns no data`);
  }
  // the failed server fires the rule over it once its for: has passed; here: the expression holds
  assert.ok((await query('sum by (state) (latscope_manager_servers{state!="running"}) > 0')).length === 1, 'the failed server is seen');
  // the dashboard: every Prometheus expression returns data, every MySQL query rows
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; datasource: { type: string }; targets: { expr?: string; rawSql?: string }[] }[] };
  let promQueries = 0, sqlQueries = 0;
  for (const p of dash.panels)
    for (const t of p.targets) {
      if (p.datasource.type === 'prometheus') {
        assert.ok((await query(t.expr!)).length > 0, `panel "${p.title}": ${t.expr} returns no data`);
        promQueries++;
      } else {
        assert.match(t.rawSql!, /\$__timeFilter\(window_start\)/, `panel "${p.title}" filters by the dashboard's time range`);
        const sql = t.rawSql!.replace(/\$__timeFilter\((\w+)\)/g, "$1 BETWEEN '2000-01-01' AND '2100-01-01'");
        const [rows] = (await pool.query(sql)) as any;
        assert.ok((rows as unknown[]).length > 0, `panel "${p.title}": no rows`);
        sqlQueries++;
      }
    }
  assert.ok(promQueries >= 8 && sqlQueries >= 2, `${promQueries} PromQL and ${sqlQueries} SQL queries`);
  // results in seconds: a pair's one-way p99 is that of the newest window in MySQL
  const [g] = (await query('latscope_pair_delay_seconds{src="syn1", dst="syn2", segment="one_way", quantile="0.99"}')) as { value: [number, string] }[];
  const [[w]] = (await pool.query(
    "SELECT p99_ns FROM path_stats s JOIN servers a ON a.id = s.src_server_id JOIN servers b ON b.id = s.dst_server_id WHERE a.name = 'syn1' AND b.name = 'syn2' AND scope = 'pair' AND segment = 'one_way' ORDER BY window_ns DESC LIMIT 1",
  )) as any;
  assert.ok(Math.abs(Number(g!.value[1]) - Number(w.p99_ns) / 1e9) < 1e-12, `${g!.value[1]} s vs ${w.p99_ns} ns`);
  // the mesh: every direction between the three servers, 10.5 µs one way (the edges' own clocks agree with the solve), 1 of 50 probes lost
  const mesh = (await query('latscope_mesh_one_way_seconds')) as { metric: { src: string; dst: string }; value: [number, string] }[];
  assert.equal(mesh.length, 6, JSON.stringify(mesh.map((x) => x.metric)));
  for (const x of mesh) assert.ok(Math.abs(Number(x.value[1]) - 10.5e-6) < 1e-9, `${x.metric.src} → ${x.metric.dst}: ${x.value[1]} s`);
  const loss = (await query('latscope_mesh_loss_ratio')) as { value: [number, string] }[];
  assert.ok(loss.length === 6 && loss.every((x) => Math.abs(Number(x.value[1]) - 1 / 50) < 1e-9), JSON.stringify(loss));
});
