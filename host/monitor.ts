/**
 * HostMonitor: the host-jitter modules as a TypeScript library, for low-latency teams who want
 * the figures inside their own tooling. Attach processes, start, read context switches, latency
 * spikes with what caused them (the task that took the CPU, the IRQs on that CPU meanwhile),
 * per-thread scheduling with its jitter, NUMA placement; stop. Cache and TLB-miss counters need
 * hardware PMU events: on a host without them the call throws UnsupportedError, never numbers
 * made up.
 *
 *   import { HostMonitor } from 'latscope';
 *   const m = new HostMonitor({ cpus: [4, 5] });
 *   m.attachProcess(pid);
 *   await m.start();
 *   // ... the application runs ...
 *   const spikes = m.detectLatencySpikes({ thresholdUs: 50 });
 *   m.stop();
 */
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { HostModuleName } from '../protocol/host.js';
import { percentiles, type Percentiles } from './hist.js';
import { buildReport, DEFAULT_THRESHOLDS, type HostReport, type Thresholds } from './report.js';
import { parseCpuList, type HostEvent } from './probe.js';
import type { SchedProbe } from './sched.js';
import { HostSession, type OutlierThresholds } from './session.js';

/** A measurement this host cannot make (missing hardware or kernel support); `code` says which. */
export class UnsupportedError extends Error {
  constructor(
    message: string,
    readonly code: 'NO_PMU' | 'NOT_IMPLEMENTED' | 'NO_NUMA',
  ) {
    super(message);
    this.name = 'UnsupportedError';
  }
}

export interface HostMonitorOptions {
  /** Modules to load (default: sched, irq, memory, syscall). */
  modules?: HostModuleName[];
  /** CPUs that should be isolated (their IRQs and intruders are reported). */
  cpus?: number[];
  /** Where an event leaves the kernel as an outlier (default: 20 us run-queue waits, 10 us IRQs: enough to explain a spike). */
  outliers?: Partial<OutlierThresholds>;
  /** Verdict thresholds of report(). */
  thresholds?: Partial<Thresholds>;
}

export interface AttachOptions {
  /** Cache and TLB-miss counters (hardware PMU events): start() throws UnsupportedError where there are none. */
  trackCache?: boolean;
  /** NUMA placement of the process's memory (from /proc; see getNumaStats). */
  trackNuma?: boolean;
}

/** A watched task taken off its CPU while it could still run. */
export interface ContextSwitch {
  /** CLOCK_MONOTONIC, ns. */
  atNs: bigint;
  cpu: number;
  pid: number;
  tgid: number;
  comm: string;
  /** The task that took the CPU. */
  by: { pid: number; tgid: number; comm: string };
  /** How long it waited to run again, us (undefined: still waiting, or not seen). */
  durationUs?: number;
}

/** A wait of a watched task, with its causes. */
export interface LatencySpike {
  atNs: bigint;
  cpu: number;
  pid: number;
  comm: string;
  /** runq: runnable but not running; offcpu: off the CPU for a reason (sleep, blocked, preempted). */
  kind: 'runq' | 'offcpu';
  durationUs: number;
  reason?: string;
  causes?: {
    /** The task that took the CPU, if it was taken. */
    preemptedBy?: { pid: number; comm: string };
    /** Hard and soft IRQs on that CPU during the wait (those long enough to be outliers). */
    irqs: { what: string; durationUs: number }[];
    /** Syscalls of that thread that ended during the wait (slow ones). */
    syscalls: { name: string; durationUs: number }[];
  };
}

export interface ThreadSchedulingInfo {
  tid: number;
  comm: string;
  /** SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE. */
  policy: string;
  /** Real-time priority (1-99) or 0. */
  priority: number;
  nice: number;
  /** CPUs it may run on. */
  affinity: number[];
  /** CPU it last ran on. */
  lastCpu: number;
  cpuTimeUs: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
  /** Its waits in the run queue since start() (undefined: never woke while watched). */
  runq?: Percentiles;
  /** Run-queue jitter: p99 minus p50 of those waits, us. */
  schedulingJitterUs?: number;
}

export interface NumaStats {
  /** Per NUMA node: pages of the process there (from /proc/PID/numa_maps), and the node's hit/miss counters. */
  nodes: { node: number; pages: number; numaHit: number; numaMiss: number; localNode: number; otherNode: number }[];
  /** Share of the process's pages on its most used node. */
  localShare: number;
}

const POLICIES = ['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'];

/** Does this host have hardware PMU events (a `cpu` event source)? */
export function hasHardwarePmu(): boolean {
  return existsSync('/sys/bus/event_source/devices/cpu') || existsSync('/sys/bus/event_source/devices/cpu_core');
}

