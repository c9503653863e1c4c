/**
 * The TypeScript view of the host-jitter modules' headers (host/bpf/*.h): struct layouts
 * (checked against each object's BTF when it is opened) and constants. Keep in step with the C.
 */
import { struct } from './layout.js';

/** The modules `latscope host`, HostMonitor and function_info.yaml `jitter` choose from. */
export const HOST_MODULES = ['sched', 'irq', 'memory', 'syscall', 'block'] as const;
export type HostModuleName = (typeof HOST_MODULES)[number];

// hist.h
export const HIST_SUB_BITS = 2;
export const HIST_SUB = 1 << HIST_SUB_BITS;
export const HIST_SLOTS = HIST_SUB + 40 * HIST_SUB;
export const HIST = struct('hist', { count: 'u64', sum_ns: 'u64', max_ns: 'u64', slot: ['u64', HIST_SLOTS] });

// sched.h
export const SCHED_MAX_CPUS = 1024;
export const OFF_REASONS = ['preempted', 'sleep', 'blocked'] as const;
export const SCHED_CPU = struct('sched_cpu', {
  switches: 'u64', involuntary: 'u64', watched_preempted: 'u64', watched_switches: 'u64', intrusions: 'u64', migrations_in: 'u64',
  runq: ['u8', HIST.size],
});
export const SCHED_EV = { RUNQ: 1, PREEMPT: 2, MIGRATE: 3, OFFCPU: 4 } as const;
/** Counter index of run-queue waits not measured: their slot taken by another task (sched.h). */
export const SCHED_C_DISPLACED = 1;
export const SCHED_EVENT = struct('sched_event', {
  ts_ns: 'u64', delay_ns: 'u64', kind: 'u32', cpu: 'u32', pid: 'u32', tgid: 'u32', other_pid: 'u32', other_tgid: 'u32', aux: 'u32', prio: 'u32',
  comm: ['u8', 16], other_comm: ['u8', 16],
});

// irq.h
export const IRQ_SOFTIRQS = 10;
/** Soft IRQ vectors by number (include/linux/interrupt.h). */
export const SOFTIRQ_NAMES = ['hi', 'timer', 'net_tx', 'net_rx', 'block', 'irq_poll', 'tasklet', 'sched', 'hrtimer', 'rcu'] as const;
export const IRQ_EV = { HARD: 1, SOFT: 2 } as const;
export const IRQ_EVENT = struct('irq_event', { ts_ns: 'u64', delay_ns: 'u64', kind: 'u32', cpu: 'u32', id: 'u32', pid: 'u32', comm: ['u8', 16] });

// memory.h
export const TLB_REASONS = ['task_switch', 'remote_shootdown', 'local_shootdown', 'local_mm_shootdown', 'remote_send_ipi'] as const;
export const MEM_CPU = struct('mem_cpu', { faults_user: 'u64', faults_kernel: 'u64', tlb: ['u64', TLB_REASONS.length], tlb_pages: 'u64' });
export const MEM_STALLS = ['compaction', 'reclaim'] as const;
export const MEM_EVENT = struct('mem_event', { ts_ns: 'u64', delay_ns: 'u64', kind: 'u32', cpu: 'u32', pid: 'u32', tgid: 'u32', comm: ['u8', 16] });

// syscall.h
export const SYS_MAX = 512;
export const SYS_SLOTS = 40;
export const SYS_STAT = struct('sys_stat', { count: 'u64', errors: 'u64', timed: 'u64', sum_ns: 'u64', max_ns: 'u64', slot: ['u64', SYS_SLOTS] });
export const SYS_EVENT = struct('sys_event', { ts_ns: 'u64', delay_ns: 'u64', nr: 'u32', cpu: 'u32', pid: 'u32', tgid: 'u32', ret: 's64', to_tick: 'u32', pad: 'u32', comm: ['u8', 16] });
/** Counter index of calls whose slot another thread's call took before they ended (syscall.h). */
export const SYS_C_DISPLACED = 1;

// block.h
export const BLK_KEY = struct('blk_key', { dev: 'u32', write: 'u32' });

/** Counter index of ring-buffer drops in every module's `counters` map. */
export const C_RING_FULL = 0;

// ---- the wire: what an observer running host modules sends to Redis, and the ingest loads ----

