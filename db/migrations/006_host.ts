/**
 * The host-jitter modules' figures and outliers from the observers (function_info.yaml jitter),
 * and the spike report's keys, so a slow packet can be joined with what its hosts were doing:
 * host events carry the host's own CLOCK_MONOTONIC, the clock of the packet's layer times.
 */
import { migration } from '../migration.js';
import { SEGMENT_COLUMNS } from './004_analysis.js';

export const m006 = migration(6, 'host-jitter figures and outliers; spike report keys', 'host', [
  `CREATE TABLE IF NOT EXISTS host_stats (
    server_id INT UNSIGNED NOT NULL,
    taken_at TIMESTAMP(3) NOT NULL COMMENT 'when the observer read its modules',
    since_at TIMESTAMP(3) NOT NULL COMMENT 'when its modules started: every figure counts from then',
    module ENUM('sched','irq','memory','syscall','block') NOT NULL,
    metric VARCHAR(48) NOT NULL COMMENT 'runq, switches, involuntary, offcpu_REASON, hardirq, softirq, faults_minor, tlb_REASON, stall_KIND, a syscall name, read/write',
    k VARCHAR(96) NOT NULL DEFAULT '' COMMENT 'of what: a CPU, IRQ:NAME:CPU, VECTOR:CPU, a syscall number, a device',
    count BIGINT UNSIGNED NOT NULL,
    sum_ns DOUBLE NULL, max_ns DOUBLE NULL,
    p50_ns DOUBLE NULL, p99_ns DOUBLE NULL, p99999_ns DOUBLE NULL COMMENT 'from in-kernel histograms (within 12.5%; syscalls a factor of two)',
    errors BIGINT UNSIGNED NULL COMMENT 'syscalls: calls that returned an error',
    PRIMARY KEY (server_id, taken_at, module, metric, k)
  ) ENGINE=InnoDB COMMENT='the host-jitter modules of each observer, cumulative at each snapshot'`,
  `CREATE TABLE IF NOT EXISTS host_events (
    server_id INT UNSIGNED NOT NULL,
    ts_ns BIGINT UNSIGNED NOT NULL COMMENT 'the host''s CLOCK_MONOTONIC at the end of the event (the clock of packets.*_ns)',
    kind ENUM('runq','preempt','migrate','offcpu','hardirq','softirq','compaction','reclaim','syscall') NOT NULL,
    cpu SMALLINT UNSIGNED NOT NULL,
    pid INT UNSIGNED NOT NULL COMMENT 'thread id',
    tgid INT UNSIGNED NOT NULL,
    comm VARCHAR(16) NOT NULL,
    delay_ns BIGINT UNSIGNED NOT NULL COMMENT 'how long it lasted (it began at ts_ns - delay_ns)',
    other_pid INT UNSIGNED NULL COMMENT 'runq, preempt: the task that ran before / took the CPU',
    other_comm VARCHAR(16) NULL,
    detail VARCHAR(64) NULL COMMENT 'an IRQ or syscall name, an off-CPU reason, a destination CPU',
    at_unix_ms BIGINT NOT NULL COMMENT 'the same instant on the observer''s wall clock',
    PRIMARY KEY (server_id, ts_ns, kind, cpu, pid),
    KEY by_cpu (server_id, cpu, ts_ns)
  ) ENGINE=InnoDB COMMENT='host-jitter outliers: preemptions, long run-queue waits, slow IRQs, stalls, slow syscalls'`,
  `CREATE OR REPLACE VIEW spike_report AS
    SELECT k.window_ns, a.name AS src, b.name AS dst, k.end_to_end_ns, k.median_ns, k.end_to_end_ns / k.median_ns AS times_median, k.top_segment,
           ${SEGMENT_COLUMNS.map((c) => `p.${c}`).join(', ')}, p.bound_ns,
           tx.sock_cpu AS tx_cpu, tx.sock_tid AS tx_tid, rx.sock_cpu AS rx_cpu, rx.sock_tid AS rx_tid, rx.dev_cpu AS rx_dev_cpu,
           p.tx_server_id, p.tx_seq, k.rx_server_id, k.rx_seq
    FROM spikes k JOIN paths p ON p.rx_server_id = k.rx_server_id AND p.rx_seq = k.rx_seq
    JOIN servers a ON a.id = k.src_server_id JOIN servers b ON b.id = k.dst_server_id
    LEFT JOIN packets tx ON tx.server_id = p.tx_server_id AND tx.observer_seq = p.tx_seq
    LEFT JOIN packets rx ON rx.server_id = p.rx_server_id AND rx.observer_seq = p.rx_seq`,
]);
