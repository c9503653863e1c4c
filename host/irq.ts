/**
 * The interrupt module (bpf/irq.bpf.c): hard IRQ handler time per IRQ and CPU, soft IRQ time per
 * vector and CPU, the slow ones as events; and from /proc, each IRQ's name and the CPUs it may
 * land on (smp_affinity), to tell which ones can reach an isolated CPU and how to move them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { IRQ_EV, IRQ_EVENT, IRQ_SOFTIRQS, SOFTIRQ_NAMES } from '../protocol/host.js';
import { decodeHist, emptyHistogram, mergeHist, type Histogram } from './hist.js';
import { cpuCount, cString, HostProbe, parseCpuList, type HostEvent } from './probe.js';

export interface IrqThresholds {
  hardOutlierNs: number;
  softOutlierNs: number;
}

export interface HardIrq {
  irq: number;
  /** The device or handler names of /proc/interrupts. */
  name: string;
  /** Handler time per CPU where it ran. */
  byCpu: Map<number, Histogram>;
  total: Histogram;
  /** CPUs it lands on (/proc/irq/N/effective_affinity_list, else smp_affinity_list; empty: unknown). */
  affinity: number[];
}

export interface IrqSnapshot {
  hard: HardIrq[];
  /** Soft IRQ time per vector name, per CPU. */
  soft: { vector: string; cpu: number; hist: Histogram }[];
}

const E = IRQ_EVENT.offsets;

/** IRQ number → the names /proc/interrupts gives it. */
export function irqNames(): Map<number, string> {
  const out = new Map<number, string>();
  try {
    const lines = readFileSync('/proc/interrupts', 'utf8').split('\n');
    const cpus = (lines[0] ?? '').trim().split(/\s+/).length;
    for (const line of lines.slice(1)) {
      const m = /^\s*(\d+):\s*(.*)$/.exec(line);
      if (!m) continue;
      const rest = m[2]!.trim().split(/\s+/).slice(cpus);
      out.set(Number(m[1]), rest.slice(-1)[0] ?? '');
    }
  } catch {
    /* no /proc/interrupts: numbers only */
  }
  return out;
}

/** The CPUs an IRQ may be delivered to, or [] if the kernel does not say. */
export function irqAffinity(irq: number): number[] {
  for (const file of ['effective_affinity_list', 'smp_affinity_list']) // where it lands, else where it may
    try {
      return parseCpuList(readFileSync(`/proc/irq/${irq}/${file}`, 'utf8'));
    } catch {
      /* next */
    }
  return [];
}

/** Every IRQ with an affinity file (they can be moved). */
export function movableIrqs(): number[] {
  try {
    return readdirSync('/proc/irq').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** The hexadecimal mask /proc/irq/N/smp_affinity takes for these CPUs (comma-separated 32-bit words). */
export function affinityMask(cpus: number[]): string {
  const words = new Array<number>(Math.max(1, Math.ceil((Math.max(0, ...cpus) + 1) / 32))).fill(0);
  for (const c of cpus) words[c >> 5]! |= 1 << (c & 31);
  return words.reverse().map((w, i) => (w >>> 0).toString(16).padStart(i === 0 ? 1 : 8, '0')).join(',');
}

export class IrqProbe extends HostProbe {
  private constructor(bpf: ReturnType<typeof HostProbe['load']>) {
    super('irq', bpf, 'events');
  }

  static open(t: IrqThresholds): IrqProbe {
    return new IrqProbe(
      HostProbe.load('irq', {
        settings: { hard_outlier_ns: BigInt(Math.round(t.hardOutlierNs)), soft_outlier_ns: BigInt(Math.round(t.softOutlierNs)) },
        maxEntries: { soft: cpuCount() * IRQ_SOFTIRQS },
        layouts: [IRQ_EVENT],
      }),
    );
  }

  snapshot(): IrqSnapshot {
    const names = irqNames();
    const hard = new Map<number, HardIrq>();
    const m = this.bpf.map('hard');
    for (const k of m.keys()) {
      const irq = k.readUInt32LE(0), cpu = k.readUInt32LE(4);
      const v = m.lookup(k);
      if (!v) continue;
      const h = decodeHist(v);
      const e = hard.get(irq) ?? { irq, name: names.get(irq) ?? '', byCpu: new Map(), total: emptyHistogram(), affinity: irqAffinity(irq) };
      e.byCpu.set(cpu, h);
      e.total = mergeHist(e.total, h);
      hard.set(irq, e);
    }
    const soft: IrqSnapshot['soft'] = [];
    const s = this.bpf.map('soft');
    for (let cpu = 0; cpu < cpuCount(); cpu++)
      for (let vec = 0; vec < IRQ_SOFTIRQS; vec++) {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(cpu * IRQ_SOFTIRQS + vec);
        const v = s.lookup(k);
        const h = v ? decodeHist(v) : undefined;
        if (h?.count) soft.push({ vector: SOFTIRQ_NAMES[vec]!, cpu, hist: h });
      }
    return { hard: [...hard.values()].sort((a, b) => a.irq - b.irq), soft };
  }

  protected override decode(b: Buffer, o: number, len: number): HostEvent | undefined {
    if (len < IRQ_EVENT.size) return undefined;
    const hardIrq = b.readUInt32LE(o + E.kind) === IRQ_EV.HARD;
    const id = b.readUInt32LE(o + E.id);
    const pid = b.readUInt32LE(o + E.pid);
    return {
      module: 'irq', kind: hardIrq ? 'hardirq' : 'softirq', tsNs: b.readBigUInt64LE(o + E.ts_ns), delayNs: Number(b.readBigUInt64LE(o + E.delay_ns)),
      cpu: b.readUInt32LE(o + E.cpu), pid, tgid: 0, comm: pid === 0 ? 'idle' : cString(b, o + E.comm, 16),
      detail: hardIrq ? `IRQ ${id}${irqNames().get(id) ? ` (${irqNames().get(id)})` : ''}` : `${SOFTIRQ_NAMES[id] ?? `vector ${id}`}`,
    };
  }
}
