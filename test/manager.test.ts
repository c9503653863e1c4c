/**
 * The manager on a testbed of three hosts, each with its own sshd, with the project's Redis and
 * MariaDB: one command provisions every host over SSH from conf/, traffic between the hosts
 * lands in MariaDB as rows, a killed observer is restarted, and `manager stop` leaves no
 * process, BPF program or XDP attachment behind. Bad servers (a changed host key, no route, a
 * wrong password) fail with clear errors while the good one proceeds. The ingest survives a
 * killed worker and a MariaDB restart with every row exactly once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { stringify, parse } from 'yaml';
import { testbedUp, testbedDown, installDirOf, startExtraSshd, type Testbed } from '../local/testbed.js';
import { startRedis, startMariaDb, stopMariaDb, type RedisInfo, type MariaDbInfo } from '../local/servers.js';
import { writeTestbedConf } from '../local/conf.js';
import { loadDeployment, type Deployment } from '../conf/deployment.js';
import { Manager } from '../manager/manager.js';
import { latestHeartbeats } from '../manager/state.js';
import { ensureObserverUsers, observerCredentials } from '../manager/observer-users.js';
import { RecordPublisher } from '../observer/publisher.js';
import { RECORD_STREAM } from '../protocol/redis.js';
import type { PacketRecord } from '../observer/records.js';
import { projectRoot } from '../lib/paths.js';
import { runIn, startIn, linkHasXdp } from './helpers/fixtures.js';

const cli = join(projectRoot, 'dist', 'cli.js');
const DB = 'latscope_tmg';
let tb: Testbed;
let redisInfo: RedisInfo;
let db: MariaDbInfo;
let conf: string;
let pool: mysql.Pool;
const children: ChildProcess[] = [];

/** Runs the CLI to its end. */
function latscope(args: string[], timeoutMs = 120_000) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** Starts the CLI; `lines` grows as it prints; `waitFor` resolves on a matching line. */
function latscopeBg(args: string[]) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  const onData = (d: Buffer) => (text += d.toString());
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return {
    child,
    exited,
    get text() {
      return text;
    },
    async waitFor(re: RegExp, ms: number): Promise<string> {
      const end = Date.now() + ms;
      while (!re.test(text)) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no ${re} in the output:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return text;
    },
  };
}

async function rows(sql: string, args: unknown[] = []): Promise<any[]> {
  const [r] = await pool.query(sql, args);
  return r as any[];
}

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ourPrograms = () => execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => / name (lt_|ts_)/.test(l));

before(async () => {
  tb = await testbedUp({ id: 'tmg', hosts: 3 });
  redisInfo = await startRedis([tb.managerAddress]);
  db = await startMariaDb();
  const admin = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  await redis.del(RECORD_STREAM, 'latscope:servers'); // this test counts every row of the stream
  redis.disconnect();
  conf = writeTestbedConf(mkdtempSync(join(tmpdir(), 'latscope-mgr-')), tb, redisInfo, db, { ports: [7400, 7401], size: 8192, interval: 0, database: DB, timeSync: true, timeInterval: 2 });
  pool = mysql.createPool({ host: db.host, port: db.port, user: db.user, password: db.password, database: DB, connectionLimit: 2 });
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  latscope(['manager', 'stop', '--conf', conf]);
  await pool?.end();
  await testbedDown('tmg');
  rmSync(conf, { recursive: true, force: true });
});

