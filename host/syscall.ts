/**
 * The syscall module (bpf/syscall.bpf.c): per syscall, by name, count, errors, mean, maximum and
 * a log2 histogram, for the tasks chosen in the kernel by process, thread or cgroup; the slow
 * calls as events.
 *
 * Every call is counted and every slow one caught. The clock costs a program more than the rest
 * of its work, so a syscall's first calls on each CPU are timed, then one in `timeEvery` drawn at
 * random, weighted by the calls it stands for: the histogram and sum estimate every call's
 * without bias, with exact counts beside them. An untimed slow call is measured in kernel ticks
 * (to within a tick either way).
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { SYS_C_DISPLACED, SYS_EVENT, SYS_MAX, SYS_SLOTS, SYS_STAT } from '../protocol/host.js';
import { emptyHistogram, type Histogram } from './hist.js';
import { cgroupId, cString, HostProbe, type HostEvent, type HostTarget } from './probe.js';
import { syscallName, syscallNumber } from './syscall-names.js';

export interface SyscallThresholds {
  /** A call this long leaves the kernel as an event. */
  slowNs: number;
  /** After each syscall's first TIME_FIRST calls on a CPU, time one call in this many, chosen at random (1: every call). Default 32. */
  timeEvery?: number;
  /** Each syscall's first calls on a CPU that are all timed (default TIME_FIRST). */
  timeFirst?: number;
}

export const DEFAULT_SYSCALL_TIME_EVERY = 32;
/** Each syscall's first calls on a CPU are all timed: a rare syscall gets an exact histogram. */
export const TIME_FIRST = 1024;

export interface SyscallStat {
  nr: number;
  name: string;
  /** Calls made: exact. */
  count: number;
  errors: number;
  /** Calls timed with the clock (hist is these, each weighted by the calls it stands for). */
  timed: number;
  hist: Histogram;
}

const S = SYS_STAT.offsets;
const E = SYS_EVENT.offsets;

/** The kernel's tick (one jiffy) in ns, from its configuration (CONFIG_HZ); undefined when no configuration can be read. */
export function kernelTickNs(): number | undefined {
  const configs: (() => string)[] = [() => readFileSync(`/boot/config-${release()}`, 'utf8'), () => gunzipSync(readFileSync('/proc/config.gz')).toString('utf8')];
  for (const read of configs) {
    try {
      const hz = Number(/^CONFIG_HZ=(\d+)$/m.exec(read())?.[1]);
      if (hz > 0) return 1e9 / hz;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * How the kernel side times calls: sampling needs the tick to catch the untimed slow calls, and
 * a threshold of at least two ticks to tell them from calls that merely crossed a tick.
 */
export function timingPlan(slowNs: number, timeEvery: number, tickNs: number | undefined): { every: number; tickNs: number; slowTicks: number } {
  if (!Number.isInteger(timeEvery) || timeEvery < 1 || timeEvery > 1 << 20) throw new Error(`syscall timing: one call in ${timeEvery} is not a whole number from 1 to ${1 << 20}`);
  if (!tickNs || slowNs < 2 * tickNs) return { every: 1, tickNs: tickNs ?? 0, slowTicks: 0 };
  return { every: timeEvery, tickNs, slowTicks: Math.floor(slowNs / tickNs) };
}

export class SyscallProbe extends HostProbe {
  private constructor(
    bpf: ReturnType<typeof HostProbe['load']>,
    /** One call in this many is timed (1: all). */
    readonly timeEvery: number,
    /** The tick untimed slow calls are measured in, ns. */
    readonly tickNs: number,
  ) {
    super('syscall', bpf, 'events');
  }

  static open(target: HostTarget, t: SyscallThresholds): SyscallProbe {
    const all = !target.pids.length && !target.tids.length && !target.cgroups.length;
    const cgroups = target.cgroups.map(cgroupId);
    const plan = timingPlan(t.slowNs, t.timeEvery ?? DEFAULT_SYSCALL_TIME_EVERY, kernelTickNs());
    const bpf = HostProbe.load('syscall', {
      settings: {
        watch_all_tasks: all,
        slow_ns: BigInt(Math.round(t.slowNs)),
        tick_ns: BigInt(Math.round(plan.tickNs)),
        slow_ticks: BigInt(plan.slowTicks),
        time_first: BigInt(t.timeFirst ?? TIME_FIRST),
        time_every: plan.every,
        timed_below: BigInt(Math.floor(2 ** 32 / plan.every)),
        exit_nr: BigInt(syscallNumber('exit') ?? -1),
        exit_group_nr: BigInt(syscallNumber('exit_group') ?? -1),
      },
      layouts: [SYS_EVENT, SYS_STAT],
    });
    HostProbe.fill(bpf, 'watch_tgid', target.pids);
    HostProbe.fill(bpf, 'watch_tid', target.tids);
    const cg = bpf.map('watch_cgroup');
    for (const id of cgroups) {
      const k = Buffer.alloc(8);
      k.writeBigUInt64LE(id);
      cg.update(k, Buffer.from([1]));
    }
    return new SyscallProbe(bpf, plan.every, plan.tickNs);
  }

  /** Every syscall that was made, the most time spent first. */
  snapshot(): SyscallStat[] {
    const m = this.bpf.map('stats');
    const out: SyscallStat[] = [];
    const k = Buffer.alloc(4);
    for (let nr = 0; nr < SYS_MAX; nr++) {
      k.writeUInt32LE(nr);
      const v = m.lookup(k);
      if (!v) continue;
      const h = emptyHistogram('log2', SYS_SLOTS);
      let count = 0, errors = 0, timed = 0;
      for (const c of m.perCpuValues(v)) {
        const calls = Number(c.readBigUInt64LE(S.count));
        if (!calls) continue;
        count += calls;
        errors += Number(c.readBigUInt64LE(S.errors));
        timed += Number(c.readBigUInt64LE(S.timed));
        h.sumNs += Number(c.readBigUInt64LE(S.sum_ns));
        h.maxNs = Math.max(h.maxNs, Number(c.readBigUInt64LE(S.max_ns)));
        for (let i = 0; i < SYS_SLOTS; i++) h.slots[i]! += Number(c.readBigUInt64LE(S.slot + 8 * i));
      }
      h.count = h.slots.reduce((a, x) => a + x, 0);
      if (count) out.push({ nr, name: syscallName(nr), count, errors, timed, hist: h });
    }
    return out.sort((a, b) => b.hist.sumNs - a.hist.sumNs || b.count - a.count);
  }

  /** Calls whose slot another thread's call took before they ended (or that never returned): counted, not timed. */
  displaced(): number {
    return Number(this.bpf.map('counters').u64At(SYS_C_DISPLACED));
  }

  protected override decode(b: Buffer, o: number, len: number): HostEvent | undefined {
    if (len < SYS_EVENT.size) return undefined;
    const ret = b.readBigInt64LE(o + E.ret);
    const toTick = b.readUInt32LE(o + E.to_tick) === 1;
    return {
      module: 'syscall', kind: 'syscall', tsNs: b.readBigUInt64LE(o + E.ts_ns), delayNs: Number(b.readBigUInt64LE(o + E.delay_ns)),
      cpu: b.readUInt32LE(o + E.cpu), pid: b.readUInt32LE(o + E.pid), tgid: b.readUInt32LE(o + E.tgid), comm: cString(b, o + E.comm, 16),
      detail: `${syscallName(b.readUInt32LE(o + E.nr))}${ret < 0n ? ` (error ${-ret})` : ''}`,
      ...(toTick ? { withinNs: this.tickNs } : {}),
    };
  }
}
