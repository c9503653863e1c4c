/**
 * `latscope host`: host jitter on this machine for a while (scheduler, IRQs, memory stalls,
 * syscalls, block I/O, the kernel baseline), then the boxed report or --json.
 * Exit codes: 0 pass, 1 warnings only, 2 violations, 3 error (bad option, no module could run).
 */
import { durationMs, numberIn } from './options.js';
import { forTerminal } from '../lib/terminal.js';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_MODULES, type HostModuleName } from '../protocol/host.js';
import { HostSession } from '../host/session.js';
import { DEFAULT_SYSCALL_TIME_EVERY } from '../host/syscall.js';
import { buildReport, DEFAULT_THRESHOLDS, text, type Thresholds } from '../host/report.js';
import { parseCpuList } from '../host/probe.js';
import { projectRoot } from '../lib/paths.js';

interface Opts {
  /** Milliseconds to measure. */
  duration: number;
  pid: number[];
  cpus?: string;
  modules: string;
  threshold: string[];
  syscallEvery: number;
  json: boolean;
  progress: boolean;
}

const collect = <T>(parse: (v: string) => T) => (v: string, prev: T[] = []) => [...prev, parse(v)];

function pidArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--pid ${v}: expected a process id`);
  try {
    readFileSync(`/proc/${n}/stat`);
  } catch {
    throw new Error(`--pid ${n}: no such process`);
  }
  return n;
}

function thresholds(pairs: string[]): Thresholds {
  const t = { ...DEFAULT_THRESHOLDS };
  for (const p of pairs) {
    const m = /^([a-z_0-9]+)=(.+)$/.exec(p);
    if (!m || !(m[1]! in t)) throw new Error(`--threshold ${p}: expected NAME=VALUE with NAME one of ${Object.keys(t).join(', ')}`);
    const v = Number(m[2]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--threshold ${p}: expected a number at least 0`);
    (t as Record<string, number>)[m[1]!] = v;
  }
  return t;
}

const version = () => (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** Waits ms, calling tick every 500 ms; SIGINT or SIGTERM ends it early. */
function waitOrInterrupt(ms: number, tick?: () => void): Promise<'time' | 'interrupted'> {
  return new Promise((resolve) => {
    const progress = tick ? setInterval(tick, 500) : undefined;
    const finish = (why: 'time' | 'interrupted') => {
      clearTimeout(end);
      if (progress) clearInterval(progress);
      process.removeListener('SIGINT', early);
      process.removeListener('SIGTERM', early);
      resolve(why);
    };
    const early = () => finish('interrupted');
    const end = setTimeout(() => finish('time'), ms);
    process.once('SIGINT', early);
    process.once('SIGTERM', early);
  });
}

export function hostCommand(): Command {
  return new Command('host')
    .description('measure host jitter on this machine: run-queue latency and context switches on the chosen CPUs, IRQs landing on them, page faults and TLB shootdowns, slow syscalls, block I/O, and the kernel baseline; prints a report with verdicts')
    .option('--duration <time>', 'how long to measure: 10s, 5m, 1h30m (a bare number is seconds; Ctrl-C ends early and still reports)', durationMs('--duration', 100, 86_400_000), 10_000)
    .option('--pid <pid>', 'a process to watch (repeat for several; default: every task)', collect(pidArg), [] as number[])
    .option('--cpus <list>', 'CPUs that should be isolated, e.g. 4-7 or 2,3 (default: all, no isolation check)')
    .addOption(new Option('--modules <list>', `comma-separated modules: ${HOST_MODULES.join(', ')}`).default(HOST_MODULES.join(',')))
    .option('--syscall-every <n>', 'time one syscall in N at random after each syscall\'s first 1024 on a CPU (1: every call; the clock costs a program more than the rest of its work); every call is still counted and every slow one caught, to the tick', numberIn('--syscall-every', 1, 1 << 20), DEFAULT_SYSCALL_TIME_EVERY)
    .option('--threshold <name=value>', `change a verdict threshold (repeat); names: ${Object.keys(DEFAULT_THRESHOLDS).join(', ')}`, collect(String), [] as string[])
    .option('--json', 'print the report as JSON (docs/host-report.schema.json) instead of the boxes', false)
    .option('--no-progress', 'no progress line on stderr (there is none when stderr is not a terminal)')
    .addHelpText(
      'after',
      `
Exit codes: 0 pass, 1 warnings only, 2 violations, 3 error.

Examples:
  sudo latscope host --duration 10
  sudo latscope host --pid $(pgrep trading) --cpus 4-7
  sudo latscope host --modules sched,irq --threshold runq_fail_us=200 --json > report.json
  sudo latscope host --pid $(pgrep trading) --modules syscall --syscall-every 1
`,
    )
    .action(async (o: Opts) => {
      try {
        const modules = o.modules.split(',').map((m) => m.trim()).filter(Boolean);
        for (const m of modules) if (!HOST_MODULES.includes(m as HostModuleName)) throw new Error(`--modules: "${m}" is not a module; choose from ${HOST_MODULES.join(', ')}`);
        const t = thresholds(o.threshold);
        const cpus = o.cpus ? parseCpuList(o.cpus) : [];
        const session = HostSession.open({ modules: modules as HostModuleName[], target: { pids: o.pid, cpus }, syscallTimeEvery: o.syscallEvery });
        const t0 = Date.now();
        let stopped: string | undefined;
        try {
          // progress only on a terminal: \r must not land in logs and pipes
          const showProgress = o.progress && process.stderr.isTTY === true;
          stopped = await waitOrInterrupt(o.duration, showProgress ? () => {
            const n = [...session.eventCounts.values()].reduce((x, y) => x + y, 0);
            process.stderr.write(`\rlatscope host: ${((Date.now() - t0) / 1000).toFixed(0)} of ${o.duration / 1000} s, ${n} outliers so far (Ctrl-C ends early)   `);
          } : undefined);
          if (showProgress) process.stderr.write(`\r${' '.repeat(79)}\r`);
          const snap = session.snapshot();
          const report = buildReport(session, snap, (Date.now() - t0) / 1000, t);
          console.log(o.json ? JSON.stringify(report) : forTerminal(text(report, version())) + (stopped === 'interrupted' ? '\n(ended early by Ctrl-C)' : ''));
          process.exitCode = report.summary.exitCode;
        } finally {
          session.close();
        }
      } catch (e) {
        console.error(`latscope host: ${(e as Error).message}`);
        process.exitCode = 3;
      }
    });
}
