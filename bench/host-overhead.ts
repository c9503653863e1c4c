/**
 * bench/host-overhead: what the host-jitter modules cost the work they watch, side by side in one
 * run, configurations interleaved round by round on two workloads pinned to one CPU (the
 * modules' user space on the other): TCP ping-pong of 100-byte messages over loopback (round
 * trips per second, bench/tools/tcpbench.c) and two threads passing a token through a pair of
 * pipes (rounds per second: a context switch each way, test/tools/hostload.c). Configurations:
 * - nothing attached;
 * - the floor: empty programs on exactly the modules' hooks (bench/bpf/host_floor.bpf.c), what
 *   entering the hooks costs before any program does any work;
 * - every latscope module (sched, irq, memory, syscall, block), watching every task;
 * - the latscope modules that take the run-queue and syscall histograms (sched, syscall);
 * - the same two histograms taken by the bpftrace one-liners of seed 001 (Debian's bpftrace).
 * Slowdowns are medians over rounds of each round's loss against that round's baseline. A
 * separate pass with bpf_stats on gives the median ns per run of each program, ours and
 * bpftrace's, and all programs' time per round of each workload against the floor's (stable where
 * the throughput losses swing by points from run to run), with syscalls sampled (the default) and
 * every one timed. Targets: at most 3% slowdown with every module, at most 100 ns median per event,
 * less overhead than bpftrace for the same histograms. JSON and one line; each step on stderr.
 * SIGTERM and Ctrl-C stop it: its workloads, bpftrace and its programs end with it.
 *
 *   node dist/bench/host-overhead.js [--seconds 3] [--rounds 5] [--cpu 1 (the CPU both workloads are pinned to)]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { benchObject, checkStop, median, numberArg, onStop, stopOnSignals, stopRequested } from './common.js';
import { BpfObject, enableBpfStats } from '../native/addon.js';
import { HostSession } from '../host/session.js';
import { HOST_MODULES, type HostModuleName } from '../protocol/host.js';
import { projectRoot } from '../lib/paths.js';

const execFileP = promisify(execFile);
const tcpbench = join(projectRoot, 'dist', 'bench', 'tcpbench');
const hostload = join(projectRoot, 'dist', 'test', 'hostload');
const seconds = numberArg('seconds', 3);
const rounds = numberArg('rounds', 5);
const CPU = numberArg('cpu', 1);
const PORT = 7450;

type Config = 'baseline' | 'floor' | 'latscopeAll' | 'latscopeSame' | 'bpftrace';
const CONFIGS: Config[] = ['baseline', 'floor', 'latscopeAll', 'latscopeSame', 'bpftrace'];
type Workload = 'tcpPingpong' | 'pipePingpong';

/** Seed 001's one-liners for the run-queue latency and syscall latency histograms, in one bpftrace. */
const BPFTRACE = `
tracepoint:sched:sched_wakeup { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch /args->prev_state == 0/ { if (@qtime[args->next_pid]) { @runq_latency_us = hist((nsecs - @qtime[args->next_pid]) / 1000); delete(@qtime[args->next_pid]); } }
tracepoint:raw_syscalls:sys_enter { @start[tid] = nsecs; }
tracepoint:raw_syscalls:sys_exit /@start[tid]/ { @usecs = hist((nsecs - @start[tid]) / 1000); delete(@start[tid]); }
`;

/** Every child still running: killed on the way out, so that none outlives the benchmark (a
 * stray echo server keeps the port, a stray bpftrace its programs). */
const children = new Set<ChildProcess>();
function track<T extends ChildProcess>(c: T): T {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}
const killChildren = () => {
  for (const c of children) c.kill('SIGKILL');
};
stopOnSignals();
onStop(killChildren);
const step = (what: string) => {
  checkStop();
  process.stderr.write(`host-overhead: ${what}\n`);
};

/** Runs a workload tool pinned to CPU; its last line's JSON. Killed after its time and 30 s more. */
function run(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', ['-c', String(CPU), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Record<string, unknown>);
      else reject(new Error(`${args.join(' ')} ${signal ? `was killed (${signal}${signal === 'SIGKILL' && !stopRequested() ? `: not done ${seconds + 30} s after its ${seconds} s` : ''})` : `exited ${code}`}: ${out.trim()}`));
    });
  });
}