test('one manager command provisions three hosts over SSH; traffic lands in MariaDB; a killed observer comes back; stop leaves nothing', async (t) => {
  // a second worker process, started first, shares the provisioning (one server at a time each)
  const worker = latscopeBg(['manager', 'worker', '--conf', conf, '--concurrency', '1']);
  await worker.waitFor(/manager worker \d+: running/, 30_000);
  const mgr = latscopeBg(['manager', '--conf', conf, '--concurrency', '1']);
  t.after(() => {
    for (const p of [mgr, worker]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    // failed before its own stop: its observers must not outlive it into the next tests
    latscope(['manager', 'stop', '--conf', conf]);
  });
  await mgr.waitFor(/manager running/, 90_000);
  assert.match(mgr.text, /provisioned 3 of 3 servers/);
  const both = mgr.text + worker.text;
  for (const h of ['tmg-h1', 'tmg-h2', 'tmg-h3']) assert.match(both, new RegExp(`${h}: running \\(observer pid \\d+\\)`));
  assert.match(worker.text, /tmg-h\d: running/, 'the second worker provisioned a server');
  assert.match(mgr.text, /tmg-h\d: running/, 'the manager provisioned a server');
  const [h1, h2, h3] = tb.hosts as [typeof tb.hosts[0], typeof tb.hosts[0], typeof tb.hosts[0]];

  // known streams: 4 MiB h1 -> h2 on 7400 and 2 MiB h3 -> h1 on 7401, a sample every 8192 bytes
  const sink2 = await startIn(h2, 'traffic', ['tcp-sink', 7400, 1]);
  const sink1 = await startIn(h1, 'traffic', ['tcp-sink', 7401, 1]);
  await Promise.all([runIn(h1, 'traffic', ['tcp-send', h2.address, 7400, 4 << 20, 65536]), runIn(h3, 'traffic', ['tcp-send', h1.address, 7401, 2 << 20, 65536])]);
  await Promise.all([sink2.done, sink1.done]);
  // every sample byte once per side (a retransmitted one also comes as a flagged second row),
  // and per server exactly the records its observer says it published
  const expected = { 'tmg-h1 tx': 512, 'tmg-h2 rx': 512, 'tmg-h3 tx': 256, 'tmg-h1 rx': 256 };
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  t.after(() => redis.disconnect());
  let c: Record<string, number> = {};
  let perNode: Record<string, [rows: number, published: number]> = {};
  await until('every record is a row', 30_000, async () => {
    c = Object.fromEntries(
      (await rows("SELECT CONCAT(s.name, ' ', p.dir) AS k, COUNT(DISTINCT p.sample_seq) AS n FROM packets p JOIN servers s ON s.id = p.server_id GROUP BY k")).map((r) => [r.k, Number(r.n)]),
    );
    const beats = await latestHeartbeats(redis, Date.now() - 5000);
    perNode = Object.fromEntries(
      (await rows("SELECT s.name AS k, COUNT(*) AS n FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name LIKE 'tmg-h%' GROUP BY k")).map((r) => [r.k, [Number(r.n), Number(beats.get(r.k)?.published ?? -1)]]),
    );
    return Object.entries(expected).every(([k, n]) => c[k] === n) && Object.values(perNode).every(([n, p]) => n === p);
  }).catch((e: Error) => {
    throw new Error(`${e.message}: sample bytes ${JSON.stringify(c)}, expected ${JSON.stringify(expected)}; rows/published ${JSON.stringify(perNode)}; manager said:\n${mgr.text}`);
  });
  assert.deepEqual(Object.keys(c).sort(), Object.keys(expected).sort());
  const [dup] = await rows('SELECT COUNT(*) AS n, COUNT(DISTINCT server_id, observer_seq) AS d FROM packets');
  assert.equal(Number(dup.n), Number(dup.d), 'no row twice');
  const [tx] = await rows("SELECT COUNT(*) AS n FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name = 'tmg-h1' AND p.dir = 'tx' AND p.attempt = 0 AND p.sock_ns <= p.tcp_ns AND p.tcp_ns <= p.ip_ns AND p.ip_ns <= p.dev_ns AND p.flags & 4");
  assert.equal(Number(tx.n), 512, 'complete tx rows with ordered layer times');
  await until('layer histogram snapshots in MySQL', 15_000, async () =>
    Number((await rows("SELECT COUNT(*) AS n FROM layer_histograms h JOIN servers s ON s.id = h.server_id WHERE s.name = 'tmg-h1' AND h.port = 7400 AND h.dir = 'tx' AND h.from_layer = 'sock' AND h.to_layer = 'tcp'"))[0].n) > 0);
  // a snapshot's buckets hold every matched segment of its pair, sampled or not: at least one
  // per 64 KiB of the 4 MiB (an skb carries at most that much after GRO and backlog merging)
  const [snap] = await rows("SELECT SUM(count) AS n FROM layer_histograms h JOIN servers s ON s.id = h.server_id WHERE s.name = 'tmg-h2' AND h.port = 7400 AND h.dir = 'rx' AND h.from_layer = 'ip' AND h.to_layer = 'tcp' AND h.taken_at = (SELECT MAX(taken_at) FROM layer_histograms WHERE server_id = h.server_id)");
  assert.ok(Number(snap.n) >= (4 << 20) / 65536, `rx ip->tcp histogram of h2 holds ${snap.n} segments`);
  // the analysis job: every sample joined into a path between the two servers (both ends
  // observed, so nothing unmatched), per-host layers, and per-pair statistics
  const byName = async (sql: string) => Object.fromEntries((await rows(sql)).map((r) => [r.k, Number(r.n)]));
  let joined: Record<string, number> = {};
  await until('every sample joined by the analysis job', 60_000, async () => {
    joined = await byName("SELECT CONCAT(a.name, '>', b.name) AS k, COUNT(*) AS n FROM paths p JOIN servers a ON a.id = p.src_server_id JOIN servers b ON b.id = p.dst_server_id WHERE NOT p.flags & 1 GROUP BY k");
    return joined['tmg-h1>tmg-h2'] === 512 && joined['tmg-h3>tmg-h1'] === 256;
  }).catch(async (e: Error) => {
    // what became of the others: retransmitted paths, unmatched records, records still waiting
    const retrans = await byName("SELECT CONCAT(a.name, '>', b.name) AS k, COUNT(*) AS n FROM paths p JOIN servers a ON a.id = p.src_server_id JOIN servers b ON b.id = p.dst_server_id WHERE p.flags & 1 GROUP BY k");
    const unmatched = await byName('SELECT reason AS k, SUM(samples) AS n FROM unmatched GROUP BY reason');
    const [waiting] = await rows('SELECT COUNT(*) AS n FROM analysis_pending');
    throw new Error(`${e.message}: paths ${JSON.stringify(joined)}, retransmitted ${JSON.stringify(retrans)}, unmatched ${JSON.stringify(unmatched)}, waiting ${waiting.n}; manager said:\n${mgr.text}`);
  });
  const [um] = await rows("SELECT COALESCE(SUM(samples), 0) AS n FROM unmatched WHERE reason <> 'peer_not_observed'");
  assert.equal(Number(um.n), 0, 'nothing unmatched between two observed servers');
  // paths commit before the statistics of the same run (their own transactions): wait for those too
  let hostTx: Record<string, number> = {};
  await until('host statistics of tmg-h1', 30_000, async () => {
    hostTx = await byName("SELECT s.name AS k, samples AS n FROM (SELECT src_server_id, SUM(samples) AS samples FROM path_stats WHERE scope = 'host' AND segment = 'tx_sock_tcp' GROUP BY src_server_id) x JOIN servers s ON s.id = x.src_server_id");
    return hostTx['tmg-h1'] === 512;
  }).catch((e: Error) => {
    throw new Error(`${e.message}: host tx sock->tcp samples ${JSON.stringify(hostTx)}, expected 512 for tmg-h1 (every complete record it sent)`);
  });
  for (const r of await rows("SELECT segment, p50_ns, p99_ns, max_ns, bound_ns FROM path_stats WHERE scope = 'pair'"))
    assert.ok(r.segment === 'wire' || (r.p50_ns <= r.p99_ns && r.p99_ns <= r.max_ns), JSON.stringify(r));
  const [faults] = await rows('SELECT COUNT(*) AS n FROM paths WHERE flags & 2');
  assert.equal(Number(faults.n), 0, 'no clock fault on one machine');
  const [servers] = await rows("SELECT COUNT(*) AS n FROM servers WHERE name LIKE 'tmg-h%' AND address IS NOT NULL AND kind = 'bare-metal'");
  assert.equal(Number(servers.n), 3);
  await until('a time-sync round for every server', 30_000, async () => Number((await rows('SELECT COUNT(DISTINCT server) AS n FROM clock_offsets'))[0].n) === 3);
  for (const r of await rows('SELECT server, offset_ns, bound_ns FROM clock_offsets')) assert.ok(Math.abs(Number(r.offset_ns)) <= r.bound_ns, `${r.server}: |offset| ${r.offset_ns} > bound ${r.bound_ns}`);

  const status = latscope(['manager', 'status', '--conf', conf]);
  assert.equal(status.code, 0, status.out);
  for (const h of ['tmg-h1', 'tmg-h2', 'tmg-h3']) assert.match(status.out, new RegExp(`${h}\\s+running\\s+heartbeat [\\d.]+ s ago`));
  assert.match(status.out, /health: ok/);

  // supervision: a killed observer is started again
  const stateFile = join(installDirOf(tb, 'h2'), 'run', 'supervisor.json');
  const before = JSON.parse(readFileSync(stateFile, 'utf8'));
  process.kill(before.childPid, 'SIGKILL');
  await until('the observer is back', 20_000, async () => {
    const now = JSON.parse(readFileSync(stateFile, 'utf8'));
    return now.restarts === before.restarts + 1 && now.childPid && now.childPid !== before.childPid && now.state === 'running';
  });

  const stop = latscope(['manager', 'stop', '--conf', conf]);
  assert.equal(stop.code, 0, stop.out);
  assert.match(stop.out, /stopped 3 of 3 servers/);
  assert.equal(await mgr.exited, 0, mgr.text);
  assert.match(mgr.text, /stopping \(manager stop\)/);
  assert.equal(await worker.exited, 0, worker.text);
  // a health check: stopped servers make the status exit 3, naming each
  const down = latscope(['manager', 'status', '--conf', conf, '--json']);
  assert.equal(down.code, 3, down.out);
  const ds = JSON.parse(down.out.split('\n').find((l) => l.startsWith('{'))!);
  assert.equal(ds.healthy, false);
  for (const h of ['tmg-h1', 'tmg-h2', 'tmg-h3']) assert.ok(ds.problems.some((p: string) => p.startsWith(`${h} is stopped`)), JSON.stringify(ds.problems));
  for (const h of tb.hosts) {
    const procs = execFileSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const cmds = procs.map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return ''; } });
    assert.deepEqual(cmds.filter((c) => /cli\.js/.test(c)), [], `${h.name}: latscope processes left`);
    assert.equal(linkHasXdp(h.netns, h.iface), false, `${h.name}: XDP left on ${h.iface}`);
  }
  assert.deepEqual(ourPrograms(), [], 'no latscope BPF program left in the kernel');
});

