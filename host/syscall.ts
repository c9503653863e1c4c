/**
 * The syscall module (bpf/syscall.bpf.c): per syscall, by name, count, errors, mean, maximum and
 * a log2 histogram, for the tasks chosen in the kernel by process, thread or cgroup; the slow
 * calls as events.
 */
import { SYS_EVENT, SYS_MAX, SYS_SLOTS, SYS_STAT } from '../protocol/host.js';
import { emptyHistogram, type Histogram } from './hist.js';
import { cgroupId, cString, HostProbe, type HostEvent, type HostTarget } from './probe.js';
import { syscallName } from './syscall-names.js';

export interface SyscallThresholds {
  /** A call this long leaves the kernel as an event. */
  slowNs: number;
}

export interface SyscallStat {
  nr: number;
  name: string;
  count: number;
  errors: number;
  hist: Histogram;
}

const S = SYS_STAT.offsets;
const E = SYS_EVENT.offsets;

export class SyscallProbe extends HostProbe {
  private constructor(bpf: ReturnType<typeof HostProbe['load']>) {
    super('syscall', bpf, 'events');
  }

  static open(target: HostTarget, t: SyscallThresholds): SyscallProbe {
    const all = !target.pids.length && !target.tids.length && !target.cgroups.length;
    const cgroups = target.cgroups.map(cgroupId);
    const bpf = HostProbe.load('syscall', { settings: { watch_all_tasks: all, slow_ns: BigInt(Math.round(t.slowNs)) }, layouts: [SYS_EVENT] });
    HostProbe.fill(bpf, 'watch_tgid', target.pids);
    HostProbe.fill(bpf, 'watch_tid', target.tids);
    const cg = bpf.map('watch_cgroup');
    for (const id of cgroups) {
      const k = Buffer.alloc(8);
      k.writeBigUInt64LE(id);
      cg.update(k, Buffer.from([1]));
    }
    return new SyscallProbe(bpf);
  }

  /** Every syscall that was made, busiest first. */
  snapshot(): SyscallStat[] {
    const m = this.bpf.map('stats');
    const out: SyscallStat[] = [];
    const k = Buffer.alloc(4);
    for (let nr = 0; nr < SYS_MAX; nr++) {
      k.writeUInt32LE(nr);
      const v = m.lookup(k);
      if (!v) continue;
      const h = emptyHistogram('log2', SYS_SLOTS);
      let errors = 0;
      for (const c of m.perCpuValues(v)) {
        const n = Number(c.readBigUInt64LE(S.count));
        if (!n) continue;
        h.count += n;
        errors += Number(c.readBigUInt64LE(S.errors));
        h.sumNs += Number(c.readBigUInt64LE(S.sum_ns));
        h.maxNs = Math.max(h.maxNs, Number(c.readBigUInt64LE(S.max_ns)));
        for (let i = 0; i < SYS_SLOTS; i++) h.slots[i]! += Number(c.readBigUInt64LE(S.slot + 8 * i));
      }
      if (h.count) out.push({ nr, name: syscallName(nr), count: h.count, errors, hist: h });
    }
    return out.sort((a, b) => b.hist.sumNs - a.hist.sumNs);
  }

  protected override decode(b: Buffer, o: number, len: number): HostEvent | undefined {
    if (len < SYS_EVENT.size) return undefined;
    const ret = b.readBigInt64LE(o + E.ret);
    return {
      module: 'syscall', kind: 'syscall', tsNs: b.readBigUInt64LE(o + E.ts_ns), delayNs: Number(b.readBigUInt64LE(o + E.delay_ns)),
      cpu: b.readUInt32LE(o + E.cpu), pid: b.readUInt32LE(o + E.pid), tgid: b.readUInt32LE(o + E.tgid), comm: cString(b, o + E.comm, 16),
      detail: `${syscallName(b.readUInt32LE(o + E.nr))}${ret < 0n ? ` (error ${-ret})` : ''}`,
    };
  }
}
