/**
 * The kernel-side benchmarks do not rot: bench/ringbuf, bench/graph, bench/timesync and
 * bench/host-overhead run in their smallest form and print both of their sides; bench/overload
 * keeps its bounds and its counts balance; bench/mesh runs on a small testbed and simulation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { bench } from './helpers/bench.js';

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
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'bench', 'host-overhead.js'), '--rounds', '3', '--seconds', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const limit = setTimeout(() => reject(new Error(`never reached bpftrace's turn: ${err}`)), 120_000);
      child.stderr!.on('data', (d) => {
        err += d;
        if (/round 1 of 3: bpftrace/.test(err)) (clearTimeout(limit), resolve());
      });
    });
    await new Promise((r) => setTimeout(r, 2500)); // bpftrace attached, a workload running
    assert.equal(spawnSync('pgrep', ['-x', 'bpftrace']).status, 0, 'bpftrace runs');
    child.kill('SIGTERM');
    const limit = new Promise<string>((r) => setTimeout(() => r('still running 30 s after SIGTERM'), 30_000).unref());
    assert.equal(await Promise.race([exited, limit]), 2, err);
  } finally {
    child.kill('SIGKILL');
  }
  assert.match(err, /stopped \(SIGTERM|killed \(SIGKILL/);
  for (const p of ['bpftrace', 'tcpbench', 'hostload']) assert.equal(spawnSync('pgrep', ['-x', p]).status, 1, `no ${p} left`);
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), /\b(ls_|floor_)\w+|name (sys_enter|sys_exit|sched_switch|sched_wakeup)\b/, 'no program of the benchmark left');
});

test('bench/overload in smoke size: 5 s of every segment, ingest stopped: bounds kept, produced − stored = dropped, each record stored once', async () => {
  const j = (await bench('overload', ['--seconds', '5'], 150_000)) as Record<string, any>;
  assert.ok(j.observers.length === 2 && j.observers.every((o: { produced: number }) => o.produced > 0), JSON.stringify(j.observers));
  assert.deepEqual(j.ok, { observerMemory: true, redisMemory: true, stop: true, dropsBalance: true, exactlyOnce: true });
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