test('engine stream: the manager analyzes what real observers publish as it arrives: every sample in the pair statistics, no row per record, the checkpoint counting each record once', async (t) => {
  const DB2 = `${DB}_stream`;
  const admin = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password });
  await admin.query(`DROP DATABASE IF EXISTS ${DB2}`);
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  await redis.del(RECORD_STREAM); // this test counts every record of the stream
  const dir = mkdtempSync(join(tmpdir(), 'latscope-mgr-stream-'));
  const conf2 = writeTestbedConf(dir, tb, redisInfo, db, { ports: [7402], size: 8192, interval: 0, database: DB2, timeSync: true, timeInterval: 2, analysis: { engine: 'stream', step_records: 1000 } });
  const mgr = latscopeBg(['manager', '--conf', conf2]);
  const p2 = mysql.createPool({ host: db.host, port: db.port, user: db.user, password: db.password, database: DB2, connectionLimit: 2 });
  t.after(async () => {
    if (mgr.child.exitCode === null) mgr.child.kill('SIGKILL');
    latscope(['manager', 'stop', '--conf', conf2]);
    redis.disconnect();
    await p2.end();
    await admin.query(`DROP DATABASE IF EXISTS ${DB2}`).catch(() => {});
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  });
  await mgr.waitFor(/manager running/, 90_000);
  const q = async (sql: string) => ((await p2.query(sql)) as any)[0] as any[];
  const [h1, h2] = tb.hosts as [typeof tb.hosts[0], typeof tb.hosts[0]];
  // 2 MiB h1 -> h2, a sample every 8192 bytes: 256 samples, a record at each end
  const sink = await startIn(h2, 'traffic', ['tcp-sink', 7402, 1]);
  await runIn(h1, 'traffic', ['tcp-send', h2.address, 7402, 2 << 20, 65536]);
  await sink.done;
  let got = { records: 0, published: 0, e2e: 0, retrans: 0 };
  await until('every sample of h1 -> h2 in the pair statistics', 60_000, async () => {
    const [cp] = await q('SELECT COALESCE(SUM(records), 0) AS n FROM stream_checkpoints');
    const [e2e] = await q("SELECT COALESCE(SUM(p.samples), 0) AS n FROM path_stats p JOIN servers a ON a.id = p.src_server_id JOIN servers b ON b.id = p.dst_server_id WHERE p.scope = 'pair' AND p.segment = 'end_to_end' AND a.name = 'tmg-h1' AND b.name = 'tmg-h2'");
    // retransmitted samples stay out of the statistics (filter_retrans): counted in their flow's windows
    const [rt] = await q('SELECT COALESCE(SUM(retransmissions), 0) AS n FROM flow_windows');
    // what the observers say they published (their heartbeats), to compare with what was analyzed
    const beats = await latestHeartbeats(redis, Date.now() - 5000);
    const published = [...beats].filter(([node]) => node.startsWith('tmg-h')).reduce((sum, [, b]) => sum + Number(b.published ?? 0), 0);
    got = { records: Number(cp.n), published, e2e: Number(e2e.n), retrans: Number(rt.n) };
    return got.records >= 512 && got.records === got.published && got.e2e + got.retrans >= 256;
  }).catch((e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(got)}; manager said:\n${mgr.text}`);
  });
  assert.ok(got.e2e >= 250, `end-to-end samples: ${JSON.stringify(got)}`);
  const [um] = await q("SELECT COALESCE(SUM(samples), 0) AS n FROM unmatched WHERE reason <> 'peer_not_observed'");
  assert.equal(Number(um.n), 0, 'nothing unmatched between two observed servers');
  // no row per record: packets and paths hold the exemplars (the spikes) only
  const [pk] = await q('SELECT COUNT(*) AS n FROM packets');
  const [pa] = await q('SELECT COUNT(*) AS n FROM paths');
  const [sp] = await q('SELECT COUNT(*) AS n FROM spikes');
  assert.equal(Number(pa.n), Number(sp.n), 'a path row per spike');
  assert.equal(Number(pk.n), 2 * Number(sp.n), 'raw rows for the spikes\' records only');
  assert.equal(await redis.xlen(RECORD_STREAM), 0, 'every entry acknowledged and deleted');
  const stop = latscope(['manager', 'stop', '--conf', conf2]);
  assert.equal(stop.code, 0, stop.out);
  assert.equal(await mgr.exited, 0, mgr.text);
});

test('a changed host key, an unreachable server and a wrong password each fail with a clear error naming the server; the others proceed', async () => {
  const bad = mkdtempSync(join(tmpdir(), 'latscope-mgr-bad-'));
  try {
    execFileSync('cp', ['-a', `${conf}/.`, bad]);
    rmSync(join(bad, 'ping_info.yaml'));
    const ci = parse(readFileSync(join(conf, 'connect_info.yaml'), 'utf8'));
    // h2's line in known_hosts gets another key: what a reinstalled (or impersonated) server shows
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(bad, 'other_host_key')]);
    const otherKey = readFileSync(join(bad, 'other_host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const known = readFileSync(tb.knownHostsPath, 'utf8').split('\n').map((l) => (l.startsWith(`${tb.hosts[1]!.address} `) ? `${tb.hosts[1]!.address} ${otherKey}` : l));
    writeFileSync(join(bad, 'known_hosts'), known.join('\n'));
    ci.known_hosts = join(bad, 'known_hosts');
    const sub = tb.managerAddress.split('.').slice(0, 3).join('.');
    // a server whose every command hangs, and one whose install_dir is under world-writable /tmp
    const [h1, , h3] = tb.hosts;
    await startExtraSshd(tb, h3!, { port: 2224, name: 'h3-hang', extra: ['ForceCommand sleep 600'] });
    await startExtraSshd(tb, h1!, { port: 2226, name: 'h1-2226' });
    const hostPub = readFileSync(join(tb.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    known.push(`[${h3!.address}]:2224 ${hostPub}`, `[${h1!.address}]:2226 ${hostPub}`);
    writeFileSync(join(bad, 'known_hosts'), known.join('\n') + '\n');
    const unsafeDir = mkdtempSync(join(tmpdir(), 'latscope-unsafe-'));
    ci.servers = [
      ci.servers[0],
      ci.servers[1],
      { hostname: 'tmg-gone', address: `${sub}.99`, metadata_key: 98, key_file: tb.sshKeyPath, install_dir: installDirOf(tb, 'gone') },
      { ...ci.servers[2], hostname: 'tmg-pw', password: 'not-the-password', key_file: undefined },
      { ...structuredClone(ci.servers[2]), hostname: 'tmg-hang', port: 2224, metadata_key: 97, key_file: tb.sshKeyPath, install_dir: installDirOf(tb, 'hang') },
      { ...structuredClone(ci.servers[0]), hostname: 'tmg-unsafe', port: 2226, metadata_key: 96, key_file: tb.sshKeyPath, install_dir: join(unsafeDir, 'latscope') },
    ];
    ci.defaults = { username: 'root' };
    ci.servers[0].key_file = tb.sshKeyPath;
    ci.servers[1].key_file = tb.sshKeyPath;
    writeFileSync(join(bad, 'connect_info.yaml'), stringify(ci));

    const t0 = Date.now();
    const r = latscope(['manager', '--conf', bad, '--no-wait']);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /provisioned 1 of 6 servers/);
    assert.match(r.out, /tmg-hang: failed \(a command did not finish within 25 s/);
    assert.ok(r.out.indexOf('tmg-h1: running') < r.out.indexOf('tmg-hang: failed'), 'the hanging server held nobody up');
    assert.match(r.out, /tmg-unsafe: failed \(install_dir \/tmp\/latscope-unsafe-\w+\/latscope is not safe: \/tmp is writable by its group and others \(mode 1777\)/);
    assert.equal(readdirSync(unsafeDir).length, 0, 'nothing was written into the unsafe install_dir');
    assert.match(r.out, /tmg-h1: running/);
    assert.match(r.out, /tmg-h2: failed \(host key of [\d.]+:22 has CHANGED/);
    assert.match(r.out, /tmg-gone: failed \(cannot reach [\d.]+:22: (EHOSTUNREACH|ETIMEDOUT|Timed out)/);
    assert.match(r.out, /tmg-pw: failed \(authentication as root failed \(tried password\)/);
    assert.doesNotMatch(r.out, /not-the-password/);
    assert.ok(Date.now() - t0 < 75_000, 'retries of the unreachable server and the hanging one are bounded');
    // the changed key was not overwritten
    assert.match(readFileSync(join(bad, 'known_hosts'), 'utf8'), new RegExp(otherKey.split(' ')[1]!.replace(/[+/]/g, '\\$&')));

    const stop = latscope(['manager', 'stop', '--conf', bad]);
    assert.equal(stop.code, 1);
    assert.match(stop.out, /tmg-h1: stopped/);
    assert.match(stop.out, /stopped 2 of 6 servers/);
    rmSync(unsafeDir, { recursive: true, force: true });
    assert.deepEqual(ourPrograms(), []);
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});

/** A synthetic record of node `node`, sequence number seq. */
function record(node: string, seq: number): PacketRecord {
  const t = 5_000_000_000n + BigInt(seq) * 1000n;
  return {
    node, observerSeq: seq, dir: 'tx', flow: { family: 4, src: '10.0.0.1', sport: 40000, dst: '10.0.0.2', dport: 7400 },
    sampleSeq: seq, streamOffset: seq, segStart: seq, segEnd: seq + 1, attempt: 0, retrans: false, interval: false, complete: true,
    layers: { sock: { tsNs: t, cpu: 0, tid: 1 }, tcp: { tsNs: t + 1n, cpu: 0, tid: 1 }, ip: { tsNs: t + 2n, cpu: 0, tid: 1 }, dev: { tsNs: t + 3n, cpu: 0, tid: 1 } },
    devices: [{ ifindex: 2, netns: 1, rx: false, tsNs: t + 3n }],
  };
}

test('ingest: a worker killed mid-stream and MariaDB restarted mid-stream; afterwards the rows equal the records produced, none twice', async () => {
  const d = loadDeployment(conf);
  const mgr = await Manager.open(d);
  await mgr.prepare();
  await mgr.schedule(); // the reclaim scheduler, which takes over the killed worker's batches
  await mgr.close();
  const N = 300_000;
  // an observer as the manager makes them: a Redis user of its own, every entry signed
  const asObserver = { ...d, servers: [{ hostname: 'ingest-test' }] } as unknown as Deployment;
  const admin = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  await ensureObserverUsers(admin, asObserver).finally(() => admin.disconnect());
  const pub = new RecordPublisher({
    node: 'ingest-test', redis: { host: redisInfo.host, port: redisInfo.port, ...observerCredentials(asObserver, 'ingest-test'), signEntries: true },
    batchRecords: 256, pipelineEntries: 64, maxMemoryBytes: 1 << 30, spoolDir: join(conf, 'spool'), maxSpoolBytes: 1 << 30, flushMs: 20,
  });
  await pub.connect();
  const first = Date.now() * 1000;
  const produce = (async () => {
    for (let i = 0; i < N; i += 10_000) {
      for (let k = i; k < i + 10_000; k++) pub.push(record('ingest-test', first + k));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const loaded = async () => Number((await rows("SELECT COUNT(*) AS n FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name = 'ingest-test'").catch(() => [{ n: -1 }]))[0].n);

  const w1 = latscopeBg(['manager', 'worker', '--conf', conf]);
  await w1.waitFor(/manager worker \d+: running/, 30_000);
  await until('some rows are in', 30_000, async () => (await loaded()) > 20_000);
  w1.child.kill('SIGKILL');
  await w1.exited;
  const atKill = await loaded();
  assert.ok(atKill < N, 'the worker died mid-stream');

  const w2 = latscopeBg(['manager', 'worker', '--conf', conf]);
  await w2.waitFor(/manager worker \d+: running/, 30_000);
  await until('more rows', 30_000, async () => (await loaded()) > atKill + 20_000);
  await stopMariaDb();
  await new Promise((r) => setTimeout(r, 3000)); // the stream keeps growing meanwhile
  db = await startMariaDb();
  await pool.end();
  pool = mysql.createPool({ host: db.host, port: db.port, user: db.user, password: db.password, database: DB, connectionLimit: 2 });
  await produce;
  await pub.close(10_000);
  assert.equal(pub.counters.published, N);
  await until('every record is a row', 90_000, async () => (await loaded()) >= N);
  await new Promise((r) => setTimeout(r, 2000)); // nothing more arrives
  const [r] = await rows("SELECT COUNT(*) AS n, COUNT(DISTINCT observer_seq) AS d, MIN(observer_seq) AS lo, MAX(observer_seq) AS hi FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name = 'ingest-test'");
  assert.equal(Number(r.n), N);
  assert.equal(Number(r.d), N);
  assert.equal(BigInt(r.lo), BigInt(first));
  assert.equal(BigInt(r.hi), BigInt(first + N - 1));
  w2.child.kill('SIGTERM');
  assert.equal(await w2.exited, 0, w2.text);
  assert.match(w2.text, /ingested \d+ rows/);
});

test('an unreachable Redis or MySQL, or a wrong password, is named clearly; nothing is provisioned and no secret is printed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latscope-mgr-down-'));
  try {
    execFileSync('cp', ['-a', `${conf}/.`, dir]);
    const redisPw = readFileSync(join(conf, 'redis.password'), 'utf8').trim();
    const dbPw = readFileSync(join(conf, 'db.password'), 'utf8').trim();
    const cases: [string, string, string, RegExp][] = [
      ['redis_info.yaml', 'port: 1', `port: ${redisInfo.port}`, /redis at [\d.]+:1 \(redis_info\.yaml\): connect ECONNREFUSED/],
      ['redis.password', 'wrong-redis-password', redisPw, /redis at [\d.]+:\d+ \(redis_info\.yaml\): WRONGPASS/],
      ['database_info.yaml', 'port: 1', `port: ${db.port}`, /mysql at 127\.0\.0\.1:1 database latscope_tmg \(database_info\.yaml\): connect ECONNREFUSED/],
      ['db.password', 'wrong-db-password', dbPw, /mysql at 127\.0\.0\.1:\d+ database latscope_tmg \(database_info\.yaml\): Access denied/],
    ];
    for (const [file, bad, good, expected] of cases) {
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      writeFileSync(path, file.endsWith('.yaml') ? text.replace(/^port: \d+$/m, bad) : `${bad}\n`);
      const r = latscope(['manager', '--conf', dir, '--no-wait'], 60_000);
      assert.equal(r.code, 1, `${file}: ${r.out}`);
      assert.match(r.out, expected);
      assert.doesNotMatch(r.out, /provisioned|connecting/);
      for (const secret of [redisPw, dbPw, 'wrong-redis-password', 'wrong-db-password']) assert.ok(!r.out.includes(secret), `${file}: a secret was printed`);
      writeFileSync(path, file.endsWith('.yaml') ? text : `${good}\n`);
    }
    assert.deepEqual(ourPrograms(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
