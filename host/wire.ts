/** A session's snapshot and outliers as the rows of protocol/host.ts, for Redis and MySQL. */
import type { HostEventRow, HostStatRow } from '../protocol/host.js';
import { OFF_REASONS } from '../protocol/host.js';
import { percentiles, type Histogram } from './hist.js';
import type { HostEvent } from './probe.js';
import type { HostSnapshot } from './session.js';

function histRow(module: HostStatRow['module'], metric: string, key: string, h: Histogram, errors: number | null = null): HostStatRow {
  const p = percentiles(h);
  return { module, metric, key, count: h.count, sumNs: h.sumNs, maxNs: h.count ? h.maxNs : null, p50Ns: p.p50Ns, p99Ns: p.p99Ns, p99999Ns: p.p99999Ns, errors };
}

const countRow = (module: HostStatRow['module'], metric: string, key: string, count: number): HostStatRow => ({ module, metric, key, count, sumNs: null, maxNs: null, p50Ns: null, p99Ns: null, p99999Ns: null, errors: null });

/** Every figure of a snapshot as rows (empty histograms and zero counters left out). */
export function statRows(s: HostSnapshot): HostStatRow[] {
  const out: HostStatRow[] = [];
  for (const c of s.sched?.cpus ?? []) {
    const k = String(c.cpu);
    if (c.runq.count) out.push(histRow('sched', 'runq', k, c.runq));
    if (c.switches) out.push(countRow('sched', 'switches', k, c.switches), countRow('sched', 'involuntary', k, c.involuntary));
    if (c.watchedPreempted) out.push(countRow('sched', 'watched_preempted', k, c.watchedPreempted));
    if (c.migrationsIn) out.push(countRow('sched', 'migrations_in', k, c.migrationsIn));
  }
  for (const r of OFF_REASONS) if (s.sched?.offcpu[r].count) out.push(histRow('sched', `offcpu_${r}`, '', s.sched.offcpu[r]));
  for (const h of s.irq?.hard ?? []) for (const [cpu, x] of h.byCpu) out.push(histRow('irq', 'hardirq', `${h.irq}:${h.name}:${cpu}`, x));
  for (const x of s.irq?.soft ?? []) out.push(histRow('irq', 'softirq', `${x.vector}:${x.cpu}`, x.hist));
  if (s.memory) {
    const m = s.memory;
    out.push(countRow('memory', 'faults_minor', '', m.faults.minor), countRow('memory', 'faults_major', '', m.faults.major));
    for (const [r, n] of Object.entries(m.tlb)) if (n) out.push(countRow('memory', `tlb_${r}`, '', n));
    for (const [k, h] of Object.entries(m.stalls)) if (h.count) out.push(histRow('memory', `stall_${k}`, '', h));
  }
  // the count is every call; the sum and percentiles come from the timed ones (host/syscall.ts)
  for (const x of s.syscall ?? []) out.push({ ...histRow('syscall', x.name, String(x.nr), x.hist, x.errors), count: x.count, maxNs: x.hist.maxNs || null });
  for (const d of s.block ?? []) out.push(histRow('block', d.write ? 'write' : 'read', d.device, d.hist));
  return out;
}

export const eventRow = (e: HostEvent): HostEventRow => ({
  tsNs: e.tsNs.toString(), kind: e.kind, cpu: e.cpu, pid: e.pid, tgid: e.tgid, comm: e.comm, delayNs: e.delayNs,
  otherPid: e.other?.pid ?? null, otherComm: e.other?.comm ?? null, detail: e.detail ?? null,
});
