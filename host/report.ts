/**
 * The verdicts of `latscope host`: from a session's statistics and outliers, each section
 * (isolation, interrupts, memory, syscalls, block I/O, kernel baseline) gets findings that pass,
 * warn or fail against thresholds, with the figures behind them and the fix where there is one;
 * the summary gives the exit code (0 pass, 1 warnings only, 2 violations). The JSON shape is
 * HostReport (docs/host-report.schema.json); text() draws the boxed report.
 */
import { hostname, release } from 'node:os';
import { OFF_REASONS, SOFTIRQ_NAMES, type HostModuleName } from '../protocol/host.js';
import { baselineChecks, compactCpus, type BaselineCheck } from './baseline.js';
import { emptyHistogram, mergeHist, percentiles, type Percentiles } from './hist.js';
import { affinityMask } from './irq.js';
import type { HostEvent } from './probe.js';
import type { HostSession, HostSnapshot } from './session.js';

/** Where a finding turns into a warning or a violation. Units in the names. */
export interface Thresholds {
  /** Run-queue latency p99.999 on the watched CPUs: warn above, fail above. */
  runq_warn_us: number;
  runq_fail_us: number;
  /** Watched tasks preempted by another task on a watched CPU: fail above. */
  preemptions_max: number;
  /** Migrations of the watched tasks: warn above. */
  migrations_max: number;
  /** Hard IRQs that ran on a watched CPU (isolation asked for): warn above. */
  irqs_on_isolated_max: number;
  /** The longest hard IRQ handler: warn above. */
  hardirq_warn_us: number;
  /** Soft IRQ time on a watched CPU, as a share of the run: warn above. */
  softirq_share_warn: number;
  /** Major faults (watched processes; the whole host when none): fail above. */
  major_faults_max: number;
  /** Minor faults of the watched processes: warn above (with none watched: per second of the whole host). */
  minor_faults_max: number;
  host_minor_faults_per_s_warn: number;
  /** Remote TLB shootdowns: warn above. */
  tlb_shootdowns_max: number;
  /** A compaction or reclaim stall: warn above this many. */
  memory_stalls_max: number;
  /** A syscall that does not wait by design and took longer than this: warn. */
  syscall_slow_ms: number;
  /** Syscall error share of a syscall with at least 100 calls: warn above. */
  syscall_error_share_warn: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  runq_warn_us: 100,
  runq_fail_us: 1000,
  preemptions_max: 0,
  migrations_max: 0,
  irqs_on_isolated_max: 0,
  hardirq_warn_us: 100,
  softirq_share_warn: 0.05,
  major_faults_max: 0,
  minor_faults_max: 0,
  host_minor_faults_per_s_warn: 100_000,
  tlb_shootdowns_max: 0,
  memory_stalls_max: 0,
  syscall_slow_ms: 10,
  syscall_error_share_warn: 0.5,
};

/** Syscalls whose purpose is to wait: a long one is the application's choice, not a stall. */
export const WAITING_SYSCALLS = new Set([
  'nanosleep', 'clock_nanosleep', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll', 'select', 'pselect6', 'futex', 'futex_waitv', 'wait4', 'waitid',
  'pause', 'rt_sigsuspend', 'rt_sigtimedwait', 'accept', 'accept4', 'io_getevents', 'io_pgetevents', 'io_uring_enter', 'msgrcv', 'semtimedop', 'mq_timedreceive', 'sigtimedwait',
]);

export type Status = 'pass' | 'warn' | 'fail' | 'info';

export interface Finding {
  status: Status;
  text: string;
  fix?: string;
}

/** An event as the report shows it (times in ns, the host's CLOCK_MONOTONIC as a string). */
export interface ReportEvent {
  kind: string;
  atNs: string;
  /** Wall-clock time of the event (ISO 8601). */
  at: string;
  delayNs: number;
  cpu: number;
  pid: number;
  comm: string;
  cause?: string;
  detail?: string;
  /** delayNs is to within this either way (a syscall not timed with the clock: one kernel tick). */
  withinNs?: number;
}

