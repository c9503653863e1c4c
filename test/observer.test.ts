/**
 * The observer command on a testbed host: it reads conf/, publishes records and heartbeats to
 * the real Redis, serves Prometheus metrics, detaches its probes on SIGTERM, and refuses bad
 * input clearly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { startRedis, stopRedis, redisRunning, type RedisInfo } from '../local/servers.js';
import { readHeartbeats } from '../manager/state.js';
import { projectRoot } from '../lib/paths.js';
import { runIn, startIn, progExists, until } from './helpers/fixtures.js';

const cli = join(projectRoot, 'dist', 'cli.js');
let tb: Testbed;
let redisInfo: RedisInfo;
let startedRedis = false;
let conf: string;

before(async () => {
  tb = await testbedUp({ id: 'tobs', hosts: 2 });
  startedRedis = !redisRunning();
  redisInfo = await startRedis([tb.managerAddress]);
  conf = mkdtempSync(join(tmpdir(), 'latscope-conf-'));
  writeFileSync(join(conf, 'sampling_info.yaml'), 'size: 1000\ninterval: 0\nports: [7200]\nfilter_retrans: 1\n');
  writeFileSync(join(conf, 'redis_info.yaml'), `address: ${tb.managerAddress}\nport: ${redisInfo.port}\n`);
  writeFileSync(join(conf, 'ping_info.yaml'), `port: 5077\neth: eth0\nkey_file: ts.key\nprobers: [${tb.managerAddress}]\n`);
  writeFileSync(join(conf, 'ts.key'), '00aa00bb00cc00dd\n', { mode: 0o600 });
});
after(async () => {
  await testbedDown('tobs');
  if (startedRedis) await stopRedis();
  rmSync(conf, { recursive: true, force: true });
});

const latencyProgs = () =>
  JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })).filter((p: { name?: string }) => p.name?.startsWith('lt_'));

function observer(host: number, extra: string[] = [], confDir = conf) {
  const h = tb.hosts[host]!;
  const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, cli, 'observer', '--conf', confDir, '--node', `t${process.pid}h${host}`, '--redis-password-stdin', '--heartbeat-ms', '200', ...extra], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(`${redisInfo.password}\n`);
  const out = { text: '' };
  child.stdout.on('data', (d) => (out.text += d));
  child.stderr.on('data', (d) => (out.text += d));
  return { child, out, exit: new Promise<number | null>((r) => child.once('exit', r)) };
}

test('observer publishes records and heartbeats, serves metrics, and detaches everything on SIGTERM', async () => {
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  const since = `${Date.now()}-0`;
  const responders = () => JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })).filter((p: { name?: string }) => p.name === 'ts_respond').map((p: { id: number }) => p.id) as number[];
  const othersBefore = new Set(responders()); // another testbed's, not ours
  const o = observer(0, ['--metrics-port', '9464', '--metrics-host', '0.0.0.0', '--bpf-stats']);
  try {
    await until('observer running', 20_000, () => o.out.text.includes('running'));
    const ids = latencyProgs().map((p: { id: number }) => p.id);
    assert.equal(ids.length, 9, `probes loaded: ${ids.length} (one per hook of latency.bpf.c)`);
    // ping_info.yaml in the conf: the observer answers time-sync probes too
    assert.match(o.out.text, /time-sync responder xdp-generic on eth0:5077/);
    const responderIds = responders().filter((id) => !othersBefore.has(id));
    assert.equal(responderIds.length, 1);
    ids.push(...responderIds);

    const server = await startIn(tb.hosts[1]!, 'traffic', ['tcp-server', 7200, 1]);
    await runIn(tb.hosts[0]!, 'traffic', ['tcp-client', tb.hosts[1]!.address, 7200, 100]);
    await server.done;

    const metrics = await (await fetch(`http://${tb.hosts[0]!.address}:9464/metrics`)).text();
    assert.match(metrics, /latscope_layer_delay_seconds_bucket\{port="7200",dir="tx",from="tcp",to="ip",le="[^"]+",node="t\d+h0"\} [1-9]/);
    assert.match(metrics, /latscope_dropped_total\{where="ring",node="t\d+h0"\} 0/);
    // the gauges of what is on its way: events in the ring, records still assembling
    assert.match(metrics, /# TYPE latscope_ring_unread_bytes gauge\nlatscope_ring_unread_bytes\{node="t\d+h0"\} \d+\n/);
    assert.match(metrics, /# TYPE latscope_records_assembling gauge\nlatscope_records_assembling\{node="t\d+h0"\} \d+\n/);
    assert.match(metrics, /latscope_bpf_program_runs_total\{program="lt_tcp_send",node="t\d+h0"\} [1-9]/);

    o.child.kill('SIGTERM');
    assert.equal(await o.exit, 0, o.out.text);
    const beats = (await readHeartbeats(redis, since)).filter((b) => b.node === `t${process.pid}h0`);
    const last = beats[beats.length - 1]!;
    assert.equal(last.state, 'stopped');
    // 100 messages of 100 bytes each way, one sample per 1000 bytes: 10 per direction.
    assert.ok(Number(last.records) >= 20, JSON.stringify(last));
    assert.equal(last.published, last.records);
    for (const id of ids) await until(`probe ${id} unloaded`, 5000, () => !progExists(id));
  } finally {
    o.child.kill('SIGKILL');
    redis.disconnect();
  }
});

test('SIGTERM while the observer is still starting: it stops cleanly once started (exit 0, its summary), and leaves no probe behind', async () => {
  const o = observer(0, ['--json']);
  // the moment its first programs are loaded: well before it says it is running
  await until('probes loading', 20_000, () => latencyProgs().length > 0);
  const early = !o.out.text.includes('running');
  o.child.kill('SIGTERM');
  assert.equal(await o.exit, 0, o.out.text);
  assert.match(o.out.text, /"records":\d+/, 'its summary');
  assert.equal(latencyProgs().length, 0, 'no probe left');
  if (!early) console.log('# (the signal came after the start this time: the clean stop of a running observer was tested)');
});

test('observer without a reachable Redis says so and exits non-zero, leaving no probe behind', async () => {
  const bad = mkdtempSync(join(tmpdir(), 'latscope-conf-'));
  writeFileSync(join(bad, 'sampling_info.yaml'), 'ports: 7200\n');
  writeFileSync(join(bad, 'redis_info.yaml'), `address: ${tb.managerAddress}\nport: 1\n`);
  const o = observer(0, [], bad);
  assert.equal(await o.exit, 1);
  rmSync(bad, { recursive: true });
  assert.match(o.out.text, /connecting to redis at 10\.231\.\d+\.1:1/);
  assert.equal(latencyProgs().length, 0);
});

test('observer with a bad sampling_info.yaml names the file, line and key, and loads nothing', async () => {
  const bad = mkdtempSync(join(tmpdir(), 'latscope-conf-'));
  writeFileSync(join(bad, 'sampling_info.yaml'), 'size: 1000\nports: [7200, "http"]\n');
  writeFileSync(join(bad, 'redis_info.yaml'), `address: ${tb.managerAddress}\n`);
  const o = observer(0, [], bad);
  assert.equal(await o.exit, 1);
  rmSync(bad, { recursive: true });
  assert.match(o.out.text, /sampling_info\.yaml:2: ports\.1: expected a port number/);
  assert.equal(latencyProgs().length, 0);
});

test('a metrics port already in use is logged and reported in the heartbeat; the observer runs and publishes on', async () => {
  const h = tb.hosts[1]!;
  // something else holds the port in the host's namespace
  const squatter = spawn('ip', ['netns', 'exec', h.netns, process.execPath, '-e', "require('net').createServer().listen(9478, '127.0.0.1'); setTimeout(() => {}, 60000)"], { stdio: 'ignore' });
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  const since = `${Date.now()}-0`;
  await new Promise((r) => setTimeout(r, 500));
  const o = observer(1, []); // the default port: 9478 on loopback
  try {
    await until('observer running', 20_000, () => o.out.text.includes('running'));
    assert.match(o.out.text, /"level":40,.*"err":"metrics endpoint on 127\.0\.0\.1:9478: the port is in use; choose another with --metrics-port.*"msg":"the metrics endpoint is not available/);
    assert.match(o.out.text, /running .*metrics endpoint unavailable/);
    let beats: Record<string, string>[] = [];
    for (let i = 0; i < 50 && !beats.length; i++) {
      beats = (await readHeartbeats(redis, since)).filter((b) => b.node === `t${process.pid}h1`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const beat = beats.at(-1)!;
    assert.ok(beat, 'a heartbeat came');
    assert.equal(beat.metrics, 'unavailable');
    assert.equal(beat.state, 'running');
  } finally {
    o.child.kill('SIGTERM');
    assert.equal(await o.exit, 0, o.out.text);
    squatter.kill('SIGKILL');
    redis.disconnect();
  }
});