export interface HostMonitorEvents {
  /** A watched task waited longer than the run-queue outlier threshold. */
  spike: [LatencySpike];
}

export class HostMonitor extends EventEmitter<HostMonitorEvents> {
  private readonly pids = new Map<number, AttachOptions>();
  private session?: HostSession;
  private readonly o: HostMonitorOptions;

  constructor(o: HostMonitorOptions = {}) {
    super();
    this.o = o;
  }

  /** Watches a process (every thread of it) from the next start(). */
  attachProcess(pid: number, o: AttachOptions = {}): this {
    if (!Number.isInteger(pid) || pid <= 0 || !existsSync(`/proc/${pid}`)) throw new Error(`attachProcess(${pid}): no such process`);
    if (this.session) throw new Error('attachProcess: stop() the monitor first, then attach, then start() again');
    this.pids.set(pid, o);
    return this;
  }

  /** Loads the modules for the attached processes (every task if none). */
  async start(): Promise<void> {
    if (this.session) return;
    if ([...this.pids.values()].some((o) => o.trackCache)) this.getCacheMetrics(); // throws where it cannot be done
    this.session = HostSession.open({
      modules: this.o.modules ?? ['sched', 'irq', 'memory', 'syscall'],
      target: { pids: [...this.pids.keys()], cpus: this.o.cpus ?? [] },
      outliers: { runqOutlierNs: 20_000, hardIrqOutlierNs: 10_000, softIrqOutlierNs: 10_000, syscallSlowNs: 1_000_000, ...this.o.outliers },
      drainMs: 50,
      onEvent: (e) => {
        if (e.kind === 'runq' && (!this.pids.size || this.pids.has(e.tgid)) && this.listenerCount('spike')) this.emit('spike', this.spike(e, true));
      },
    });
  }

  private need(): HostSession {
    if (!this.session) throw new Error('HostMonitor: start() it first');
    this.session.drain();
    return this.session;
  }

  /** Involuntary switches of the watched tasks (they were runnable and another task took the CPU), at least minDurationUs long. */
  getContextSwitches(o: { minDurationUs?: number } = {}): ContextSwitch[] {
    const s = this.need();
    const events = s.recent();
    const back = new Map<string, HostEvent>(); // the wait that ended each preemption
    for (const e of events) if (e.kind === 'runq') back.set(`${e.pid}@${(e.tsNs - BigInt(e.delayNs)) / 1000n}`, e);
    return events
      .filter((e) => e.kind === 'preempt')
      .map((e) => {
        const end = back.get(`${e.pid}@${e.tsNs / 1000n}`);
        return { atNs: e.tsNs, cpu: e.cpu, pid: e.pid, tgid: e.tgid, comm: e.comm, by: e.other!, durationUs: end ? end.delayNs / 1000 : undefined };
      })
      .filter((c) => !o.minDurationUs || (c.durationUs ?? 0) >= o.minDurationUs);
  }

  /** The watched tasks' waits longer than thresholdUs (run queue, and off-CPU), longest first, with their causes. */
  detectLatencySpikes(o: { thresholdUs: number; includeCauseAnalysis?: boolean }): LatencySpike[] {
    const s = this.need();
    return s
      .recent()
      .filter((e) => (e.kind === 'runq' || e.kind === 'offcpu') && e.delayNs >= o.thresholdUs * 1000 && (!this.pids.size || this.pids.has(e.tgid)))
      .map((e) => this.spike(e, o.includeCauseAnalysis ?? true))
      .sort((a, b) => b.durationUs - a.durationUs);
  }

  private spike(e: HostEvent, causes: boolean): LatencySpike {
    const out: LatencySpike = { atNs: e.tsNs, cpu: e.cpu, pid: e.pid, comm: e.comm, kind: e.kind as 'runq' | 'offcpu', durationUs: e.delayNs / 1000, ...(e.kind === 'offcpu' ? { reason: e.detail } : {}) };
    if (!causes || !this.session) return out;
    const from = e.tsNs - BigInt(e.delayNs);
    const during = this.session.recent().filter((x) => x.tsNs >= from && x.tsNs <= e.tsNs);
    const pre = during.find((x) => x.kind === 'preempt' && x.pid === e.pid && x.tsNs === from) ?? this.session.recent().find((x) => x.kind === 'preempt' && x.pid === e.pid && x.tsNs === from);
    out.causes = {
      ...(pre?.other ? { preemptedBy: { pid: pre.other.pid, comm: pre.other.comm } } : {}),
      irqs: during.filter((x) => x.module === 'irq' && x.cpu === e.cpu).map((x) => ({ what: x.detail ?? x.kind, durationUs: x.delayNs / 1000 })),
      syscalls: during.filter((x) => x.kind === 'syscall' && x.pid === e.pid).map((x) => ({ name: x.detail ?? '', durationUs: x.delayNs / 1000 })),
    };
    return out;
  }

