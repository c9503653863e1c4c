/**
 * The scheduler module (bpf/sched.bpf.c): run-queue latency per CPU, context switches on the
 * watched CPUs and who took the CPU from a watched task, migrations, off-CPU time by reason.
 */
import { OFF_REASONS, SCHED_C_DISPLACED, SCHED_CPU, SCHED_EV, SCHED_EVENT } from '../protocol/host.js';
import { decodeHist, emptyHistogram, mergeHist, type Histogram } from './hist.js';
import { cpuCount, cpuMask, cString, HostProbe, type HostEvent, type HostTarget } from './probe.js';

export interface SchedThresholds {
  /** A wait in the run queue this long leaves the kernel as an event. */
  runqOutlierNs: number;
  /** Time off the CPU this long (a watched task) leaves the kernel as an event. */
  offcpuOutlierNs: number;
}

export interface SchedCpu {
  cpu: number;
  switches: number;
  involuntary: number;
  watchedPreempted: number;
  watchedSwitches: number;
  intrusions: number;
  migrationsIn: number;
  runq: Histogram;
}

export interface SchedSnapshot {
  cpus: SchedCpu[];
  /** Run-queue latency over the watched CPUs. */
  runq: Histogram;
  /** Off-CPU time of the watched tasks by reason. */
  offcpu: Record<(typeof OFF_REASONS)[number], Histogram>;
  /** Waits in the run queue not measured: another task took the waiting task's slot. */
  displaced: number;
}

const C = SCHED_CPU.offsets;
const E = SCHED_EVENT.offsets;
const KINDS: Record<number, string> = { [SCHED_EV.RUNQ]: 'runq', [SCHED_EV.PREEMPT]: 'preempt', [SCHED_EV.MIGRATE]: 'migrate', [SCHED_EV.OFFCPU]: 'offcpu' };

export class SchedProbe extends HostProbe {
  private constructor(
    bpf: ReturnType<typeof HostProbe['load']>,
    private readonly target: HostTarget,
  ) {
    super('sched', bpf, 'events');
  }

  static open(target: HostTarget, t: SchedThresholds): SchedProbe {
    const bpf = HostProbe.load('sched', {
      settings: {
        watch_all_tasks: target.pids.length === 0,
        watch_all_cpus: target.cpus.length === 0,
        watch_cpus: cpuMask(target.cpus),
        runq_outlier_ns: BigInt(Math.round(t.runqOutlierNs)),
        offcpu_outlier_ns: BigInt(Math.round(t.offcpuOutlierNs)),
      },
      maxEntries: { cpus: cpuCount() },
      layouts: [SCHED_EVENT],
    });
    HostProbe.fill(bpf, 'watch_tgid', target.pids);
    return new SchedProbe(bpf, target);
  }

  snapshot(): SchedSnapshot {
    const m = this.bpf.map('cpus');
    const cpus: SchedCpu[] = [];
    for (let cpu = 0; cpu < cpuCount(); cpu++) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(cpu);
      const v = m.lookup(k);
      if (!v) continue;
      const n = (o: number) => Number(v.readBigUInt64LE(o));
      cpus.push({ cpu, switches: n(C.switches), involuntary: n(C.involuntary), watchedPreempted: n(C.watched_preempted), watchedSwitches: n(C.watched_switches), intrusions: n(C.intrusions), migrationsIn: n(C.migrations_in), runq: decodeHist(v, C.runq) });
    }
    const watched = this.target.cpus.length ? cpus.filter((c) => this.target.cpus.includes(c.cpu)) : cpus;
    const off = this.bpf.map('offcpu');
    const offcpu = Object.fromEntries(
      OFF_REASONS.map((r, i) => {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(i);
        const v = off.lookup(k);
        return [r, v ? decodeHist(v) : emptyHistogram()];
      }),
    ) as SchedSnapshot['offcpu'];
    const displaced = Number(this.bpf.map('counters').u64At(SCHED_C_DISPLACED));
    return { cpus, runq: watched.reduce((h, c) => mergeHist(h, c.runq), emptyHistogram()), offcpu, displaced };
  }

  /** Run-queue latency of each watched thread (only when processes are watched). */
  threadRunq(): Map<number, Histogram> {
    const m = this.bpf.map('thread_runq');
    const out = new Map<number, Histogram>();
    for (const k of m.keys()) {
      const v = m.lookup(k);
      if (v) out.set(k.readUInt32LE(0), decodeHist(v));
    }
    return out;
  }

  protected override decode(b: Buffer, o: number, len: number): HostEvent | undefined {
    if (len < SCHED_EVENT.size) return undefined;
    const kind = KINDS[b.readUInt32LE(o + E.kind)] ?? 'unknown';
    const otherPid = b.readUInt32LE(o + E.other_pid);
    const aux = b.readUInt32LE(o + E.aux);
    return {
      module: 'sched', kind, tsNs: b.readBigUInt64LE(o + E.ts_ns), delayNs: Number(b.readBigUInt64LE(o + E.delay_ns)), cpu: b.readUInt32LE(o + E.cpu),
      pid: b.readUInt32LE(o + E.pid), tgid: b.readUInt32LE(o + E.tgid), comm: cString(b, o + E.comm, 16),
      ...(kind === 'runq' || kind === 'preempt' ? { other: { pid: otherPid, tgid: b.readUInt32LE(o + E.other_tgid), comm: otherPid === 0 ? 'idle' : cString(b, o + E.other_comm, 16) } } : {}),
      ...(kind === 'migrate' ? { detail: `to CPU ${aux}` } : kind === 'offcpu' ? { detail: OFF_REASONS[aux] ?? 'sleep' } : {}),
    };
  }
}