async function workload(w: Workload): Promise<number> {
  if (w === 'pipePingpong') return Number((await run([hostload, 'pingpong', String(seconds)])).rounds_per_s);
  return Number((await run([tcpbench, 'pingpong', '127.0.0.1', String(PORT), String(seconds), '100'])).rtt_per_s);
}

/**
 * Starts a long-running child and resolves once its output matches `ready`; killed if it has
 * not within 60 s. `failed` says what its exit before that means.
 */
async function startReady(cmd: string, args: string[], ready: RegExp, failed: (code: number | null, out: string) => string): Promise<ChildProcess> {
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args[0]}: not ready within 60 s: ${out.trim()}`));
    }, 60_000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) (clearTimeout(t), resolve());
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => (clearTimeout(t), reject(new Error(failed(c, out.trim())))));
  });
  return child;
}

/** The echo server of the TCP workload, pinned like it; resolves once it listens (a port in use is an error naming it). */
const startServer = () =>
  startReady('taskset', ['-c', String(CPU), tcpbench, 'server', String(PORT)], /"listening"/, (c, out) => `the echo server (tcpbench server ${PORT}) exited ${c}: ${out} (is port ${PORT} in use? ss -ltnp 'sport = ${PORT}')`);

/** Starts bpftrace with the one-liners; resolves once its probes are attached (and half a second more). */
async function startBpftrace(): Promise<ChildProcess> {
  const child = await startReady('bpftrace', ['-e', BPFTRACE], /Attaching \d+ probes?/, (c, out) => `bpftrace exited ${c}: ${out}`);
  await new Promise((r) => setTimeout(r, 500));
  return child;
}

/** Ctrl-C to bpftrace (it prints its maps and detaches); SIGKILL if it has not ended within 10 s. */
async function stopBpftrace(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGINT');
  const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
}

async function withConfig<T>(c: Config, fn: () => Promise<T>): Promise<T> {
  if (c === 'baseline') return fn();
  if (c === 'floor') {
    const o = BpfObject.open(benchObject('host_floor'));
    try {
      for (const p of o.programs()) o.attach(p.name);
      return await fn();
    } finally {
      o.close();
    }
  }
  if (c === 'bpftrace') {
    const bt = await startBpftrace();
    try {
      return await fn();
    } finally {
      await stopBpftrace(bt);
    }
  }
  const modules: readonly HostModuleName[] = c === 'latscopeAll' ? HOST_MODULES : ['sched', 'syscall'];
  const s = HostSession.open({ modules });
  try {
    return await fn();
  } finally {
    s.close();
  }
}

interface ProgInfo {
  id: number;
  name?: string;
  type: string;
  run_time_ns?: number;
  run_cnt?: number;
}

const programs = async (): Promise<ProgInfo[]> => JSON.parse((await execFileP('bpftool', ['-j', 'prog', 'show'], { timeout: 30_000 })).stdout) as ProgInfo[];

/** The ns per run (bpf_stats on) of the programs that appeared since `before` (bpftrace's). */
async function newProgramStats(before: Set<number>): Promise<{ program: string; runs: number; nsPerRun: number }[]> {
  return (await programs())
    .filter((p) => !before.has(p.id) && (p.run_cnt ?? 0) > 0)
    .map((p) => ({ program: p.name ?? p.type, runs: p.run_cnt!, nsPerRun: p.run_time_ns! / p.run_cnt! }));
}

/** The ns per run of the median event over programs, each weighted by its runs. */
function eventMedian(progs: { runs: number; nsPerRun: number }[]): number {
  const sorted = progs.slice().sort((a, b) => a.nsPerRun - b.nsPerRun);
  const half = sorted.reduce((a, p) => a + p.runs, 0) / 2;
  let seen = 0;
  for (const p of sorted) if ((seen += p.runs) >= half) return p.nsPerRun;
  return NaN;
}

type ProgramCost = { program: string; runs: number; nsPerRun: number };
interface StatsPass {
  programs: ProgramCost[];
  /** All programs' ns per round of each workload. */
  nsPerRound: Record<Workload, number>;
}
interface Attached {
  stats(): { program: string; runs: number; runNs: number }[];
  close(): void;
}

/** One pass with bpf_stats on: each workload once under `attach`; each program's ns per run, and all programs' ns per round of each workload. */
async function statsPass(attach: () => Attached): Promise<StatsPass> {
  const a = attach();
  try {
    const totalNs = () => a.stats().reduce((x, p) => x + p.runNs, 0);
    const nsPerRound = {} as Record<Workload, number>;
    for (const w of ['tcpPingpong', 'pipePingpong'] as const) {
      const before = totalNs();
      const rate = await workload(w);
      nsPerRound[w] = Math.round((totalNs() - before) / (rate * seconds));
    }
    const programs = a.stats().filter((p) => p.runs > 0).map((p) => ({ program: p.program, runs: p.runs, nsPerRun: p.runNs / p.runs }));
    return { programs, nsPerRound };
  } finally {
    a.close();
  }
}

const aboveFloorNs = (x: StatsPass, floor: StatsPass): Record<Workload, number> => ({
  tcpPingpong: x.nsPerRound.tcpPingpong - floor.nsPerRound.tcpPingpong,
  pipePingpong: x.nsPerRound.pipePingpong - floor.nsPerRound.pipePingpong,
});

async function main(): Promise<void> {
  step(`the echo server on port ${PORT}, CPU ${CPU}`);
  const server = await startServer();
  try {
    const results: Record<Config, Record<Workload, number[]>> = Object.fromEntries(CONFIGS.map((c) => [c, { tcpPingpong: [], pipePingpong: [] }])) as never;
    for (let r = 0; r < rounds; r++) {
      for (const c of CONFIGS) {
        step(`round ${r + 1} of ${rounds}: ${c}`);
        await withConfig(c, async () => {
          for (const w of ['tcpPingpong', 'pipePingpong'] as const) results[c][w].push(await workload(w));
        });
      }
    }
    // the cost of each program per run, with bpf_stats on (a separate pass: the stats cost time
    // too), and the programs' whole time per round of each workload: a stable figure of the cost
    // above the floor, where the throughput losses swing by points between runs
    const stop = enableBpfStats();
    let floor: StatsPass, ours: StatsPass, everyCall: StatsPass;
    let theirs: ProgramCost[] = [];
    try {
      step('ns per run (bpf_stats): the floor');
      floor = await statsPass(() => {
        const o = BpfObject.open(benchObject('host_floor'));
        for (const p of o.programs()) o.attach(p.name);
        return { stats: () => o.programs().map((p) => { const x = o.programStats(p.name); return { program: p.name, runs: Number(x.runCount), runNs: Number(x.runTimeNs) }; }), close: () => o.close() };
      });
      const session = (syscallTimeEvery?: number) => () => {
        const s = HostSession.open({ modules: HOST_MODULES, syscallTimeEvery });
        return { stats: () => s.programStats(), close: () => s.close() };
      };
      step('ns per run (bpf_stats): latscope');
      ours = await statsPass(session());
      step('ns per run (bpf_stats): latscope, every syscall timed');
      everyCall = await statsPass(session(1));
      step('ns per run (bpf_stats): bpftrace');
      const before = new Set((await programs()).map((p) => p.id));
      const bt = await startBpftrace();
      try {
        for (const w of ['tcpPingpong', 'pipePingpong'] as const) await workload(w);
        theirs = await newProgramStats(before);
      } finally {
        await stopBpftrace(bt);
      }
    } finally {
      stop();
    }

    const loss = (c: Config, w: Workload) => median(results[c][w].map((v, i) => 1 - v / results.baseline[w][i]!));
    const rate = (c: Config, w: Workload) => Math.round(median(results[c][w]));
    const out = {
      seconds, rounds, cpu: CPU,
      throughput: Object.fromEntries(CONFIGS.map((c) => [c, { tcpPingpongRttPerS: rate(c, 'tcpPingpong'), pipeRoundsPerS: rate(c, 'pipePingpong') }])),
      slowdown: Object.fromEntries(CONFIGS.filter((c) => c !== 'baseline').map((c) => [c, { tcpPingpong: +loss(c, 'tcpPingpong').toFixed(4), pipePingpong: +loss(c, 'pipePingpong').toFixed(4) }])),
      nsPerRun: { latscope: ours.programs.map((p) => ({ ...p, nsPerRun: Math.round(p.nsPerRun) })), bpftrace: theirs.map((p) => ({ ...p, nsPerRun: Math.round(p.nsPerRun) })) },
      // the cost of the median event: programs weighted by how often they ran (a rare, cold one counts as rarely as it runs)
      medianNsPerEvent: {
        latscope: Math.round(eventMedian(ours.programs)),
        latscopeSyscallsEveryCall: Math.round(eventMedian(everyCall.programs)),
        floor: Math.round(eventMedian(floor.programs)),
        bpftrace: theirs.length ? Math.round(eventMedian(theirs)) : null,
      },
      // all programs' time per round trip (TCP) or round (pipe), and above the floor's
      bpfNsPerRound: { floor: floor.nsPerRound, latscope: ours.nsPerRound, latscopeSyscallsEveryCall: everyCall.nsPerRound },
      bpfNsPerRoundAboveFloor: {
        latscope: aboveFloorNs(ours, floor),
        latscopeSyscallsEveryCall: aboveFloorNs(everyCall, floor),
      },
    };
    const all = Math.max(loss('latscopeAll', 'tcpPingpong'), loss('latscopeAll', 'pipePingpong'));
    const targets = {
      allModulesAtMost3Percent: all <= 0.03,
      medianAtMost100Ns: out.medianNsPerEvent.latscope <= 100,
      lessThanBpftrace: loss('latscopeSame', 'tcpPingpong') < loss('bpftrace', 'tcpPingpong') && loss('latscopeSame', 'pipePingpong') < loss('bpftrace', 'pipePingpong'),
    };
    console.log(JSON.stringify({ ...out, targets }));
    const aboveFloor = (w: Workload) => loss('latscopeAll', w) - loss('floor', w);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(
      `host-overhead: every module costs TCP ping-pong ${pct(loss('latscopeAll', 'tcpPingpong'))} and pipe ping-pong ${pct(loss('latscopeAll', 'pipePingpong'))} (target ≤3%: ${targets.allModulesAtMost3Percent ? 'met' : 'NOT met'}); ` +
        `run-queue + syscall histograms: latscope ${pct(loss('latscopeSame', 'tcpPingpong'))} / ${pct(loss('latscopeSame', 'pipePingpong'))} vs bpftrace ${pct(loss('bpftrace', 'tcpPingpong'))} / ${pct(loss('bpftrace', 'pipePingpong'))} (${targets.lessThanBpftrace ? 'less' : 'NOT less'}); ` +
        `median ns per event: latscope ${out.medianNsPerEvent.latscope} (every syscall timed: ${out.medianNsPerEvent.latscopeSyscallsEveryCall}; empty programs ${out.medianNsPerEvent.floor}), bpftrace ${out.medianNsPerEvent.bpftrace} (target ≤100: ${targets.medianAtMost100Ns ? 'met' : 'NOT met'}); ` +
        `BPF ns per round above the floor: TCP ${out.bpfNsPerRoundAboveFloor.latscope.tcpPingpong}, pipe ${out.bpfNsPerRoundAboveFloor.latscope.pipePingpong} (every syscall timed: ${out.bpfNsPerRoundAboveFloor.latscopeSyscallsEveryCall.tcpPingpong} / ${out.bpfNsPerRoundAboveFloor.latscopeSyscallsEveryCall.pipePingpong}); ` +
        `the floor (empty programs on the same hooks) ${pct(loss('floor', 'tcpPingpong'))} / ${pct(loss('floor', 'pipePingpong'))}, every module above it ${pct(aboveFloor('tcpPingpong'))} / ${pct(aboveFloor('pipePingpong'))}`,
    );
  } finally {
    server.kill('SIGKILL');
  }
}

main().catch((e) => {
  console.error(`bench/host-overhead: ${(e as Error).message}`);
  process.exitCode = 2;
  killChildren(); // a child left running would keep the benchmark alive
});