  /** Each thread of a watched process: policy, priority, affinity, CPU time, switches, and its run-queue jitter since start(). */
  getThreadSchedulingInfo(pid: number): ThreadSchedulingInfo[] {
    const s = this.need();
    const runq = (s.probes.get('sched') as SchedProbe | undefined)?.threadRunq() ?? new Map();
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      throw new Error(`getThreadSchedulingInfo(${pid}): no such process`);
    }
    const ticks = 100; // USER_HZ on every Linux architecture latscope runs on
    return tids.flatMap((t) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
        const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'm').exec(status)?.[1]?.trim() ?? '';
        const h = runq.get(Number(t));
        const p = h ? percentiles(h) : undefined;
        const info: ThreadSchedulingInfo = {
          tid: Number(t), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), policy: POLICIES[Number(f[38])] ?? `policy ${f[38]}`,
          priority: Number(f[37]), nice: Number(f[16]), affinity: parseCpuList(field('Cpus_allowed_list')), lastCpu: Number(f[36]),
          cpuTimeUs: ((Number(f[11]) + Number(f[12])) * 1e6) / ticks,
          voluntarySwitches: Number(field('voluntary_ctxt_switches')), involuntarySwitches: Number(field('nonvoluntary_ctxt_switches')),
          ...(p?.count ? { runq: p, schedulingJitterUs: ((p.p99Ns ?? 0) - (p.p50Ns ?? 0)) / 1000 } : {}),
        };
        return [info];
      } catch {
        return []; // the thread ended meanwhile
      }
    });
  }

  /** Where the process's memory sits across NUMA nodes, and each node's hit and miss counters. */
  getNumaStats(pid: number): NumaStats {
    const nodeDirs = existsSync('/sys/devices/system/node') ? readdirSync('/sys/devices/system/node').filter((d) => /^node\d+$/.test(d)) : [];
    if (!nodeDirs.length) throw new UnsupportedError('NUMA statistics: this kernel exposes no NUMA nodes (/sys/devices/system/node)', 'NO_NUMA');
    const pages = new Map<number, number>();
    try {
      for (const line of readFileSync(`/proc/${pid}/numa_maps`, 'utf8').split('\n'))
        for (const m of line.matchAll(/\bN(\d+)=(\d+)/g)) pages.set(Number(m[1]), (pages.get(Number(m[1])) ?? 0) + Number(m[2]));
    } catch {
      throw new Error(`getNumaStats(${pid}): no such process, or /proc/${pid}/numa_maps is not readable`);
    }
    const nodes = nodeDirs.map((d) => {
      const node = Number(d.slice(4));
      const st = readFileSync(`/sys/devices/system/node/${d}/numastat`, 'utf8');
      const g = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(st)?.[1] ?? 0);
      return { node, pages: pages.get(node) ?? 0, numaHit: g('numa_hit'), numaMiss: g('numa_miss'), localNode: g('local_node'), otherNode: g('other_node') };
    });
    const total = nodes.reduce((a, n) => a + n.pages, 0);
    return { nodes, localShare: total ? Math.max(...nodes.map((n) => n.pages)) / total : 1 };
  }

  /** Cache hit and miss rates and TLB misses: hardware PMU events, which this host may not have. */
  getCacheMetrics(): never {
    if (!hasHardwarePmu())
      throw new UnsupportedError('cache and TLB-miss counters need hardware PMU events, and this host has none (no cpu event source in /sys/bus/event_source/devices: a virtual machine without PMU passthrough?)', 'NO_PMU');
    throw new UnsupportedError('cache and TLB-miss counters: hardware PMU events are present, but latscope does not read them yet', 'NOT_IMPLEMENTED');
  }

  /** The same report as `latscope host --json`, for the run so far. */
  report(thresholds: Partial<Thresholds> = {}): HostReport {
    const s = this.need();
    return buildReport(s, s.snapshot(), (Date.now() - s.startedAtMs) / 1000, { ...DEFAULT_THRESHOLDS, ...this.o.thresholds, ...thresholds });
  }

  /** Detaches every probe. */
  stop(): void {
    this.session?.close();
    this.session = undefined;
  }
}
