/**
 * Prometheus metrics of the host-jitter modules, read from their maps at scrape time: run-queue
 * latency per CPU, context switches, hard and soft IRQ time, faults, TLB flushes, memory stalls,
 * syscall latency (the 30 busiest, to bound the label set), block I/O latency.
 */
import type { Registry } from 'prom-client';
import { slotBounds, type Histogram } from './hist.js';
import type { HostSnapshot } from './session.js';

type Value = { value: number; labels?: Record<string, string | number>; metricName?: string };

function metric(r: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[]): void {
  r.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }) } as never);
}

/** A histogram's cumulative buckets at powers of two (every fourth log-linear bucket, every log2 one). */
function buckets(name: string, h: Histogram, labels: Record<string, string | number>): Value[] {
  const out: Value[] = [];
  let cum = 0;
  h.slots.forEach((c, i) => {
    cum += c;
    const [, hi] = slotBounds(i, h.bucketing);
    if (Number.isInteger(Math.log2(hi)) && hi >= 1024) out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: (hi * 1e-9).toPrecision(6) }, value: cum });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sumNs * 1e-9 });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

export function registerHostMetrics(r: Registry, snapshot: () => HostSnapshot | undefined): void {
  let cached: { at: number; s: HostSnapshot | undefined } = { at: 0, s: undefined };
  const snap = () => {
    // one read of the maps per scrape, shared by every metric below
    if (Date.now() - cached.at > 500) cached = { at: Date.now(), s: snapshot() };
    return cached.s;
  };
  metric(r, 'latscope_host_runq_seconds', 'Run-queue latency per CPU: runnable to running (wake-ups and preemptions)', 'histogram', () =>
    (snap()?.sched?.cpus ?? []).flatMap((c) => buckets('latscope_host_runq_seconds', c.runq, { cpu: c.cpu })),
  );
  metric(r, 'latscope_host_context_switches_total', 'Context switches per CPU, by kind: all, involuntary (the task was still runnable), watched_preempted', 'counter', () =>
    (snap()?.sched?.cpus ?? []).flatMap((c) => [
      { value: c.switches, labels: { cpu: c.cpu, kind: 'all' } },
      { value: c.involuntary, labels: { cpu: c.cpu, kind: 'involuntary' } },
      { value: c.watchedPreempted, labels: { cpu: c.cpu, kind: 'watched_preempted' } },
    ]),
  );
  metric(r, 'latscope_host_hardirq_seconds', 'Hard IRQ handler time per IRQ and CPU', 'histogram', () =>
    (snap()?.irq?.hard ?? []).flatMap((h) => [...h.byCpu].flatMap(([cpu, x]) => buckets('latscope_host_hardirq_seconds', x, { irq: h.irq, name: h.name, cpu }))),
  );
  metric(r, 'latscope_host_softirq_seconds', 'Soft IRQ time per vector and CPU', 'histogram', () =>
    (snap()?.irq?.soft ?? []).flatMap((s) => buckets('latscope_host_softirq_seconds', s.hist, { vector: s.vector, cpu: s.cpu })),
  );
  metric(r, 'latscope_host_page_faults_total', 'Page faults of the watched tasks, minor and major', 'counter', () => {
    const m = snap()?.memory;
    return m ? [{ value: m.faults.minor, labels: { type: 'minor' } }, { value: m.faults.major, labels: { type: 'major' } }] : [];
  });
  metric(r, 'latscope_host_tlb_flushes_total', 'TLB flushes by reason (remote_shootdown: an IPI stopped this CPU)', 'counter', () =>
    Object.entries(snap()?.memory?.tlb ?? {}).map(([reason, value]) => ({ value, labels: { reason } })),
  );
  metric(r, 'latscope_host_memory_stall_seconds', 'Direct compaction and direct reclaim stalls', 'histogram', () =>
    Object.entries(snap()?.memory?.stalls ?? {}).flatMap(([kind, h]) => buckets('latscope_host_memory_stall_seconds', h, { kind })),
  );
  metric(r, 'latscope_host_syscall_seconds', 'Syscall latency by name (the 30 busiest): each syscall\'s first 1024 calls on a CPU timed, then one in N at random weighted by N (an estimate of every call; latscope host --syscall-every)', 'histogram', () =>
    (snap()?.syscall ?? []).slice().sort((a, b) => b.count - a.count).slice(0, 30).flatMap((s) => buckets('latscope_host_syscall_seconds', s.hist, { syscall: s.name })),
  );
  metric(r, 'latscope_host_syscalls_total', 'Syscalls made, by name (the 30 busiest): every call, exact', 'counter', () =>
    (snap()?.syscall ?? []).slice().sort((a, b) => b.count - a.count).slice(0, 30).map((s) => ({ value: s.count, labels: { syscall: s.name } })),
  );
  metric(r, 'latscope_host_syscall_errors_total', 'Syscalls that returned an error, by name (the 30 busiest)', 'counter', () =>
    (snap()?.syscall ?? []).slice().sort((a, b) => b.count - a.count).slice(0, 30).map((s) => ({ value: s.errors, labels: { syscall: s.name } })),
  );
  metric(r, 'latscope_host_untimed_total', 'Events counted but not timed: another task took their in-flight slot (sched: run-queue waits; syscall: calls)', 'counter', () => {
    const s = snap();
    return [
      ...(s?.sched ? [{ value: s.sched.displaced, labels: { module: 'sched' } }] : []),
      ...(s?.syscallTiming ? [{ value: s.syscallTiming.displaced, labels: { module: 'syscall' } }] : []),
    ];
  });
  metric(r, 'latscope_host_block_seconds', 'Block I/O latency, issue to completion, per device and direction', 'histogram', () =>
    (snap()?.block ?? []).flatMap((d) => buckets('latscope_host_block_seconds', d.hist, { device: d.device, op: d.write ? 'write' : 'read' })),
  );
}
