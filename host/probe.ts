/**
 * What every host-jitter module shares: the target (which tasks and CPUs it watches), the event
 * that leaves the kernel for an outlier, and the base class of a loaded module (its BPF object,
 * its ring of outliers drained on demand, the count of outliers the full ring dropped).
 */
import { statSync } from 'node:fs';
import { BpfObject, forEachRecord, possibleCpus, type OpenOptions, type RingReader } from '../native/addon.js';
import { C_RING_FULL, SCHED_MAX_CPUS, type HostModuleName } from '../protocol/host.js';

/** Which tasks and CPUs the modules watch. Empty lists mean everything. */
export interface HostTarget {
  /** Processes (every thread of each). */
  pids: number[];
  /** Single threads (the syscall module). */
  tids: number[];
  /** cgroup v2 directories, e.g. a container's (the syscall module). */
  cgroups: string[];
  /** CPUs whose isolation is checked (the sched and irq verdicts). */
  cpus: number[];
}

export const everything = (): HostTarget => ({ pids: [], tids: [], cgroups: [], cpus: [] });

/** One outlier, as it left the kernel. */
export interface HostEvent {
  module: HostModuleName;
  /** runq, preempt, migrate, offcpu (sched); hardirq, softirq (irq); compaction, reclaim (memory); syscall. */
  kind: string;
  /** CLOCK_MONOTONIC of the host, ns. */
  tsNs: bigint;
  /** How long it lasted, ns (0 for a migration). */
  delayNs: number;
  cpu: number;
  pid: number;
  tgid: number;
  comm: string;
  /** The other task: the one that took the CPU, or ran before. */
  other?: { pid: number; tgid: number; comm: string };
  /** What it was: the syscall's or IRQ's name, the off-CPU reason, the destination CPU. */
  detail?: string;
  /** delayNs is to within this either way (a syscall not timed with the clock: one kernel tick); absent: to the ns. */
  withinNs?: number;
}

/** A C string of a fixed-size field. */
export const cString = (buf: Buffer, offset: number, size: number): string => {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + size ? offset + size : end);
};

/** The CPU list syntax of the kernel (0-3,8,10-11) as numbers. */
export function parseCpuList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.trim().split(',').filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`CPU list "${text}": "${part}" is not a CPU or a range (examples: 3, 4-7, 0-1,6)`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw new Error(`CPU list "${text}": ${part} runs backwards`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

/** A cgroup v2 directory's id (its inode number), as bpf_get_current_cgroup_id() gives it. */
export function cgroupId(path: string): bigint {
  try {
    return statSync(path, { bigint: true }).ino;
  } catch (e) {
    throw new Error(`cgroup ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such cgroup directory (give its path under /sys/fs/cgroup)' : (e as Error).message}`);
  }
}

/** A loaded and attached module. */
export abstract class HostProbe {
  private readonly batch = Buffer.alloc(256 << 10);
  private readonly ring?: RingReader;

  protected constructor(
    readonly name: HostModuleName,
    protected readonly bpf: BpfObject,
    ringName?: string,
  ) {
    this.ring = ringName ? bpf.ring(ringName) : undefined;
  }

  /** Opens, checks the layouts, loads and attaches every program of NAME.bpf.o; nothing stays attached on failure. */
  protected static load(name: HostModuleName, opts: OpenOptions): BpfObject {
    const bpf = BpfObject.open(name, opts);
    try {
      for (const p of bpf.programs()) bpf.attach(p.name);
    } catch (e) {
      bpf.close();
      throw e;
    }
    return bpf;
  }

  /** Writes the watched tasks into a filter map (u32 key, u8 value). */
  protected static fill(bpf: BpfObject, map: string, ids: number[]): void {
    const m = bpf.map(map);
    for (const id of ids) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(id);
      m.update(k, Buffer.from([1]));
    }
  }

  /** Hands every outlier waiting in the ring to onEvent, decoded. */
  drain(onEvent: (e: HostEvent) => void): void {
    if (!this.ring) return;
    for (;;) {
      const [n, used] = this.ring.drainInto(this.batch);
      if (!n) return;
      forEachRecord(this.batch, used, (off, len) => {
        const e = this.decode(this.batch, off, len);
        if (e) onEvent(e);
      });
    }
  }

  protected decode(_buf: Buffer, _off: number, _len: number): HostEvent | undefined {
    return undefined;
  }

  /** Outliers lost because the ring was full. */
  ringDrops(): number {
    return this.bpf.maps().some((m) => m.name === 'counters') ? Number(this.bpf.map('counters').u64At(C_RING_FULL)) : 0;
  }

  /** Run count and time of each program (with bpf_stats on). */
  programStats(): { program: string; runs: number; runNs: number }[] {
    return this.bpf.programs().map((p) => {
      const s = this.bpf.programStats(p.name);
      return { program: p.name, runs: Number(s.runCount), runNs: Number(s.runTimeNs) };
    });
  }

  close(): void {
    this.bpf.close();
  }
}

/** The watched-CPU bitmap setting of the sched module. */
export function cpuMask(cpus: number[]): Buffer {
  const mask = Buffer.alloc(SCHED_MAX_CPUS / 8);
  for (const c of cpus) {
    if (c < 0 || c >= SCHED_MAX_CPUS) throw new Error(`CPU ${c}: out of range 0-${SCHED_MAX_CPUS - 1}`);
    mask[c >> 3]! |= 1 << (c & 7);
  }
  return mask;
}

/** CPUs this kernel may bring online. */
export const cpuCount = (): number => possibleCpus();
