/**
 * The kernel-side benchmarks do not rot: bench/ringbuf, bench/graph, bench/timesync and
 * bench/host-overhead run in their smallest form and print both of their sides; bench/overload
 * keeps its bounds and its counts balance; bench/mesh runs on a small testbed and simulation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { bench, stopBench } from './helpers/bench.js';
import { until } from './helpers/fixtures.js';

const running = (name: string) => spawnSync('pgrep', ['-x', name]).status === 0;
const programs = () => execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' });

test('bench/ringbuf in smoke size: the batched drain and the per-record reference both deliver, in order', async () => {
  const rb = (await bench('ringbuf', ['--seconds', '1'], 60_000)) as Record<string, any>;
  assert.ok(rb.batched.recordsPerSec > 0 && rb.perRecordReference.recordsPerSec > 0 && rb.batched.outOfOrder === 0, JSON.stringify(rb));
});

test('bench/graph in smoke size: a day and an hour of graphs are drawn', async () => {
  const g = (await bench('graph', ['--rounds', '1'], 60_000)) as Record<string, any>;
  assert.ok(g.daySeconds > 0 && g.hourSeconds > 0, JSON.stringify(g));
});

test('bench/timesync in smoke size: the XDP responder and the user-space echo both answer probes', async () => {
  const ts = (await bench('timesync', ['--rounds', '2', '--probes', '100', '--seconds', '4'], 60_000)) as Record<string, any>;
  assert.ok(ts.xdp.probes > 0 && ts.userSpaceEcho.probes > 0, JSON.stringify(ts));
});

test('bench/host-overhead in smoke size: the jitter modules and the baseline are both measured', async () => {
  const ho = (await bench('host-overhead', ['--rounds', '1', '--seconds', '1'], 150_000)) as Record<string, any>;
  assert.ok(ho.medianNsPerEvent.latscope > 0 && ho.medianNsPerEvent.latscopeSyscallsEveryCall > 0 && ho.throughput.baseline.tcpPingpongRttPerS > 0, JSON.stringify(ho));
  for (const w of ['tcpPingpong', 'pipePingpong']) assert.ok(ho.bpfNsPerRound.floor[w] > 0 && Number.isFinite(ho.bpfNsPerRoundAboveFloor.latscope[w]), JSON.stringify(ho.bpfNsPerRound));
});

test('bench/host-overhead stopped by SIGTERM while bpftrace runs: it says so, fails, and leaves no bpftrace, workload, server or program behind', async () => {
  const { code, err } = await stopBench('host-overhead', ['--rounds', '3', '--seconds', '1'], /round 1 of 3: bpftrace/, { afterMs: 2500 });
  assert.equal(code, 2, err);
  assert.match(err, /stopped \(SIGTERM|killed \(SIGKILL/);
  for (const p of ['bpftrace', 'tcpbench', 'hostload']) await until(`no ${p} is left`, 5000, () => !running(p));
  await until('no program of the benchmark is left', 5000, () => !programs().match(/\b(ls_|floor_)\w+|name (sys_enter|sys_exit|sched_switch|sched_wakeup)\b/));
});

test('bench/timesync stopped by SIGTERM between rounds: it says so, exits 1, and removes its responders and testbed', async () => {
  const { code, err } = await stopBench('timesync', ['--seconds', '30', '--rounds', '6', '--probes', '100'], /round 1\/6/);
  assert.equal(code, 1, err);
  assert.match(err, /stopped \(SIGTERM/);
  assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes('ls-bts-'), 'no namespace left');
  await until('no sshd of its testbed left', 5000, () => spawnSync('pgrep', ['-f', 'latscope-testbed/bts/']).status === 1);
  await until('no responder or prober program is left', 5000, () => !/\bts_\w+/.test(programs()));
});

test('bench/ringbuf stopped by SIGTERM mid-phase: it ends, and its spinning producer ends with it', async () => {
  const { code, err } = await stopBench('ringbuf', ['--seconds', '9'], /^/, { afterMs: 1500, limitMs: 10_000 });
  assert.notEqual(code, 0, err);
  await until('no producer left', 5000, () => spawnSync('pgrep', ['-f', 'process.ppid']).status === 1);
});

test('bench/graph stopped by SIGTERM mid-run: it says so, exits 1, and removes its temporary folder', async () => {
  const folders = () => readdirSync(tmpdir()).filter((f) => f.startsWith('latscope-bench-graph-')).length;
  const before = folders();
  const { code, err } = await stopBench('graph', ['--rounds', '5'], /^/, { afterMs: 3000, limitMs: 15_000 });
  assert.equal(code, 1, err);
  assert.match(err, /stopped \(SIGTERM/);
  assert.equal(folders(), before, 'no temporary folder left');
});

test('bench/overload in smoke size: 5 s of every segment, ingest stopped: bounds kept, produced − stored = dropped, each record stored once', async () => {
  const j = (await bench('overload', ['--seconds', '5'], 150_000)) as Record<string, any>;
  assert.ok(j.observers.length === 2 && j.observers.every((o: { produced: number }) => o.produced > 0), JSON.stringify(j.observers));
  assert.deepEqual(j.ok, { observerMemory: true, redisMemory: true, stop: true, dropsBalance: true, exactlyOnce: true });
});

test('bench/overload stopped by SIGTERM under full load: it says so, fails, and leaves no observer, namespace or program behind', async () => {
  const { code, err } = await stopBench('overload', ['--seconds', '30'], /observers running/, { afterMs: 2000, limitMs: 60_000 });
  assert.equal(code, 2, err);
  assert.match(err, /stopped \(SIGTERM/);
  assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes('ls-ovl-'), 'no namespace left');
  await until('no process of its testbed left', 5000, () => spawnSync('pgrep', ['-f', 'latscope-testbed/ovl/']).status === 1);
  await until('no observer program is left', 5000, () => !/\blt_\w+/.test(programs()));
});

test('bench/mesh in smoke size: the star and the mesh on a 3-host testbed with a router, its hosts on drifting synthetic clocks, and on 100 simulated servers; keys of issue 26', async () => {
  const j = (await bench('mesh', ['--hosts', '3', '--rounds', '2', '--probes', '50', '--skew', '--servers', '100', '--sim-rounds', '1', '--drift-servers', '50', '--drift-rounds', '3'], 120_000)) as Record<string, any>;
  assert.equal(j.testbed.hosts, 3);
  // real probes against a known truth that drifts: every solved clock within its bound, far nearer than the rounds solved as if simultaneous
  assert.ok(Object.keys(j.testbed.skew).length === 3 && j.testbed.boundCoverage >= 0.99, JSON.stringify(j.testbed));
  assert.ok(j.testbed.meshP99ErrorNs < j.testbed.simultaneous.meshP99ErrorNs, JSON.stringify(j.testbed));
  for (const k of ['starP99ErrorNs', 'meshP99ErrorNs', 'starPairP99ErrorNs', 'meshPairP99ErrorNs']) assert.ok(Number.isFinite(j.testbed[k]), `${k}: ${JSON.stringify(j.testbed)}`);
  assert.ok(j.testbed.edgesPerRound >= 3 * 2, `every host probed its peers: ${j.testbed.edgesPerRound} edges`);
  assert.ok(j.simulated.meshP99ErrorNs < j.simulated.starP99ErrorNs && j.simulated.boundCoverage >= 0.99 && j.solve100Ms > 0, JSON.stringify(j.simulated));
  assert.ok(j.drifting.boundCoverage >= 0.99 && j.drifting.p99ErrorNs < j.drifting.simultaneousP99ErrorNs, JSON.stringify(j.drifting));
});
