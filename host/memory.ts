/**
 * The memory module (bpf/memory.bpf.c): page faults of the watched tasks, TLB flushes by reason
 * (remote ones are shootdowns), direct compaction and reclaim stalls. Minor and major faults are
 * told apart here from the kernel's own counters: /proc/PID/stat of the watched processes, or
 * /proc/vmstat for the whole host.
 */
import { readFileSync } from 'node:fs';
import { MEM_CPU, MEM_EVENT, MEM_STALLS, TLB_REASONS } from '../protocol/host.js';
import { decodeHist, emptyHistogram, type Histogram } from './hist.js';
import { cString, HostProbe, type HostEvent, type HostTarget } from './probe.js';

export interface MemoryThresholds {
  /** A compaction or reclaim stall this long leaves the kernel as an event. */
  stallOutlierNs: number;
}

/** Minor and major faults so far: of the given processes, or of the whole host. */
export interface FaultCounts {
  minor: number;
  major: number;
}

export interface MemorySnapshot {
  /** Faults seen by the probe (watched tasks), user and kernel mode. */
  faultsUser: number;
  faultsKernel: number;
  /** TLB flushes by reason on the watched CPUs (every CPU when none), and the pages they covered. */
  tlb: Record<(typeof TLB_REASONS)[number], number>;
  tlbPages: number;
  stalls: Record<(typeof MEM_STALLS)[number], Histogram>;
}

const C = MEM_CPU.offsets;
const E = MEM_EVENT.offsets;

/** The kernel's fault counters of one process (children that ended included), or undefined once it is gone. */
export function processFaults(pid: number): FaultCounts | undefined {
  try {
    // after the command (which may hold spaces and parentheses): minflt cminflt majflt cmajflt are fields 10-13
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { minor: Number(f[7]) + Number(f[8]), major: Number(f[9]) + Number(f[10]) };
  } catch {
    return undefined;
  }
}

/** The host's fault counters (/proc/vmstat). */
export function hostFaults(): FaultCounts {
  const vm = readFileSync('/proc/vmstat', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(vm)?.[1] ?? 0);
  return { minor: get('pgfault') - get('pgmajfault'), major: get('pgmajfault') };
}

/**
 * Faults since it started: of the watched processes (read on every tick, so a process that ends
 * keeps what it had), or of the whole host.
 */
export class FaultTracker {
  private readonly first = new Map<number, FaultCounts>();
  private readonly last = new Map<number, FaultCounts>();
  private readonly hostFirst?: FaultCounts;

  constructor(private readonly pids: number[]) {
    if (!pids.length) this.hostFirst = hostFaults();
    this.tick();
  }

  tick(): void {
    for (const pid of this.pids) {
      const f = processFaults(pid);
      if (!f) continue;
      if (!this.first.has(pid)) this.first.set(pid, f);
      this.last.set(pid, f);
    }
  }

  since(): FaultCounts {
    if (this.hostFirst) {
      const now = hostFaults();
      return { minor: now.minor - this.hostFirst.minor, major: now.major - this.hostFirst.major };
    }
    this.tick();
    let minor = 0, major = 0;
    for (const [pid, a] of this.first) {
      const b = this.last.get(pid)!;
      minor += b.minor - a.minor;
      major += b.major - a.major;
    }
    return { minor, major };
  }
}

export class MemoryProbe extends HostProbe {
  private constructor(bpf: ReturnType<typeof HostProbe['load']>) {
    super('memory', bpf, 'events');
  }

  static open(target: HostTarget, t: MemoryThresholds): MemoryProbe {
    const bpf = HostProbe.load('memory', {
      settings: { watch_all_tasks: target.pids.length === 0, stall_outlier_ns: BigInt(Math.round(t.stallOutlierNs)) },
      layouts: [MEM_EVENT],
    });
    HostProbe.fill(bpf, 'watch_tgid', target.pids);
    return new MemoryProbe(bpf);
  }

  /** TLB flushes count on the given CPUs only (a remote shootdown counts on the CPU it stopped); faults everywhere. */
  snapshot(cpus: number[] = []): MemorySnapshot {
    const m = this.bpf.map('cpu_stats');
    const v = m.lookup(Buffer.alloc(4));
    let faultsUser = 0, faultsKernel = 0, tlbPages = 0;
    const tlb = Object.fromEntries(TLB_REASONS.map((r) => [r, 0])) as MemorySnapshot['tlb'];
    for (const [cpu, c] of (v ? m.perCpuValues(v) : []).entries()) {
      faultsUser += Number(c.readBigUInt64LE(C.faults_user));
      faultsKernel += Number(c.readBigUInt64LE(C.faults_kernel));
      if (cpus.length && !cpus.includes(cpu)) continue;
      tlbPages += Number(c.readBigUInt64LE(C.tlb_pages));
      TLB_REASONS.forEach((r, i) => (tlb[r] += Number(c.readBigUInt64LE(C.tlb + 8 * i))));
    }
    const s = this.bpf.map('stalls');
    const stalls = Object.fromEntries(
      MEM_STALLS.map((name, i) => {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(i);
        const h = s.lookup(k);
        return [name, h ? decodeHist(h) : emptyHistogram()];
      }),
    ) as MemorySnapshot['stalls'];
    return { faultsUser, faultsKernel, tlb, tlbPages, stalls };
  }

  protected override decode(b: Buffer, o: number, len: number): HostEvent | undefined {
    if (len < MEM_EVENT.size) return undefined;
    return {
      module: 'memory', kind: MEM_STALLS[b.readUInt32LE(o + E.kind)] ?? 'stall', tsNs: b.readBigUInt64LE(o + E.ts_ns), delayNs: Number(b.readBigUInt64LE(o + E.delay_ns)),
      cpu: b.readUInt32LE(o + E.cpu), pid: b.readUInt32LE(o + E.pid), tgid: b.readUInt32LE(o + E.tgid), comm: cString(b, o + E.comm, 16),
    };
  }
}
