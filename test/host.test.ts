/**
 * `latscope host` against conditions caused on purpose, each seen and reported with the right
 * exit code: a CPU hog on a watched CPU, a page-fault storm, a slow syscall, a burst of soft IRQs
 * from traffic between test hosts, and an IRQ landing on a CPU that should be isolated. Real
 * kernel hooks, real workloads (test/tools/hostload.c), the command as a user runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, fsyncSync, writeSync, readFileSync, rmSync } from 'node:fs';
import { cpus as osCpus } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { testbedUp, testbedDown } from '../local/testbed.js';
import type { HostReport } from '../host/report.js';
import { schemaProblems } from './helpers/schema.js';

const cli = join(projectRoot, 'dist', 'cli.js');
const hostload = join(projectRoot, 'dist', 'test', 'hostload');
const traffic = join(projectRoot, 'dist', 'local', 'traffic.js');
const CPU = osCpus().length > 1 ? 1 : 0;

/** Runs `latscope host ARGS --json`; resolves with its exit code and report. */
function host(args: string[]): { done: Promise<{ code: number; report: HostReport; stderr: string }>; child: ChildProcess } {
  // progress left on: stderr is a pipe here, so none may be written (no \r in logs)
  const child = spawn(process.execPath, [cli, 'host', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number; report: HostReport; stderr: string }>((resolve, reject) =>
    child.on('exit', (code) => {
      try {
        const report = JSON.parse(out) as HostReport;
        const problems = schemaProblems('host-report.schema.json', report);
        if (problems.length) return reject(new Error(`the report does not match docs/host-report.schema.json: ${problems.slice(0, 10).join('; ')}`));
        if (err.includes('\r')) return reject(new Error(`a progress line went to a pipe: ${JSON.stringify(err.slice(0, 200))}`));
        resolve({ code: code ?? -1, report, stderr: err });
      } catch {
        reject(new Error(`latscope host exited ${code} without a JSON report:\n${out}\n${err}`));
      }
    }),
  );
  return { done, child };
}

/** Starts hostload MODE ARGS; resolves with the child and its pid once it is ready (waiting for "go" with wait). */
async function load(args: string[], wait = false): Promise<{ child: ChildProcess; pid: number; go: () => void; exited: Promise<number> }> {
  const child = spawn(hostload, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...(wait ? { HOSTLOAD_WAIT: '1' } : {}) } });
  const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(/"ready":(\d+)/.exec(d.toString())?.[1])));
    child.once('exit', (c) => reject(new Error(`hostload ${args.join(' ')} exited ${c}`)));
  });
  return { child, pid, exited, go: () => child.stdin!.end('go\n') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Until the probes are attached (the command prints nothing before its report: give it time). */
const ATTACH_MS = 1500;

test('a CPU hog on a watched CPU: the watched task is preempted and waits in the run queue, named; exit 2', async () => {
  const victim = await load(['spin', String(CPU), '6']);
  const hog = await load(['spin', String(CPU), '6']);
  try {
    const { code, report } = await host(['--pid', String(victim.pid), '--cpus', String(CPU), '--modules', 'sched', '--duration', '3']).done;
    assert.equal(code, 2, JSON.stringify(report.isolation?.findings));
    const iso = report.isolation!;
    assert.ok(iso.preemptions > 0, `preemptions ${iso.preemptions}`);
    assert.ok((iso.runq.p99999Ns ?? 0) > 1_000_000, `run-queue p99.999 ${iso.runq.p99999Ns} ns: two busy tasks on one CPU wait for each other's slices`);
    assert.match(iso.findings[0]!.text, /Context switches detected: \d+ preemptions/);
    assert.equal(iso.findings[0]!.status, 'fail');
    const worst = iso.worst.find((e) => e.kind === 'runq' && e.pid === victim.pid);
    assert.ok(worst, 'the watched task\'s worst wait is listed');
    assert.ok(iso.worst.some((e) => e.kind === 'preempt' || /preempted/.test(e.cause ?? '')), JSON.stringify(iso.worst.slice(0, 3)));
  } finally {
    victim.child.kill();
    hog.child.kill();
  }
});

test('a page-fault storm (fresh memory touched page by page): the faults of the watched process counted, a warning, exit 1', async () => {
  const storm = await load(['faults', '64', '20'], true);
  try {
    const run = host(['--pid', String(storm.pid), '--modules', 'memory', '--duration', '4']);
    await sleep(ATTACH_MS);
    storm.go();
    assert.equal(await storm.exited, 0);
    const { code, report } = await run.done;
    const pages = (64 << 20) / 4096;
    assert.ok(report.memory!.faults.minor >= pages * 20, `minor faults ${report.memory!.faults.minor}, at least ${pages * 20} expected`);
    assert.ok(report.memory!.faults.seenByProbe >= pages * 20 * 0.9, `faults the probe saw: ${report.memory!.faults.seenByProbe}`);
    assert.equal(report.memory!.faults.major, 0);
    assert.ok(report.memory!.findings.some((f) => f.status === 'warn' && /Minor faults: \d+/.test(f.text)));
    assert.equal(code, 1);
  } finally {
    storm.child.kill();
  }
});

test('a slow syscall (a read from a pipe whose writer waits 150 ms): named, its time measured, a warning', async () => {
  const slow = await load(['slowread', '150', '4'], true);
  try {
    const run = host(['--pid', String(slow.pid), '--modules', 'syscall', '--duration', '3']);
    await sleep(ATTACH_MS);
    slow.go();
    assert.equal(await slow.exited, 0);
    const { code, report } = await run.done;
    const read = report.syscalls!.top.find((s) => s.name === 'read');
    assert.ok(read, JSON.stringify(report.syscalls!.top.map((s) => s.name)));
    assert.ok(read.maxNs >= 140_000_000 && read.maxNs < 1_000_000_000, `read max ${read.maxNs} ns`);
    assert.ok(read.count >= 4);
    assert.ok(report.syscalls!.findings.some((f) => f.status === 'warn' && /Slow syscalls: read \(max/.test(f.text)), JSON.stringify(report.syscalls!.findings));
    assert.ok(report.syscalls!.worst.some((e) => e.detail === 'read' && e.delayNs >= 140_000_000), 'the slow calls left the kernel as events');
    assert.equal(code, 1);
  } finally {
    slow.child.kill();
  }
});

test('a burst of soft IRQs from traffic between two test hosts: net_rx time counted per CPU', async () => {
  const tb = await testbedUp({ id: 'thost', hosts: 2 });
  const kids: ChildProcess[] = [];
  try {
    const [h1, h2] = tb.hosts;
    const run = host(['--modules', 'irq', '--duration', '4']);
    await sleep(ATTACH_MS);
    kids.push(spawn('ip', ['netns', 'exec', h2!.netns, process.execPath, traffic, 'tcp-sink', '9300', '1'], { stdio: 'ignore' }));
    await sleep(300);
    kids.push(spawn('ip', ['netns', 'exec', h1!.netns, process.execPath, traffic, 'tcp-flood', h2!.address, '9300', '2'], { stdio: 'ignore' }));
    const { code, report } = await run.done;
    assert.ok(code === 0 || code === 1, `exit ${code}`);
    const netRx = report.irq!.soft.find((s) => s.vector === 'net_rx');
    assert.ok(netRx && netRx.count > 1000, `net_rx soft IRQs: ${JSON.stringify(netRx)}`);
    assert.ok(netRx.totalNs > 0 && netRx.maxNs > 0);
  } finally {
    for (const k of kids) k.kill('SIGKILL');
    await testbedDown(tb.id);
  }
});

test('an IRQ landing on a CPU that should be isolated: named with its device and the command that would move it', async (t) => {
  // the disk's IRQ fires on block I/O; find the CPU it lands on
  const before = interruptsByIrq();
  const file = join(projectRoot, '.work', `host-irq-test-${process.pid}`);
  const io = () => {
    const fd = openSync(file, 'w');
    for (let i = 0; i < 50; i++) {
      writeSync(fd, Buffer.alloc(64 << 10, i));
      fsyncSync(fd);
    }
    closeSync(fd);
  };
  io();
  const after = interruptsByIrq();
  let target: { irq: number; cpu: number; name: string } | undefined;
  for (const [irq, a] of after) {
    const b = before.get(irq);
    if (!b) continue;
    const cpu = a.counts.findIndex((n, c) => n - (b.counts[c] ?? 0) >= 20);
    if (cpu >= 0) target = { irq, cpu, name: a.name };
  }
  if (!target) {
    rmSync(file, { force: true });
    t.skip('no device IRQ fired 20 times during 50 synced writes on this machine: nothing to land on an isolated CPU');
    return;
  }
  try {
    const run = host(['--cpus', String(target.cpu), '--modules', 'irq', '--duration', '3']);
    await sleep(ATTACH_MS);
    io();
    const { code, report } = await run.done;
    const f = report.irq!.findings.find((x) => /IRQs on isolated CPUs/.test(x.text));
    assert.ok(f, JSON.stringify(report.irq!.findings));
    assert.equal(f.status, 'warn');
    assert.match(f.fix ?? '', new RegExp(`> /proc/irq/${target.irq}/smp_affinity`));
    const h = report.irq!.hard.find((x) => x.irq === target!.irq);
    assert.ok(h && h.onWatchedCpus > 0 && h.name === target.name, JSON.stringify(h));
    assert.ok(code >= 1);
  } finally {
    rmSync(file, { force: true });
  }
});

test('bad input: an unknown module, a bad CPU list, a dead pid, a bad threshold; exit 3 with the reason, nothing attached', async () => {
  for (const [args, words] of [
    [['--modules', 'sched,gpu'], /"gpu" is not a module/],
    [['--cpus', '3-1'], /runs backwards/],
    [['--pid', '999999999'], /no such process/],
    [['--threshold', 'runq_fail_us=-4'], /at least 0/],
    [['--threshold', 'speed=1'], /NAME one of/],
  ] as const) {
    const r = spawn(process.execPath, [cli, 'host', '--duration', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    r.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number>((res) => r.on('exit', (c) => res(c ?? -1)));
    assert.ok(code === 3 || code === 1, `${args.join(' ')}: exit ${code}`);
    assert.match(err, words);
  }
});

function interruptsByIrq(): Map<number, { name: string; counts: number[] }> {
  const lines = readFileSync('/proc/interrupts', 'utf8').split('\n');
  const n = lines[0]!.trim().split(/\s+/).length;
  const out = new Map<number, { name: string; counts: number[] }>();
  for (const l of lines.slice(1)) {
    const m = /^\s*(\d+):\s*(.*)$/.exec(l);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/);
    out.set(Number(m[1]), { counts: f.slice(0, n).map(Number), name: f.at(-1) ?? '' });
  }
  return out;
}