/** Stream of host-module snapshots and outliers from the observers. */
export const HOST_STREAM = 'latscope:host';
export const HOST_FORMAT = 'host1';

/** One figure of a module at a snapshot (cumulative since the observer started its modules). */
export interface HostStatRow {
  module: HostModuleName;
  /** What: runq, switches, involuntary, offcpu_preempted, hardirq, softirq, faults_minor, tlb_remote_shootdown, a syscall's name, … */
  metric: string;
  /** Of what: a CPU, an IRQ, a vector and CPU, a device ('' for the host). */
  key: string;
  count: number;
  sumNs: number | null;
  maxNs: number | null;
  p50Ns: number | null;
  p99Ns: number | null;
  p99999Ns: number | null;
  errors: number | null;
}

/** One outlier (host/probe.ts HostEvent, with bigint time as a decimal string). */
export interface HostEventRow {
  tsNs: string;
  kind: string;
  cpu: number;
  pid: number;
  tgid: number;
  comm: string;
  delayNs: number;
  otherPid: number | null;
  otherComm: string | null;
  detail: string | null;
}

/** A stream entry's fields (JSON values: the volume is small and comm may hold any byte). */
export interface HostBatch {
  node: string;
  /** Unix ms of the snapshot, and the host's CLOCK_MONOTONIC then (dates the events). */
  at: number;
  monoNs: string;
  /** Unix ms when the modules started (the stats count from then). */
  since: number;
  format: typeof HOST_FORMAT;
  stats: string;
  events: string;
}

/** Largest host entry accepted (its stats and events JSON together): an observer's batch is far smaller. */
export const HOST_ENTRY_MAX_BYTES = 1 << 20;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
const isNs = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER);
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const isPid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;

/**
 * A host stream entry checked in full before anything uses it: its size, every field's type and
 * range, every stat and event row. Returns the rows, or why the entry is refused (it is then set
 * aside and counted by the ingest, never retried).
 */
export function parseHostBatch(fields: Map<string, string>): { batch: HostBatch; stats: HostStatRow[]; events: HostEventRow[] } | { refused: string } {
  const get = (k: string) => fields.get(k) ?? '';
  const stats = get('stats'), events = get('events');
  if (stats.length + events.length > HOST_ENTRY_MAX_BYTES) return { refused: `larger than ${HOST_ENTRY_MAX_BYTES} bytes` };
  if (get('format') !== HOST_FORMAT) return { refused: 'unknown format' };
  const node = get('node');
  if (!/^[\w.-]{1,64}$/.test(node)) return { refused: 'bad node name' };
  for (const k of ['at', 'since', 'monoNs']) if (!/^\d{1,19}$/.test(get(k))) return { refused: `${k} is not a whole number` };
  let st: unknown, ev: unknown;
  try {
    st = JSON.parse(stats);
    ev = JSON.parse(events);
  } catch {
    return { refused: 'stats or events is not JSON' };
  }
  if (!Array.isArray(st) || !Array.isArray(ev)) return { refused: 'stats or events is not a list' };
  for (const [i, r] of st.entries()) {
    const x = r as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || !HOST_MODULES.includes(x.module as HostModuleName) || !isText(x.metric, 48) || !isText(x.key, 96) || !isCount(x.count) ||
        !isNs(x.sumNs) || !isNs(x.maxNs) || !isNs(x.p50Ns) || !isNs(x.p99Ns) || !isNs(x.p99999Ns) || !(x.errors === null || isCount(x.errors)))
      return { refused: `stats row ${i} is malformed` };
  }
  for (const [i, r] of ev.entries()) {
    const x = r as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof x.tsNs !== 'string' || !/^\d{1,20}$/.test(x.tsNs) || !isText(x.kind, 32) || !isPid(x.cpu) || !isPid(x.pid) || !isPid(x.tgid) ||
        !isText(x.comm, 64) || !isNs(x.delayNs) || x.delayNs === null || !(x.otherPid === null || isPid(x.otherPid)) || !(x.otherComm === null || isText(x.otherComm, 64)) || !(x.detail === null || isText(x.detail, 256)))
      return { refused: `events row ${i} is malformed` };
  }
  const batch: HostBatch = { node, at: Number(get('at')), monoNs: get('monoNs'), since: Number(get('since')), format: HOST_FORMAT, stats, events };
  return { batch, stats: st as HostStatRow[], events: ev as HostEventRow[] };
}
