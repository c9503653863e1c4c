/**
 * One measurement on this host: the chosen modules loaded and attached for a target, their
 * outliers drained on a timer into bounded lists (every one counted by kind, the worst kept,
 * the newest kept for cause analysis), and snapshots of their in-kernel statistics. A module the
 * kernel cannot run is named with the reason, and the others go on. close() detaches everything.
 */
import { BpfError, enableBpfStats } from '../native/addon.js';
import { HOST_MODULES, type HostModuleName } from '../protocol/host.js';
import { BlockProbe, type BlockDevice } from './block.js';
import { IrqProbe, type IrqSnapshot } from './irq.js';
import { FaultTracker, MemoryProbe, type FaultCounts, type MemorySnapshot } from './memory.js';
import { everything, type HostEvent, type HostProbe, type HostTarget } from './probe.js';
import { SchedProbe, type SchedSnapshot } from './sched.js';
import { DEFAULT_SYSCALL_TIME_EVERY, SyscallProbe, type SyscallStat } from './syscall.js';

/** Where an event counts as an outlier and leaves the kernel. */
export interface OutlierThresholds {
  runqOutlierNs: number;
  offcpuOutlierNs: number;
  hardIrqOutlierNs: number;
  softIrqOutlierNs: number;
  stallOutlierNs: number;
  syscallSlowNs: number;
}

export const DEFAULT_OUTLIERS: OutlierThresholds = {
  runqOutlierNs: 100_000,
  offcpuOutlierNs: 10_000_000,
  hardIrqOutlierNs: 50_000,
  softIrqOutlierNs: 500_000,
  stallOutlierNs: 1_000_000,
  syscallSlowNs: 10_000_000,
};

export interface SessionOptions {
  modules?: readonly HostModuleName[];
  target?: Partial<HostTarget>;
  outliers?: Partial<OutlierThresholds>;
  /** Worst events kept per kind. */
  keepWorst?: number;
  /** Newest events kept (for cause analysis). */
  keepRecent?: number;
  /** Milliseconds between drains of the rings. */
  drainMs?: number;
  /** Count each program's runs and time (bpf_stats). */
  bpfStats?: boolean;
  /** Called with every outlier as it is drained. */
  onEvent?: (e: HostEvent) => void;
  /** The syscall module times one call in this many, at random (1: every call; default 32). Every call is counted either way. */
  syscallTimeEvery?: number;
}

export interface HostSnapshot {
  sched?: SchedSnapshot;
  irq?: IrqSnapshot;
  memory?: MemorySnapshot & { faults: FaultCounts };
  syscall?: SyscallStat[];
  /** How the syscall module timed: one call in timedOneIn; displaced calls were counted, not timed. */
  syscallTiming?: { timedOneIn: number; displaced: number };
  block?: BlockDevice[];
}

export class HostSession {
  readonly target: HostTarget;
  readonly outliers: OutlierThresholds;
  readonly probes = new Map<HostModuleName, HostProbe>();
  /** Modules that could not run here, with the reason. */
  readonly unavailable: { module: HostModuleName; reason: string }[] = [];
  /** Events seen per kind (all of them, kept or not). */
  readonly eventCounts = new Map<string, number>();
  private readonly worst = new Map<string, HostEvent[]>();
  private readonly recentEvents: HostEvent[] = [];
  private timer?: NodeJS.Timeout;
  private stopStats?: () => void;
  private faults?: FaultTracker;
  readonly startedAtMs = Date.now();
  private readonly o: Required<Omit<SessionOptions, 'target' | 'outliers' | 'onEvent'>>;
  private readonly onEvent?: (e: HostEvent) => void;

  private constructor(o: SessionOptions) {
    this.target = { ...everything(), ...o.target };
    this.outliers = { ...DEFAULT_OUTLIERS, ...o.outliers };
    this.onEvent = o.onEvent;
    this.o = { modules: o.modules ?? HOST_MODULES, keepWorst: o.keepWorst ?? 20, keepRecent: o.keepRecent ?? 10_000, drainMs: o.drainMs ?? 100, bpfStats: o.bpfStats ?? false, syscallTimeEvery: o.syscallTimeEvery ?? DEFAULT_SYSCALL_TIME_EVERY };
  }

