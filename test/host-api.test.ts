/**
 * The library API used the way a user would, through the package's own name: attach a process,
 * start, read its context switches, latency spikes with their cause, per-thread scheduling with
 * jitter, NUMA placement, the report; stop. Cache and TLB-miss counters on a host without a PMU
 * throw UnsupportedError (checked against what /sys says), never numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { HostMonitor, UnsupportedError, hasHardwarePmu, type LatencySpike } from 'latscope';
import { projectRoot } from '../lib/paths.js';

const hostload = join(projectRoot, 'dist', 'test', 'hostload');
const CPU = cpus().length > 1 ? 1 : 0;

function spin(seconds: number): Promise<{ pid: number; kill: () => void }> {
  const child = spawn(hostload, ['spin', String(CPU), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ pid: Number(/"ready":(\d+)/.exec(d.toString())?.[1]), kill: () => child.kill() }));
    child.once('error', reject);
  });
}

test('HostMonitor: a process sharing its CPU with a hog: its preemptions, spikes with the task that took the CPU, thread jitter, the report', async () => {
  const app = await spin(8);
  const hog = await spin(8);
  const monitor = new HostMonitor({ cpus: [CPU], modules: ['sched', 'irq', 'syscall'] });
  const live: LatencySpike[] = [];
  monitor.on('spike', (s) => live.push(s));
  try {
    monitor.attachProcess(app.pid, { trackNuma: true });
    await monitor.start();
    await new Promise((r) => setTimeout(r, 2500));

    const switches = monitor.getContextSwitches({ minDurationUs: 100 });
    assert.ok(switches.length > 0, 'context switches of the app');
    assert.ok(switches.every((c) => c.pid === app.pid && c.cpu === CPU && c.by.pid !== app.pid), JSON.stringify(switches[0], (_, v) => (typeof v === 'bigint' ? String(v) : v)));
    assert.ok(switches.some((c) => c.by.comm === 'hostload' && c.by.pid === hog.pid), 'the hog took the CPU');
    assert.ok(switches.every((c) => (c.durationUs ?? 0) >= 100));

    const spikes = monitor.detectLatencySpikes({ thresholdUs: 500, includeCauseAnalysis: true });
    assert.ok(spikes.length > 0);
    assert.ok(spikes[0]!.durationUs >= spikes.at(-1)!.durationUs, 'longest first');
    const withCause = spikes.find((s) => s.kind === 'runq' && s.causes?.preemptedBy);
    assert.ok(withCause, 'a spike names the task that preempted the app');
    assert.ok(Array.isArray(withCause.causes!.irqs) && Array.isArray(withCause.causes!.syscalls));
    assert.ok(live.length > 0 && live.every((s) => s.pid === app.pid), 'spikes are also emitted as they happen');

    const threads = monitor.getThreadSchedulingInfo(app.pid);
    assert.equal(threads.length, 1);
    const t = threads[0]!;
    assert.equal(t.tid, app.pid);
    assert.equal(t.policy, 'SCHED_OTHER');
    assert.deepEqual(t.affinity, [CPU]);
    assert.ok(t.involuntarySwitches > 0 && t.cpuTimeUs > 0);
    assert.ok(t.runq && t.runq.count > 0 && (t.schedulingJitterUs ?? -1) >= 0, JSON.stringify(t));

    const report = monitor.report();
    assert.equal(report.summary.exitCode, 2, 'preemptions of the watched app are a violation');
    assert.ok(report.isolation!.preemptions > 0);

    if (existsSync('/sys/devices/system/node/node0')) {
      const numa = monitor.getNumaStats(app.pid);
      assert.ok(numa.nodes.length >= 1 && numa.nodes.reduce((a, n) => a + n.pages, 0) > 0, JSON.stringify(numa));
      assert.ok(numa.localShare > 0 && numa.localShare <= 1);
    } else assert.throws(() => monitor.getNumaStats(app.pid), (e: unknown) => e instanceof UnsupportedError && e.code === 'NO_NUMA');
  } finally {
    monitor.stop();
    app.kill();
    hog.kill();
  }
});

test('HostMonitor: cache and TLB-miss counters without a hardware PMU throw UnsupportedError, also from start() when asked for', async () => {
  const m = new HostMonitor();
  if (hasHardwarePmu()) {
    assert.throws(() => m.getCacheMetrics(), (e: unknown) => e instanceof UnsupportedError && e.code === 'NOT_IMPLEMENTED');
    return;
  }
  assert.equal(existsSync('/sys/bus/event_source/devices/cpu'), false);
  assert.throws(() => m.getCacheMetrics(), (e: unknown) => e instanceof UnsupportedError && e.code === 'NO_PMU' && /hardware PMU/.test(e.message));
  m.attachProcess(process.pid, { trackCache: true });
  await assert.rejects(m.start(), (e: unknown) => e instanceof UnsupportedError && e.code === 'NO_PMU');
  assert.throws(() => m.getContextSwitches(), /start\(\) it first/, 'nothing was started');
  assert.throws(() => new HostMonitor().attachProcess(999_999_999), /no such process/);
});