export interface HostReport {
  version: 1;
  host: string;
  kernel: string;
  startedAt: string;
  durationS: number;
  target: { pids: number[]; cpus: number[]; modules: HostModuleName[] };
  thresholds: Thresholds;
  /** Modules that could not run on this kernel, and why. */
  unavailable: { module: HostModuleName; reason: string }[];
  isolation?: {
    findings: Finding[];
    runq: Percentiles;
    contextSwitches: number;
    involuntary: number;
    preemptions: number;
    migrations: number;
    offcpu: Record<string, Percentiles>;
    worst: ReportEvent[];
  };
  irq?: {
    findings: Finding[];
    hard: { irq: number; name: string; count: number; maxNs: number; p99Ns: number | null; cpus: number[]; onWatchedCpus: number; affinity: string }[];
    soft: { vector: string; count: number; totalNs: number; maxNs: number; p99Ns: number | null; watchedShare: number | null }[];
    worst: ReportEvent[];
  };
  memory?: {
    findings: Finding[];
    faults: { minor: number; major: number; seenByProbe: number };
    tlb: Record<string, number>;
    stalls: Record<string, Percentiles>;
    worst: ReportEvent[];
  };
  syscalls?: {
    findings: Finding[];
    /** mean and p99 (and the histograms sent on) come from one call in this many, timed at random; counts and errors are exact. */
    timedOneIn: number;
    /** Calls counted but not timed: their slot was taken by another thread's call before they ended. */
    displaced: number;
    top: { name: string; nr: number; count: number; errors: number; meanNs: number | null; p99Ns: number | null; maxNs: number }[];
    worst: ReportEvent[];
  };
  block?: { findings: Finding[]; devices: { device: string; write: boolean; stats: Percentiles }[] };
  baseline: { findings: Finding[]; checks: BaselineCheck[] };
  /** Outliers counted per kind, and those lost to a full ring per module. */
  events: { counts: Record<string, number>; ringDrops: Record<string, number> };
  summary: { violations: number; warnings: number; exitCode: 0 | 1 | 2 };
}

const us = (ns: number | null | undefined) => (ns === null || ns === undefined ? '-' : ns >= 10_000 ? `${Math.round(ns / 1000).toLocaleString('en-US')} µs` : `${Math.round(ns).toLocaleString('en-US')} ns`);

/** Converts the host's monotonic ns to wall time (both read now). */
function wallClock(): (ns: bigint) => string {
  const monoNow = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const wallNow = Date.now();
  return (ns) => new Date(wallNow - Number(monoNow - ns) / 1e6).toISOString();
}

/** The preemption that began a wait in the run queue, by thread and start time. */
type Preemptions = Map<string, HostEvent>;
const preemptKey = (pid: number, tsNs: bigint) => `${pid}@${tsNs / 1000n}`;

function preemptions(events: readonly HostEvent[]): Preemptions {
  return new Map(events.filter((e) => e.kind === 'preempt').map((e) => [preemptKey(e.pid, e.tsNs), e]));
}

function reportEvent(e: HostEvent, toWall: (ns: bigint) => string, pre: Preemptions = new Map()): ReportEvent {
  const by = e.kind === 'runq' ? pre.get(preemptKey(e.pid, e.tsNs - BigInt(e.delayNs))) : undefined;
  const cause =
    e.kind === 'runq' ? (by ? `${by.other?.comm}/${by.other?.pid} preempted ${e.comm}/${e.pid}` : e.other?.pid === 0 ? 'woke on an idle CPU (wake-up latency)' : `ran after ${e.other?.comm}/${e.other?.pid}`) : e.kind === 'preempt' ? `${e.other?.comm}/${e.other?.pid} preempted ${e.comm}/${e.pid}` : undefined;
  return { kind: e.kind, atNs: e.tsNs.toString(), at: toWall(e.tsNs), delayNs: e.delayNs, cpu: e.cpu, pid: e.pid, comm: e.comm, ...(cause ? { cause } : {}), ...(e.detail ? { detail: e.detail } : {}), ...(e.withinNs ? { withinNs: e.withinNs } : {}) };
}