  /** Loads and attaches the modules; throws only if none can run (each failure named). */
  static open(o: SessionOptions = {}): HostSession {
    const s = new HostSession(o);
    for (const m of new Set(s.o.modules)) {
      if (!HOST_MODULES.includes(m)) throw new Error(`host module "${m}": unknown; choose from ${HOST_MODULES.join(', ')}`);
      try {
        s.probes.set(m, s.openModule(m));
      } catch (e) {
        if (!(e instanceof BpfError)) {
          s.close();
          throw e;
        }
        s.unavailable.push({ module: m, reason: e.message });
      }
    }
    if (!s.probes.size) {
      const why = s.unavailable.map((u) => `${u.module}: ${u.reason}`).join('; ');
      throw new Error(`no host module could run on this kernel: ${why}`);
    }
    if (s.o.bpfStats) s.stopStats = enableBpfStats();
    if (s.probes.has('memory')) s.faults = new FaultTracker(s.target.pids);
    s.timer = setInterval(() => s.drain(), s.o.drainMs);
    return s;
  }

  private openModule(m: HostModuleName): HostProbe {
    const t = this.target, x = this.outliers;
    switch (m) {
      case 'sched':
        return SchedProbe.open(t, { runqOutlierNs: x.runqOutlierNs, offcpuOutlierNs: x.offcpuOutlierNs });
      case 'irq':
        return IrqProbe.open({ hardOutlierNs: x.hardIrqOutlierNs, softOutlierNs: x.softIrqOutlierNs });
      case 'memory':
        return MemoryProbe.open(t, { stallOutlierNs: x.stallOutlierNs });
      case 'syscall':
        return SyscallProbe.open(t, { slowNs: x.syscallSlowNs, timeEvery: this.o.syscallTimeEvery });
      case 'block':
        return BlockProbe.open();
    }
  }

  /** Takes the outliers waiting in every ring. */
  drain(): void {
    for (const p of this.probes.values()) p.drain((e) => this.keep(e));
    this.faults?.tick();
  }

  private keep(e: HostEvent): void {
    this.eventCounts.set(e.kind, (this.eventCounts.get(e.kind) ?? 0) + 1);
    const w = this.worst.get(e.kind) ?? [];
    if (w.length < this.o.keepWorst || e.delayNs > w[w.length - 1]!.delayNs) {
      w.push(e);
      w.sort((a, b) => b.delayNs - a.delayNs);
      if (w.length > this.o.keepWorst) w.pop();
      this.worst.set(e.kind, w);
    }
    this.recentEvents.push(e);
    if (this.recentEvents.length > this.o.keepRecent) this.recentEvents.splice(0, this.recentEvents.length - this.o.keepRecent);
    this.onEvent?.(e);
  }

  /** The worst events of a kind, longest first. */
  worstEvents(kind: string): HostEvent[] {
    return this.worst.get(kind) ?? [];
  }

  /** The newest events (at most keepRecent), oldest first. */
  recent(): readonly HostEvent[] {
    return this.recentEvents;
  }

  /** Outliers lost to a full ring, per module. */
  ringDrops(): Record<string, number> {
    return Object.fromEntries([...this.probes].map(([m, p]) => [m, p.ringDrops()]));
  }

  /** The in-kernel statistics as they are now (since open). */
  snapshot(): HostSnapshot {
    this.drain();
    const s: HostSnapshot = {};
    const p = this.probes;
    if (p.has('sched')) s.sched = (p.get('sched') as SchedProbe).snapshot();
    if (p.has('irq')) s.irq = (p.get('irq') as IrqProbe).snapshot();
    if (p.has('memory')) {
      const m = (p.get('memory') as MemoryProbe).snapshot(this.target.cpus);
      const k = this.faults?.since() ?? { minor: 0, major: 0 };
      // the probe sees every fault, also the last ones of a process that ended between two reads of /proc
      s.memory = { ...m, faults: { major: k.major, minor: Math.max(k.minor, m.faultsUser + m.faultsKernel - k.major) } };
    }
    if (p.has('syscall')) {
      const sys = p.get('syscall') as SyscallProbe;
      s.syscall = sys.snapshot();
      s.syscallTiming = { timedOneIn: sys.timeEvery, displaced: sys.displaced() };
    }
    if (p.has('block')) s.block = (p.get('block') as BlockProbe).snapshot();
    return s;
  }

  /** Each program's runs and mean time (bpfStats). */
  programStats(): { module: HostModuleName; program: string; runs: number; runNs: number }[] {
    return [...this.probes].flatMap(([module, p]) => p.programStats().map((s) => ({ module, ...s })));
  }

  /** Detaches and unloads every module. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const p of this.probes.values()) p.close();
    this.probes.clear();
    this.stopStats?.();
  }
}
