/**
 * The syscall module's sampling on real syscalls (bpf/syscall.bpf.c, host/syscall.ts): every
 * call counted, each syscall's first calls on a CPU timed and then one in N at random weighted by
 * N (the histogram estimates every call's), a slow call that was not timed still caught,
 * measured to the kernel's tick, and the Prometheus metrics that carry it (checked by promtool).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { HostSession } from '../host/session.js';
import { SyscallProbe, TIME_FIRST, kernelTickNs } from '../host/syscall.js';
import type { HostEvent } from '../host/probe.js';
import { registerHostMetrics } from '../host/metrics.js';

const hostload = join(projectRoot, 'dist', 'test', 'hostload');

/**
 * Runs hostload ARGS on CPU 0 once `attach(pid)` has returned and pauseMs more have passed;
 * resolves with its last JSON line. (hostload's read of "go" may be seen too: it lasts at least
 * pauseMs.)
 */
async function run<T>(args: string[], attach: (pid: number) => T, pauseMs = 0): Promise<{ out: Record<string, number>; attached: T }> {
  const child = spawn('taskset', ['-c', '0', hostload, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, HOSTLOAD_WAIT: '1' } });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  const pid = await new Promise<number>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /"ready":(\d+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(Number(m[1]));
      }
    }, 10);
    child.once('exit', (c) => reject(new Error(`hostload ${args.join(' ')} exited ${c} before it was ready`)));
  });
  let attached: T;
  try {
    attached = attach(pid);
  } catch (e) {
    child.kill();
    throw e;
  }
  await new Promise((r) => setTimeout(r, pauseMs));
  child.stdin!.end('go\n');
  assert.equal(await exited, 0, `hostload ${args.join(' ')}`);
  return { out: JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>, attached };
}

test('every getppid call counted; the first on a CPU timed, then one in 32 weighted by 32: the histogram estimates every call', async () => {
  let session: HostSession | undefined;
  try {
    const { out } = await run(['syscalls', '1'], (pid) => (session = HostSession.open({ modules: ['syscall'], target: { pids: [pid] }, syscallTimeEvery: 32 })));
    const s = session!.snapshot();
    assert.equal(s.syscallTiming?.timedOneIn, 32);
    const g = s.syscall!.find((x) => x.name === 'getppid');
    assert.ok(g, JSON.stringify(s.syscall!.map((x) => x.name)));
    assert.equal(g.count, out.calls, 'every call counted, exactly');
    // pinned to one CPU: TIME_FIRST timed, then each of the rest with probability 1/32
    const rest = out.calls! - TIME_FIRST;
    assert.ok(rest > 100_000, `enough calls to sample: ${out.calls}`);
    const sd = (p: number, w: number) => w * Math.sqrt(rest * p * (1 - p));
    const timedExpected = TIME_FIRST + rest / 32;
    assert.ok(Math.abs(g.timed - timedExpected) < 6 * sd(1 / 32, 1), `timed ${g.timed}, expected ${timedExpected.toFixed(0)} ± ${(6 * sd(1 / 32, 1)).toFixed(0)}`);
    assert.ok(Math.abs(g.hist.count - out.calls!) < 6 * sd(1 / 32, 32), `estimated calls ${g.hist.count}, made ${out.calls} (± ${(6 * sd(1 / 32, 32)).toFixed(0)})`);
    assert.ok(g.hist.sumNs > 0 && g.hist.maxNs > 0 && g.hist.maxNs < 1e9);
  } finally {
    session?.close();
  }
});

test('one in 1: every call timed, the histogram is every call', async () => {
  let session: HostSession | undefined;
  try {
    const { out } = await run(['syscalls', '0.3'], (pid) => (session = HostSession.open({ modules: ['syscall'], target: { pids: [pid] }, syscallTimeEvery: 1 })));
    const g = session!.snapshot().syscall!.find((x) => x.name === 'getppid')!;
    assert.equal(g.count, out.calls);
    assert.equal(g.timed, out.calls);
    assert.equal(g.hist.count, out.calls);
  } finally {
    session?.close();
  }
});

test('a slow read that was not timed is still caught, measured to the tick', async (t) => {
  const tick = kernelTickNs();
  if (!tick) return t.skip('this kernel publishes no configuration (CONFIG_HZ): the module times every call and has no tick to measure with');
  let probe: SyscallProbe | undefined;
  const events: HostEvent[] = [];
  try {
    // nothing timed: no first calls, one in 2^20 after them
    await run(['slowread', '150', '3'], (pid) => (probe = SyscallProbe.open({ pids: [pid], tids: [], cgroups: [], cpus: [] }, { slowNs: 10_000_000, timeEvery: 1 << 20, timeFirst: 0 })), 400);
    probe!.drain((e) => events.push(e));
    const read = probe!.snapshot().find((x) => x.name === 'read')!;
    assert.ok(read.count >= 3 && read.timed === 0, JSON.stringify({ count: read.count, timed: read.timed }));
    // the three reads of the pipes (the read of "go", if seen, lasted 400 ms or more)
    const slow = events.filter((e) => e.detail === 'read' && e.delayNs < 350e6);
    assert.equal(slow.length, 3, JSON.stringify(events, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    for (const e of slow) {
      assert.equal(e.withinNs, tick, 'the delay is said to be to within a tick');
      assert.ok(Math.abs(e.delayNs - 150e6) <= 2 * tick + 20e6, `read measured ${e.delayNs / 1e6} ms to the tick (${tick / 1e6} ms), slept 150 ms`);
    }
    assert.ok(read.hist.maxNs >= 150e6 - 2 * tick, `max ${read.hist.maxNs}`);
  } finally {
    probe?.close();
  }
});

test('the Prometheus metrics: every call in syscalls_total, the weighted histogram consistent (+Inf bucket = count), promtool accepts the text', async () => {
  let session: HostSession | undefined;
  try {
    const { out } = await run(['syscalls', '0.5'], (pid) => (session = HostSession.open({ modules: ['syscall', 'sched'], target: { pids: [pid] } })));
    const r = new Registry();
    registerHostMetrics(r, () => session!.snapshot());
    const text = await r.metrics();
    const value = (re: RegExp) => Number(re.exec(text)?.[1]);
    assert.equal(value(/^latscope_host_syscalls_total\{syscall="getppid"\} (\d+)$/m), out.calls);
    const count = value(/^latscope_host_syscall_seconds_count\{syscall="getppid"\} ([\d.e+]+)$/m);
    assert.equal(value(/^latscope_host_syscall_seconds_bucket\{syscall="getppid",le="\+Inf"\} ([\d.e+]+)$/m), count);
    assert.ok(Math.abs(count - out.calls!) < 0.1 * out.calls!, `estimated ${count} calls, made ${out.calls}`);
    assert.match(text, /^latscope_host_untimed_total\{module="syscall"\} \d+$/m);
    assert.match(text, /^latscope_host_untimed_total\{module="sched"\} \d+$/m);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  } finally {
    session?.close();
  }
});