/** Builds the report from what the session saw. */
export function buildReport(session: HostSession, snap: HostSnapshot, durationS: number, t: Thresholds = DEFAULT_THRESHOLDS): HostReport {
  const toWall = wallClock();
  const pre = preemptions([...session.recent(), ...session.worstEvents('preempt')]);
  const worst = (...kinds: string[]) => kinds.flatMap((k) => session.worstEvents(k)).sort((a, b) => b.delayNs - a.delayNs).slice(0, 10).map((e) => reportEvent(e, toWall, pre));
  const cpus = session.target.cpus, pids = session.target.pids;
  const watchedCpu = (c: number) => !cpus.length || cpus.includes(c);
  const r: HostReport = {
    version: 1, host: hostname(), kernel: release(), startedAt: new Date(session.startedAtMs).toISOString(), durationS: +durationS.toFixed(3),
    target: { pids, cpus, modules: [...session.probes.keys()] }, thresholds: t, unavailable: session.unavailable,
    baseline: { findings: [], checks: baselineChecks(cpus) },
    events: { counts: Object.fromEntries(session.eventCounts), ringDrops: session.ringDrops() },
    summary: { violations: 0, warnings: 0, exitCode: 0 },
  };

  if (snap.sched) {
    const s = snap.sched;
    const w = s.cpus.filter((c) => watchedCpu(c.cpu));
    const sum = (f: (c: (typeof w)[number]) => number) => w.reduce((a, c) => a + f(c), 0);
    const runq = percentiles(s.runq);
    const preemptions = sum((c) => c.watchedPreempted);
    const migrations = s.cpus.reduce((a, c) => a + c.migrationsIn, 0);
    const f: Finding[] = [];
    const where = cpus.length ? `on CPUs ${compactCpus(cpus)}` : 'on every CPU';
    const worstRunq = session.worstEvents('runq')[0];
    if (pids.length) {
      const worstPreempt = session.worstEvents('preempt')[0] ?? session.recent().find((e) => e.kind === 'preempt');
      f.push(
        preemptions > t.preemptions_max
          ? { status: 'fail', text: `Context switches detected: ${preemptions} preemptions of the watched tasks ${where}${worstPreempt ? `; e.g. ${worstPreempt.other?.comm}/${worstPreempt.other?.pid} preempted ${worstPreempt.comm}/${worstPreempt.pid} on CPU ${worstPreempt.cpu}` : ''}`, fix: cpus.length ? `keep other tasks off CPUs ${compactCpus(cpus)} (isolcpus, cpusets, taskset)` : 'pin the watched tasks to isolated CPUs' }
          : { status: 'pass', text: `No preemption of the watched tasks ${where}` },
      );
      if (migrations > t.migrations_max) f.push({ status: 'warn', text: `Migrations of the watched tasks: ${migrations}`, fix: 'pin each thread to one CPU (taskset -c, sched_setaffinity)' });
    }
    const p99999 = runq.p99999Ns ?? 0;
    const runqText = `Run-queue latency ${where}: p99.999 ${us(runq.p99999Ns)}${worstRunq ? `; worst ${us(worstRunq.delayNs)} at ${toWall(worstRunq.tsNs).slice(11, 23)}: ${worstRunq.comm}/${worstRunq.pid} ${reportEvent(worstRunq, toWall, pre).cause}` : ''}`;
    f.push({ status: p99999 > t.runq_fail_us * 1000 ? 'fail' : p99999 > t.runq_warn_us * 1000 ? 'warn' : 'pass', text: runqText });
    if (s.displaced) f.push({ status: 'info', text: `${s.displaced} waits in the run queue not measured: another task took the waiting task's slot` });
    const offcpu = Object.fromEntries(OFF_REASONS.map((k) => [k, percentiles(s.offcpu[k])]));
    r.isolation = { findings: f, runq, contextSwitches: sum((c) => c.switches), involuntary: sum((c) => c.involuntary), preemptions, migrations, offcpu, worst: worst('runq', 'preempt', 'offcpu', 'migrate') };
  }

  if (snap.irq) {
    const f: Finding[] = [];
    const hard = snap.irq.hard.map((h) => {
      const onWatched = cpus.length ? [...h.byCpu].filter(([c]) => cpus.includes(c)).reduce((a, [, x]) => a + x.count, 0) : 0;
      return { irq: h.irq, name: h.name, count: h.total.count, maxNs: h.total.maxNs, p99Ns: percentiles(h.total).p99Ns, cpus: [...h.byCpu.keys()].sort((a, b) => a - b), onWatchedCpus: onWatched, affinity: compactCpus(h.affinity) };
    });
    const runNs = durationS * 1e9;
    const byVector = new Map<string, { count: number; totalNs: number; maxNs: number; hist: ReturnType<typeof emptyHistogram>; watchedNs: number }>();
    for (const s of snap.irq.soft) {
      const v = byVector.get(s.vector) ?? { count: 0, totalNs: 0, maxNs: 0, hist: emptyHistogram(), watchedNs: 0 };
      v.count += s.hist.count;
      v.totalNs += s.hist.sumNs;
      v.maxNs = Math.max(v.maxNs, s.hist.maxNs);
      v.hist = mergeHist(v.hist, s.hist);
      if (watchedCpu(s.cpu)) v.watchedNs += s.hist.sumNs;
      byVector.set(s.vector, v);
    }
    const nWatched = cpus.length || Math.max(1, snap.sched?.cpus.length ?? 1);
    const soft = SOFTIRQ_NAMES.filter((n) => byVector.has(n)).map((n) => {
      const v = byVector.get(n)!;
      return { vector: n, count: v.count, totalNs: v.totalNs, maxNs: v.maxNs, p99Ns: percentiles(v.hist).p99Ns, watchedShare: runNs > 0 ? v.watchedNs / (runNs * nWatched) : null };
    });
    if (cpus.length) {
      const landed = hard.filter((h) => h.onWatchedCpus > 0);
      const n = landed.reduce((a, h) => a + h.onWatchedCpus, 0);
      const others = Array.from({ length: Math.max(...(snap.sched?.cpus.map((c) => c.cpu + 1) ?? [0]), ...cpus.map((c) => c + 1)) }, (_, i) => i).filter((c) => !cpus.includes(c));
      if (n > t.irqs_on_isolated_max) {
        const top = landed.sort((a, b) => b.onWatchedCpus - a.onWatchedCpus)[0]!;
        f.push({
          status: 'warn',
          text: `IRQs on isolated CPUs: ${n} events; device ${top.name || `IRQ ${top.irq}`} (IRQ ${top.irq}, affinity ${top.affinity || '?'}), max duration ${us(top.maxNs)}`,
          fix: `${landed.map((h) => `echo ${affinityMask(others.length ? others : [0])} > /proc/irq/${h.irq}/smp_affinity`).join('; ')} (if the kernel refuses, it manages that per-queue IRQ itself: give the device fewer queues, or no queue on CPUs ${compactCpus(cpus)})`,
        });
      } else f.push({ status: 'pass', text: `No hard IRQ on CPUs ${compactCpus(cpus)}` });
      const reachable = hard.filter((h) => h.onWatchedCpus === 0 && h.affinity && cpus.some((c) => expand(h.affinity).includes(c)));
      if (reachable.length) f.push({ status: 'info', text: `${reachable.length} more IRQs may land on CPUs ${compactCpus(cpus)} (smp_affinity): ${reachable.slice(0, 5).map((h) => h.irq).join(', ')}${reachable.length > 5 ? ', …' : ''}` });
      for (const s of soft.filter((x) => (x.watchedShare ?? 0) > t.softirq_share_warn))
        f.push({ status: 'warn', text: `Soft IRQ ${s.vector} took ${((s.watchedShare ?? 0) * 100).toFixed(1)}% of CPUs ${compactCpus(cpus)}` });
    }
    const maxHard = hard.reduce((a, h) => (h.maxNs > a.maxNs ? h : a), { maxNs: 0, irq: -1, name: '' } as { maxNs: number; irq: number; name: string });
    if (maxHard.maxNs > t.hardirq_warn_us * 1000) f.push({ status: 'warn', text: `A hard IRQ handler ran ${us(maxHard.maxNs)}: IRQ ${maxHard.irq} ${maxHard.name}` });
    const busiest = soft.slice().sort((a, b) => b.totalNs - a.totalNs)[0];
    if (busiest) f.push({ status: 'info', text: `Soft IRQs: ${soft.reduce((a, s) => a + s.count, 0)} runs, most time in ${busiest.vector} (${us(busiest.totalNs)}, max ${us(busiest.maxNs)})` });
    if (!f.length) f.push({ status: 'pass', text: 'No IRQ finding' });
    r.irq = { findings: f, hard, soft, worst: worst('hardirq', 'softirq') };
  }

  if (snap.memory) {
    const m = snap.memory;
    const f: Finding[] = [];
    const whose = pids.length ? 'of the watched processes' : 'on this host';
    f.push(m.faults.major > t.major_faults_max ? { status: pids.length ? 'fail' : 'warn', text: `Major page faults ${whose}: ${m.faults.major}`, fix: 'lock the memory (mlockall) and pre-fault it at start' } : { status: 'pass', text: `No major page faults ${whose}` });
    // a remote shootdown counts on the CPU it interrupted: on the watched CPUs, it is jitter there
    const shootdowns = m.tlb.remote_shootdown ?? 0;
    const minorBad = pids.length ? m.faults.minor > t.minor_faults_max : m.faults.minor / Math.max(durationS, 1e-3) > t.host_minor_faults_per_s_warn;
    f.push(
      minorBad || (cpus.length > 0 && shootdowns > t.tlb_shootdowns_max)
        ? { status: 'warn', text: `Minor faults: ${m.faults.minor} | TLB shootdowns: ${shootdowns}`, fix: 'pre-fault and lock memory at start (mlockall(MCL_CURRENT|MCL_FUTURE), MAP_POPULATE); avoid munmap/mprotect in the hot path' }
        : { status: 'pass', text: `Minor faults: ${m.faults.minor} | TLB shootdowns: ${shootdowns}` },
    );
    const stalls = Object.fromEntries(Object.entries(m.stalls).map(([k, h]) => [k, percentiles(h)]));
    const nStalls = Object.values(m.stalls).reduce((a, h) => a + h.count, 0);
    if (nStalls > t.memory_stalls_max) f.push({ status: 'warn', text: `Memory stalls: ${Object.entries(m.stalls).filter(([, h]) => h.count).map(([k, h]) => `${h.count} in direct ${k} (max ${us(h.maxNs)})`).join(', ')}`, fix: 'keep free memory up (vm.min_free_kbytes), avoid THP compaction (transparent_hugepage/defrag: defer or never)' });
    r.memory = { findings: f, faults: { minor: m.faults.minor, major: m.faults.major, seenByProbe: m.faultsUser + m.faultsKernel }, tlb: m.tlb, stalls, worst: worst('compaction', 'reclaim') };
  }

  if (snap.syscall) {
    const f: Finding[] = [];
    const top = snap.syscall.slice(0, 15).map((s) => ({ name: s.name, nr: s.nr, count: s.count, errors: s.errors, meanNs: s.hist.count ? s.hist.sumNs / s.hist.count : null, p99Ns: percentiles(s.hist).p99Ns, maxNs: s.hist.maxNs }));
    const slow = snap.syscall.filter((s) => s.hist.maxNs > t.syscall_slow_ms * 1e6 && !WAITING_SYSCALLS.has(s.name)).sort((a, b) => b.hist.maxNs - a.hist.maxNs);
    if (slow.length) f.push({ status: 'warn', text: `Slow syscalls: ${slow.slice(0, 5).map((s) => `${s.name} (max ${us(s.hist.maxNs)}, ${s.count} calls)`).join(', ')}` });
    const erring = snap.syscall.filter((s) => s.count >= 100 && !WAITING_SYSCALLS.has(s.name) && s.errors / s.count > t.syscall_error_share_warn);
    if (erring.length) f.push({ status: 'warn', text: `Syscalls failing most of the time: ${erring.slice(0, 5).map((s) => `${s.name} ${((100 * s.errors) / s.count).toFixed(0)}% of ${s.count}`).join(', ')}` });
    const total = snap.syscall.reduce((a, s) => a + s.count, 0);
    if (!f.length) f.push({ status: 'pass', text: `${total} syscalls, none slower than ${t.syscall_slow_ms} ms but those that wait by design` });
    const timing = snap.syscallTiming ?? { timedOneIn: 1, displaced: 0 };
    if (timing.displaced) f.push({ status: 'info', text: `${timing.displaced} calls counted but not timed: another thread's call took their slot before they ended` });
    r.syscalls = { findings: f, timedOneIn: timing.timedOneIn, displaced: timing.displaced, top, worst: worst('syscall') };
  }

  if (snap.block) r.block = { findings: [{ status: 'info', text: `${snap.block.reduce((a, d) => a + d.hist.count, 0)} block requests` }], devices: snap.block.map((d) => ({ device: d.device, write: d.write, stats: percentiles(d.hist) })) };

  r.baseline.findings = r.baseline.checks.map((c) => ({ status: c.status, text: `${c.check}: ${c.value}`, ...(c.fix ? { fix: c.fix } : {}) }));
  for (const u of session.unavailable) r.baseline.findings.push({ status: 'info', text: `module ${u.module} could not run here: ${u.reason}` });
  const drops = Object.entries(r.events.ringDrops).filter(([, n]) => n > 0);
  if (drops.length) r.baseline.findings.push({ status: 'info', text: `outliers lost to a full ring: ${drops.map(([m, n]) => `${m} ${n}`).join(', ')} (every one is still in the histograms)` });

  const all = [r.isolation, r.irq, r.memory, r.syscalls, r.block, r.baseline].flatMap((s) => s?.findings ?? []);
  r.summary.violations = all.filter((x) => x.status === 'fail').length;
  r.summary.warnings = all.filter((x) => x.status === 'warn').length;
  r.summary.exitCode = r.summary.violations ? 2 : r.summary.warnings ? 1 : 0;
  return r;
}

