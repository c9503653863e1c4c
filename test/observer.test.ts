/**
 * The observer process on a testbed host: it publishes heartbeats with its host's packet
 * counters to the real Redis, and SIGTERM detaches its probes. And the demo, end to end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { startRedis, stopRedis, redisRunning, type RedisInfo } from '../local/servers.js';
import { readHeartbeats } from '../observer/observer.js';
import { projectRoot } from '../lib/paths.js';
import { runIn, startIn, progExists, until } from './helpers/fixtures.js';

const cli = join(projectRoot, 'dist', 'cli.js');
let tb: Testbed;
let redisInfo: RedisInfo;
let startedRedis = false;

before(async () => {
  tb = await testbedUp({ id: 'tobs', hosts: 2 });
  startedRedis = !redisRunning();
  redisInfo = await startRedis([tb.managerAddress]);
});
after(async () => {
  await testbedDown('tobs');
  if (startedRedis) await stopRedis();
});

test('observer publishes heartbeats with its host\'s traffic and detaches its probes on SIGTERM', async () => {
  const h = tb.hosts[0]!;
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  const since = `${Date.now()}-0`;
  const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, cli, 'observer', '--node', `t${process.pid}`, '--redis', `${tb.managerAddress}:${redisInfo.port}`, '--redis-password-stdin', '--heartbeat-ms', '200'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(`${redisInfo.password}\n`);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    await until('observer running', 15_000, () => out.includes('running'));
    const ids = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }))
      .filter((p: { name?: string }) => p.name === 'count_tx' || p.name === 'count_rx')
      .map((p: { id: number }) => p.id);
    assert.equal(ids.length, 2, 'both probes loaded');

    const server = await startIn(tb.hosts[1]!, 'traffic', ['tcp-server', 7200, 1]);
    await runIn(h, 'traffic', ['tcp-client', tb.hosts[1]!.address, 7200, 100]);
    await server.done;
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0, out);

    const beats = (await readHeartbeats(redis, since)).filter((b) => b.node === `t${process.pid}`);
    const last = beats[beats.length - 1]!;
    assert.equal(last.state, 'stopped');
    // 100 request/response exchanges: at least 100 data segments each way on this host.
    assert.ok(Number(last.txPackets) >= 100 && Number(last.rxPackets) >= 100, JSON.stringify(last));
    for (const id of ids) await until(`probe ${id} unloaded`, 5000, () => !progExists(id));
  } finally {
    child.kill('SIGKILL');
    redis.disconnect();
  }
});

test('observer without a reachable Redis says so and exits non-zero, leaving no probe behind', () => {
  const h = tb.hosts[0]!;
  let err = '';
  let status = 0;
  try {
    execFileSync('ip', ['netns', 'exec', h.netns, process.execPath, cli, 'observer', '--node', 'x', '--redis', `${tb.managerAddress}:1`], { stdio: 'pipe', timeout: 30_000 });
  } catch (e) {
    err = String((e as { stderr: Buffer }).stderr);
    status = (e as { status: number }).status;
  }
  assert.equal(status, 1);
  assert.match(err, /connecting to redis at 10\.231\.\d+\.1:1/);
  const left = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })).filter((p: { name?: string }) => p.name === 'count_tx');
  assert.equal(left.length, 0);
});

test('the demo runs end to end and cleans up after itself', () => {
  const out = execFileSync(process.execPath, [cli, 'demo', '--hosts', '2', '--seconds', '3'], { encoding: 'utf8', timeout: 120_000 });
  assert.match(out, /demo: OK/);
  assert.match(out, /h1 10\.231\.\d+\.11: observer exit 0, \d+ heartbeats, tx \d+ packets/);
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /ls-demo-/);
});
