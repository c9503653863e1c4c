/**
 * The probe mesh end to end (issue 26), as an operator runs it: the manager provisions four
 * testbed hosts in two subnets over SSH with time_sync.yaml mesh on (the observers installed
 * outside the checkout, each probing its peers' XDP responders; the manager and three anchors
 * probing each other, so one host's clock comes from the mesh alone). There is no application traffic at
 * all. The router's link into the second subnet is slowed on purpose (tbf), and
 * `latscope report --json` must name that direction from the mesh alone: every direction into
 * the second subnet from the first is slow, its reverse and every other direction is not, and
 * the slowest direction is one of them. The testbed's hosts share one clock, so the solved
 * clocks' truth is known (0): each direction's sum with its reverse must equal the round trip the
 * probes saw, and unslowed delays stay within their bound of positive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify, parse } from 'yaml';
import { testbedUp, testbedDown, installDirOf, type Testbed } from '../local/testbed.js';
import { startRedis, startMariaDb, stopRedis, stopMariaDb, redisRunning, mariadbRunning } from '../local/servers.js';
import { writeTestbedConf } from '../local/conf.js';
import { waitFor } from '../local/exec.js';
import { loadDeployment } from '../conf/deployment.js';
import { meshAnchors } from '../protocol/mesh.js';
import { Manager } from '../manager/manager.js';
import { stopDeployment } from '../manager/teardown.js';
import { openPool } from '../db/pool.js';
import { projectRoot } from '../lib/paths.js';
import type { Report } from '../analyzer/report.js';
import { MESH_SETTLE_SCHEDULER } from '../analyzer/mesh.js';
import { QUEUES, QUEUE_PREFIX } from '../protocol/redis.js';
import { Queue } from 'bullmq';

const cli = join(projectRoot, 'dist', 'cli.js');
const DB = 'latscope_test_mesh';
const METRICS_PORT = 9591;
let tb: Testbed;
let started: { redis: boolean; db: boolean };
let dir: string;

before(async () => {
  started = { redis: !redisRunning(), db: !mariadbRunning() };
  tb = await testbedUp({ id: 'tmsh', hosts: 4, router: true });
  dir = mkdtempSync(join(tmpdir(), 'latscope-mesh-'));
});
after(async () => {
  await testbedDown('tmsh');
  if (started.redis) await stopRedis();
  if (started.db) await stopMariaDb();
  rmSync(dir, { recursive: true, force: true });
});

test('the mesh alone, with no application traffic, names the direction of a link slowed on purpose', async (t) => {
  const redis = await startRedis([tb.managerAddress]);
  const db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
  const conf = writeTestbedConf(join(dir, 'conf'), tb, redis, db, { ports: [7901], database: DB, timeSync: true, timeInterval: 2 });
  const ts = parse(readFileSync(join(conf, 'time_sync.yaml'), 'utf8'));
  writeFileSync(join(conf, 'time_sync.yaml'), stringify({ ...ts, probes: 100, timeout_ms: 50, mesh: { enabled: 1, interval: 3, probes: 20, anchors: 3 } }), { mode: 0o600 });
  // the manager's metrics endpoint, for the mesh gauges
  const msi = parse(readFileSync(join(conf, 'management_server_info.yaml'), 'utf8'));
  writeFileSync(join(conf, 'management_server_info.yaml'), stringify({ ...msi, port: METRICS_PORT }), { mode: 0o600 });
  const d = loadDeployment(conf);
  const names = d.servers.map((s) => s.hostname);
  // the testbed puts every second host in subnet B, behind the router's eth1
  const inB = new Set(names.filter((_, i) => i % 2 === 1));
  const anchors = new Set(meshAnchors(names, 3));
  const log: string[] = [];
  const mgr = await Manager.open(d, { log: (l) => log.push(l) });
  t.after(async () => {
    await mgr.close().catch(() => {});
    await stopDeployment(d, { acceptNewHostKeys: false, log: (l) => log.push(l) }).catch(() => {});
  });
  await mgr.prepare();
  await mgr.startWorkers();
  const states = await mgr.provisionAll();
  assert.deepEqual(names.map((n) => states.get(n)?.state), ['running', 'running', 'running', 'running'], log.join('\n'));
  await mgr.schedule();
  // each observer runs its responder on the XDP hook (its mesh prober takes its replies at tc) and probes the three others
  for (const h of tb.hosts) {
    // (its line comes once the responder and the mesh run, a little after its first heartbeat)
    const log = join(installDirOf(tb, h.name), 'observer.log');
    const text = await waitFor(`${h.name}: the observer's running line`, 10_000, () => (/: running \(pid/.test(readFileSync(log, 'utf8')) ? readFileSync(log, 'utf8') : undefined)).catch(() => readFileSync(log, 'utf8'));
    assert.match(text, /time-sync responder xdp/, `${h.name}: ${text.slice(-600)}`);
    // the three anchors probe the manager's responder too
    assert.match(text, anchors.has(`tmsh-${h.name}`) ? /probe mesh to 3 servers and the manager every 3 s/ : /probe mesh to 3 servers every 3 s/);
  }
  execFileSync('ip', ['netns', 'exec', tb.router!.netns, 'tc', 'qdisc', 'replace', 'dev', 'eth1', 'root', 'tbf', 'rate', '200kbit', 'burst', '1600', 'latency', '100ms']);
  const slowedAt = Date.now();
  const pool = openPool({ ...db, database: DB });
  t.after(() => pool.end());
  // four full mesh rounds after the link was slowed, every server's edges stored
  await waitFor('four mesh rounds of every server after the slowing', 90_000, async () => {
    const [[r]] = (await pool.query('SELECT COUNT(DISTINCT epoch) AS rounds FROM (SELECT epoch FROM mesh_edges WHERE peer_id > 0 AND at_unix_ms > ? + 3500 GROUP BY epoch HAVING COUNT(*) = 12) e', [slowedAt])) as any;
    return Number(r.rounds) >= 4 ? true : (await new Promise((res) => setTimeout(res, 500)), undefined);
  });
  const out = execFileSync(process.execPath, [cli, 'report', '--conf', conf, '--json', '--from', new Date(slowedAt + 3500).toISOString()], { encoding: 'utf8' });
  const report = JSON.parse(out) as Report;
  const m = report.mesh;
  const show = () => JSON.stringify(m, null, 1);
  assert.equal(report.range.windows, 0, 'no application traffic was analyzed');
  assert.ok(m.rounds >= 4, show());
  assert.equal(m.unsolved, 0, `every edge tied to the manager's clock: ${show()}`);
  assert.equal(m.directions.length, 12, show());
  const slowed = (src: string, dst: string) => !inB.has(src) && inB.has(dst);
  for (const x of m.directions) {
    assert.ok(Number.isFinite(x.boundNs) && x.boundNs > 0, `${x.src} → ${x.dst}: bound ${x.boundNs}`);
    assert.ok(x.reverseP50Ns !== null, `${x.src} → ${x.dst}: its reverse was measured`);
    if (slowed(x.src, x.dst)) assert.ok(x.oneWayP50Ns > 1_000_000 && x.oneWayP50Ns > x.reverseP50Ns! + 800_000, `${x.src} → ${x.dst} crosses the slowed link: ${x.oneWayP50Ns} ns (reverse ${x.reverseP50Ns}); ${show()}`);
    // not slowed: short, and not below zero by more than its bound (the clocks are right)
    else assert.ok(x.oneWayP50Ns < 500_000 && x.oneWayMinNs > -x.boundNs, `${x.src} → ${x.dst}: ${x.oneWayP50Ns} ns, min ${x.oneWayMinNs} ± ${x.boundNs}; ${show()}`);
    assert.equal(x.lossRatio, x.lost / x.sent);
  }
  assert.ok(m.slowest && slowed(m.slowest.src, m.slowest.dst), `the slowest direction crosses the slowed link: ${show()}`);
  // one clock underneath: every solved clock's truth is 0, and each lies within its bound of it (tmsh-h4 is no anchor: its clock comes from the mesh alone)
  assert.deepEqual(m.clocks.map((c) => c.server), names, show());
  for (const c of m.clocks) assert.ok(Math.abs(Number(c.offsetNs)) <= c.boundNs, `${c.server}: ${c.offsetNs} ± ${c.boundNs}`);
  // the text report names it too
  const text = execFileSync(process.execPath, [cli, 'report', '--conf', conf, '--from', new Date(slowedAt + 3500).toISOString()], { encoding: 'utf8' });
  assert.match(text, new RegExp(`slowest direction: ${m.slowest!.src} → ${m.slowest!.dst}, \\d+\\.\\d µs one way`));
  // and the graphs: the mesh's matrix and its rounds over time, the slowest direction in both
  const graphs = join(dir, 'graphs');
  execFileSync(process.execPath, [cli, 'graph', '--conf', conf, '--out', graphs, '--from', new Date(slowedAt + 3500).toISOString()], { encoding: 'utf8' });
  for (const f of ['mesh-matrix.svg', 'mesh-over-time.svg']) {
    const svg = readFileSync(join(graphs, f), 'utf8');
    assert.match(svg, /^<svg/, f);
    for (const n of [m.slowest!.src, m.slowest!.dst]) assert.ok(svg.includes(n), `${f} names ${n}`);
  }
  assert.match(readFileSync(join(graphs, 'report.html'), 'utf8'), /Probe mesh: one-way delay between servers/);
  // the same as Prometheus gauges on the manager's endpoint, in the exposition format promtool accepts
  const metrics = await (await fetch(`http://${tb.managerAddress}:${METRICS_PORT}/metrics`)).text();
  const gauge = (name: string, src: string, dst: string) => Number(new RegExp(`^${name}\\{src="${src}",dst="${dst}"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
  const s = m.slowest!;
  assert.ok(gauge('latscope_mesh_one_way_seconds', s.src, s.dst) > 0.001, metrics.split('\n').filter((l) => l.includes('mesh')).join('\n'));
  assert.ok(gauge('latscope_mesh_one_way_seconds', s.dst, s.src) < 0.0003);
  assert.ok(gauge('latscope_mesh_one_way_bound_seconds', s.src, s.dst) > 0);
  assert.ok(gauge('latscope_mesh_loss_ratio', s.src, s.dst) >= 0);
  assert.match(metrics, /^latscope_ingest_mesh_rows_total \d+/m);
  // (the mesh's families: promtool's lint also speaks of older names elsewhere)
  const meshFamilies = metrics.split('\n').filter((l) => /^(# (HELP|TYPE) )?latscope_mesh_/.test(l)).join('\n') + '\n';
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: meshFamilies, encoding: 'utf8' });
  assert.equal(promtool.status, 0, promtool.stdout + promtool.stderr);
  // the observers' mesh rounds reached MySQL signed, with nothing set aside
  const [[all]] = (await pool.query('SELECT COUNT(*) AS n FROM mesh_edges')) as any;
  assert.ok(Number(all.n) >= 48);
  // each measured edge dated by its prober within its round (peers one after another: the analysis carries each along the clocks' drift)
  const [dated] = (await pool.query('SELECT epoch, interval_ms, at_unix_ms, edge_unix_ms FROM mesh_edges WHERE offset_ns IS NOT NULL')) as any;
  for (const r of dated as any[]) {
    const start = Number(r.epoch) * Number(r.interval_ms);
    assert.ok(r.edge_unix_ms !== null && Number(r.edge_unix_ms) >= start - 1000 && Number(r.edge_unix_ms) <= Number(r.at_unix_ms) + 5, `an edge of round ${r.epoch} (${start} to ${r.at_unix_ms}) measured at ${r.edge_unix_ms}`);
  }
  // the manager's mesh job settles rounds in the background (a minute apart: its first ran at the start)
  const queue = new Queue(QUEUES.mesh, { connection: { host: redis.host, port: redis.port, password: redis.password }, prefix: QUEUE_PREFIX });
  t.after(() => queue.close());
  assert.deepEqual((await queue.getJobSchedulers()).map((j) => j.key), [MESH_SETTLE_SCHEDULER]);
  const settled = await waitFor('a mesh settle job done', 10_000, async () => (await queue.getCompleted())[0]);
  assert.ok(Number.isInteger(settled.returnvalue?.settled), JSON.stringify(settled.returnvalue));
  // the anchors' probes of the manager: answered (the manager's responder), every round, from the anchors only
  const [toManager] = (await pool.query('SELECT s.name, COUNT(*) AS rounds, SUM(e.offset_ns IS NOT NULL) AS answered FROM mesh_edges e JOIN servers s ON s.id = e.server_id WHERE e.peer_id = 0 AND e.at_unix_ms > ? GROUP BY s.name ORDER BY s.name', [slowedAt + 3500])) as any;
  assert.deepEqual((toManager as any[]).map((r) => r.name), [...anchors].sort());
  for (const r of toManager as any[]) assert.equal(Number(r.answered), Number(r.rounds), `${r.name}: the manager answered every round`);
  t.diagnostic(`clocks, ns: ${m.clocks.map((c) => `${c.server} ${c.offsetNs}±${c.boundNs.toFixed(0)}`).join(', ')}`);
  t.diagnostic(`one way, µs p50: ${m.directions.map((x) => `${x.src}→${x.dst} ${(x.oneWayP50Ns / 1000).toFixed(1)}±${(x.boundNs / 1000).toFixed(1)}`).join(', ')}`);
});