function expand(list: string): number[] {
  return list.split(',').flatMap((p) => {
    const [a, b] = p.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}

const WIDTH = 68;
const line = (s: string) => `  ${s}`;
const tag = (s: Status) => ({ pass: '[PASS]', warn: '[WARN]', fail: '[FAIL]', info: '[INFO]' })[s];

function box(title: string, body: string[]): string[] {
  const pad = Math.max(0, WIDTH - title.length);
  return [
    `╭${'─'.repeat(WIDTH)}╮`,
    `│${' '.repeat(Math.floor(pad / 2))}${title}${' '.repeat(Math.ceil(pad / 2))}│`,
    `├${'─'.repeat(WIDTH)}┤`,
    ...body,
    `╰${'─'.repeat(WIDTH)}╯`,
  ];
}

const findings = (f: Finding[]) => f.flatMap((x) => [line(`${tag(x.status)} ${x.text}`), ...(x.fix ? [line(`       fix: ${x.fix}`)] : [])]);
const pct = (p: Percentiles) => `P50: ${us(p.p50Ns)}    P99: ${us(p.p99Ns)}    P99.999: ${us(p.p99999Ns)}    max: ${us(p.maxNs)}`;

/** The boxed terminal report. */
export function text(r: HostReport, version: string): string {
  const out: string[] = [];
  out.push(`latscope ${version} - host jitter profiler`);
  out.push(`Host: ${r.host} (kernel ${r.kernel})  Target: ${r.target.pids.length ? `PID ${r.target.pids.join(', ')}` : 'every task'}  Duration: ${r.durationS.toFixed(1)} s | CPUs: ${r.target.cpus.length ? `${compactCpus(r.target.cpus)} (isolated)` : 'all'}`);
  out.push('');
  if (r.isolation)
    out.push(...box('ISOLATION VERIFIER', [
      ...findings(r.isolation.findings),
      '',
      line(`Runqueue latency (${r.isolation.runq.count} waits):`),
      line(pct(r.isolation.runq)),
      line(`Context switches: ${r.isolation.contextSwitches} (${r.isolation.involuntary} involuntary), migrations of watched tasks: ${r.isolation.migrations}`),
      ...(r.target.pids.length ? [line(`Off-CPU time of the watched tasks: ${Object.entries(r.isolation.offcpu).filter(([, p]) => p.count).map(([k, p]) => `${k} ${p.count}x max ${us(p.maxNs)}`).join(', ') || 'none'}`)] : []),
      ...r.isolation.worst.slice(0, 3).map((e) => line(`  worst: ${us(e.delayNs)} ${e.kind} @ ${e.at.slice(11, 23)} CPU ${e.cpu} ${e.comm}/${e.pid}${e.cause ? ` (${e.cause})` : ''}${e.detail ? ` ${e.detail}` : ''}`)),
    ]), '');
  if (r.irq)
    out.push(...box('IRQ STORM DETECTOR', [
      ...findings(r.irq.findings),
      ...r.irq.hard.slice().sort((a, b) => b.count - a.count).slice(0, 5).map((h) => line(`  IRQ ${String(h.irq).padEnd(4)} ${h.name.padEnd(18).slice(0, 18)} ${String(h.count).padStart(8)}x  max ${us(h.maxNs)}  CPUs ${compactCpus(h.cpus)}`)),
      ...r.irq.worst.slice(0, 3).map((e) => line(`  worst: ${us(e.delayNs)} ${e.detail} @ ${e.at.slice(11, 23)} CPU ${e.cpu}, interrupted ${e.comm}/${e.pid}`)),
    ]), '');
  if (r.memory)
    out.push(...box('MEMORY STALL PROFILER', [...findings(r.memory.findings), ...r.memory.worst.slice(0, 3).map((e) => line(`  worst: ${us(e.delayNs)} ${e.kind} @ ${e.at.slice(11, 23)} ${e.comm}/${e.pid}`))]), '');
  if (r.syscalls)
    out.push(...box('SYSCALL LATENCY', [
      ...findings(r.syscalls.findings),
      line(`${'syscall'.padEnd(18)} ${'count'.padStart(9)} ${'errors'.padStart(7)} ${'mean'.padStart(10)} ${'p99'.padStart(10)} ${'max'.padStart(10)}`),
      ...r.syscalls.top.slice(0, 8).map((s) => line(`${s.name.padEnd(18)} ${String(s.count).padStart(9)} ${String(s.errors).padStart(7)} ${us(s.meanNs).padStart(10)} ${us(s.p99Ns).padStart(10)} ${us(s.maxNs).padStart(10)}`)),
      ...(r.syscalls.timedOneIn > 1 ? [line(`(mean, p99: 1 call in ${r.syscalls.timedOneIn} timed after the first 1024)`)] : []),
    ]), '');
  if (r.block && r.block.devices.length)
    out.push(...box('BLOCK I/O', r.block.devices.map((d) => line(`${d.device} ${d.write ? 'write' : 'read '} ${d.stats.count}x  ${pct(d.stats)}`))), '');
  out.push(...box('KERNEL BASELINE', findings(r.baseline.findings)), '');
  out.push('═'.repeat(WIDTH + 2));
  out.push(` SUMMARY: ${r.summary.violations} violation${r.summary.violations === 1 ? '' : 's'}, ${r.summary.warnings} warning${r.summary.warnings === 1 ? '' : 's'} | Exit code: ${r.summary.exitCode}`);
  out.push('═'.repeat(WIDTH + 2));
  return out.join('\n');
}
