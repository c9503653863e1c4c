/**
 * The analyzer's tables: ingest batches (what is new since the last run), joined packet paths
 * between servers, windowed statistics with tail attribution, per-flow throughput, unmatched
 * samples by reason, spikes, and the documented views engineers query. Also the manager's wall
 * clock at each time-sync round, so windows of the manager's monotonic timeline get dates.
 */
import { migration } from '../migration.js';

export const SEGMENT_COLUMNS = ['tx_sock_tcp', 'tx_tcp_ip', 'tx_ip_dev', 'tx_hops', 'wire', 'rx_hops', 'rx_dev_ip', 'rx_ip_tcp', 'rx_tcp_sock'];

export const m004 = migration(4, 'analysis: batches, paths, path stats, flows, unmatched, spikes, views', 'analyzer', [
  'DROP TABLE IF EXISTS delay_results', // the first per-layer results: path_stats (scope host) holds them now
  `CREATE TABLE IF NOT EXISTS ingest_batches (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'one LOAD of records, committed with them',
    records INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'rows the load inserted (duplicates skipped)',
    committed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    analyzed TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '1 once the analyzer has joined its records (in the same transaction as its results)',
    PRIMARY KEY (id),
    KEY todo (analyzed, id)
  ) ENGINE=InnoDB COMMENT='ingest batches: the analyzer takes the ones not yet analyzed, whatever order they committed in'`,
  `ALTER TABLE packets ADD COLUMN IF NOT EXISTS batch_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'ingest_batches.id of the load that inserted it (0: before batches existed)',
     ADD KEY IF NOT EXISTS by_batch (batch_id)`,
  `ALTER TABLE clock_offsets ADD COLUMN IF NOT EXISTS at_unix_ms BIGINT NULL COMMENT 'the manager''s wall clock (ms since 1970) at at_ns: dates the manager timeline'`,
  `CREATE TABLE IF NOT EXISTS analysis_pending (
    server_id INT UNSIGNED NOT NULL, observer_seq BIGINT UNSIGNED NOT NULL,
    since TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'when it was first analyzed without its other side',
    PRIMARY KEY (server_id, observer_seq)
  ) ENGINE=InnoDB COMMENT='records waiting for the other end of their path (or for a clock round after them)'`,
  `CREATE TABLE IF NOT EXISTS paths (
    rx_server_id INT UNSIGNED NOT NULL COMMENT 'observer of the receiver''s record (packets.server_id)',
    rx_seq BIGINT UNSIGNED NOT NULL COMMENT 'its packets.observer_seq',
    tx_server_id INT UNSIGNED NOT NULL COMMENT 'observer of the sender''s record',
    tx_seq BIGINT UNSIGNED NOT NULL,
    src_server_id INT UNSIGNED NOT NULL COMMENT 'the sending server (by address: a container or VM may be observed by its host)',
    dst_server_id INT UNSIGNED NOT NULL COMMENT 'the receiving server',
    flow_id BIGINT UNSIGNED NOT NULL COMMENT 'path_flows.flow_id',
    sample_seq INT UNSIGNED NOT NULL,
    attempt SMALLINT UNSIGNED NOT NULL COMMENT 'the sender''s transmission: 0 first, 1.. retransmissions',
    flags TINYINT UNSIGNED NOT NULL COMMENT '1 retransmission, 2 clock fault (one-way below zero by more than its bound), 4 complete (every segment), 8 no clock fit (cross-server values unknown)',
    window_ns BIGINT NOT NULL COMMENT 'start of its window on the manager timeline (path_stats.window_ns)',
    t_ns BIGINT NOT NULL COMMENT 'manager timeline (CLOCK_MONOTONIC of the manager) when the sender handed it to its first layer',
    ${SEGMENT_COLUMNS.map((c) => `${c} BIGINT NULL COMMENT 'ns'`).join(',\n    ')},
    one_way BIGINT NULL COMMENT 'ns, sender''s first device to receiver''s first device (tx_hops + wire)',
    end_to_end BIGINT NULL COMMENT 'ns, sender''s socket to receiver''s socket: the sum of every segment',
    bound_ns DOUBLE NULL COMMENT 'error bound of wire, one_way and end_to_end (sum of both servers'' clock bounds; 0 within one server)',
    PRIMARY KEY (rx_server_id, rx_seq)
  ) ENGINE=InnoDB COMMENT='one row per joined packet path: a sample''s sender record and receiver record, every segment''s delay'`,
  `CREATE TABLE IF NOT EXISTS path_flows (
    flow_id BIGINT UNSIGNED NOT NULL,
    family TINYINT UNSIGNED NOT NULL, src VARCHAR(45) NOT NULL, sport SMALLINT UNSIGNED NOT NULL, dst VARCHAR(45) NOT NULL, dport SMALLINT UNSIGNED NOT NULL,
    src_server_id INT UNSIGNED NULL COMMENT 'server of the source address (NULL: not a known server)',
    dst_server_id INT UNSIGNED NULL,
    PRIMARY KEY (flow_id)
  ) ENGINE=InnoDB COMMENT='every flow the analyzer has seen, by its id, in the direction of the data'`,
  `CREATE TABLE IF NOT EXISTS path_stats (
    window_ns BIGINT NOT NULL COMMENT 'window start, manager timeline',
    window_unix_ms BIGINT NULL COMMENT 'the same instant on the manager''s wall clock',
    window_len_ns BIGINT NOT NULL,
    scope ENUM('pair','flow','host') NOT NULL COMMENT 'pair: src -> dst; flow: one flow of a pair; host: one server''s own layers over all its records',
    src_server_id INT UNSIGNED NOT NULL COMMENT 'host scope: the server',
    dst_server_id INT UNSIGNED NOT NULL COMMENT 'host scope: 0',
    flow_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    segment VARCHAR(80) NOT NULL COMMENT 'a segment of protocol/layers.ts SEGMENTS, one_way, end_to_end, or hop:SERVER:IFACE',
    samples INT UNSIGNED NOT NULL,
    p50_ns DOUBLE NULL, p90_ns DOUBLE NULL, p99_ns DOUBLE NULL, p999_ns DOUBLE NULL COMMENT 'quantiles within 0.4% (log-linear buckets, 128 per power of two)',
    max_ns DOUBLE NULL COMMENT 'exact', mean_ns DOUBLE NULL,
    bound_ns DOUBLE NOT NULL DEFAULT 0 COMMENT 'largest clock bound of the window''s cross-server values (0 within one server)',
    faults INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'clock faults among them (one-way below zero by more than its bound)',
    tail_mean_ns DOUBLE NULL COMMENT 'mean of this segment over the paths at or above the end-to-end p99 of the group (complete paths)',
    tail_share DOUBLE NULL COMMENT 'tail_mean_ns / the end-to-end tail mean: the shares of a group add up to 1',
    sketch BLOB NULL COMMENT 'internal: the mergeable histogram behind the quantiles',
    tail_sketch MEDIUMBLOB NULL COMMENT 'internal (end_to_end rows): per end-to-end bucket, the count and each segment''s sum',
    PRIMARY KEY (window_ns, scope, src_server_id, dst_server_id, flow_id, segment)
  ) ENGINE=InnoDB COMMENT='the analyzer''s statistics per window, scope and segment'`,
  `CREATE TABLE IF NOT EXISTS flow_windows (
    window_ns BIGINT NOT NULL, flow_id BIGINT UNSIGNED NOT NULL,
    src_server_id INT UNSIGNED NOT NULL, dst_server_id INT UNSIGNED NOT NULL,
    samples INT UNSIGNED NOT NULL COMMENT 'sender records (first transmissions and retransmissions)',
    size_samples INT UNSIGNED NOT NULL COMMENT 'first transmissions sampled by the size rule: one per sampling_info size bytes',
    retransmissions INT UNSIGNED NOT NULL,
    sample_size INT UNSIGNED NOT NULL COMMENT 'sampling_info size when analyzed',
    first_ns BIGINT NULL, last_ns BIGINT NULL COMMENT 'manager timeline of the first and last sample',
    PRIMARY KEY (window_ns, flow_id)
  ) ENGINE=InnoDB COMMENT='per flow and window: what throughput and retransmission rate are computed from (view flow_report)'`,
  `CREATE TABLE IF NOT EXISTS unmatched (
    window_ns BIGINT NOT NULL, src_server_id INT UNSIGNED NOT NULL COMMENT '0: not a known server', dst_server_id INT UNSIGNED NOT NULL,
    reason ENUM('peer_not_observed','no_receiver_record','no_sender_record','no_clock_fit') NOT NULL,
    samples INT UNSIGNED NOT NULL,
    PRIMARY KEY (window_ns, src_server_id, dst_server_id, reason)
  ) ENGINE=InnoDB COMMENT='samples the analyzer could not join into a full path, per pair and reason: never dropped silently'`,
  `CREATE TABLE IF NOT EXISTS spikes (
    window_ns BIGINT NOT NULL, rx_server_id INT UNSIGNED NOT NULL, rx_seq BIGINT UNSIGNED NOT NULL,
    src_server_id INT UNSIGNED NOT NULL, dst_server_id INT UNSIGNED NOT NULL,
    end_to_end_ns BIGINT NOT NULL, median_ns DOUBLE NOT NULL COMMENT 'the pair''s end-to-end median in the window when it was judged',
    top_segment VARCHAR(16) NOT NULL COMMENT 'the segment that took most of it',
    PRIMARY KEY (window_ns, rx_server_id, rx_seq)
  ) ENGINE=InnoDB COMMENT='paths whose end-to-end delay exceeded analysis spike_factor times their window''s median (full breakdown: view spike_report)'`,
  `CREATE OR REPLACE VIEW pair_report AS
    SELECT s.window_ns, FROM_UNIXTIME(s.window_unix_ms / 1000) AS window_start, a.name AS src, b.name AS dst, s.segment,
           s.samples, s.p50_ns, s.p90_ns, s.p99_ns, s.p999_ns, s.max_ns, s.mean_ns, s.bound_ns, s.faults, s.tail_mean_ns, s.tail_share
    FROM path_stats s JOIN servers a ON a.id = s.src_server_id JOIN servers b ON b.id = s.dst_server_id
    WHERE s.scope = 'pair'`,
  `CREATE OR REPLACE VIEW layer_report AS
    SELECT s.window_ns, FROM_UNIXTIME(s.window_unix_ms / 1000) AS window_start, a.name AS server, s.segment,
           s.samples, s.p50_ns, s.p90_ns, s.p99_ns, s.p999_ns, s.max_ns, s.mean_ns
    FROM path_stats s JOIN servers a ON a.id = s.src_server_id
    WHERE s.scope = 'host'`,
  `CREATE OR REPLACE VIEW tail_report AS
    SELECT s.window_ns, FROM_UNIXTIME(s.window_unix_ms / 1000) AS window_start, a.name AS src, b.name AS dst, s.flow_id, s.segment,
           s.p50_ns, s.tail_mean_ns, s.tail_share, s.tail_mean_ns - s.p50_ns AS growth_ns
    FROM path_stats s JOIN servers a ON a.id = s.src_server_id JOIN servers b ON b.id = s.dst_server_id
    WHERE s.scope IN ('pair','flow') AND s.tail_share IS NOT NULL`,
  `CREATE OR REPLACE VIEW flow_report AS
    SELECT w.window_ns, f.family, f.src, f.sport, f.dst, f.dport, a.name AS src_server, b.name AS dst_server, w.samples, w.retransmissions,
           w.retransmissions / w.samples AS retransmission_rate,
           CASE WHEN w.last_ns > w.first_ns THEN w.size_samples * w.sample_size / ((w.last_ns - w.first_ns) / 1e9) END AS throughput_bytes_per_s
    FROM flow_windows w JOIN path_flows f ON f.flow_id = w.flow_id
    LEFT JOIN servers a ON a.id = w.src_server_id LEFT JOIN servers b ON b.id = w.dst_server_id`,
  `CREATE OR REPLACE VIEW spike_report AS
    SELECT k.window_ns, a.name AS src, b.name AS dst, k.end_to_end_ns, k.median_ns, k.end_to_end_ns / k.median_ns AS times_median, k.top_segment,
           ${SEGMENT_COLUMNS.map((c) => `p.${c}`).join(', ')}, p.bound_ns,
           tx.sock_cpu AS tx_cpu, tx.sock_tid AS tx_tid, rx.sock_cpu AS rx_cpu, rx.sock_tid AS rx_tid, rx.dev_cpu AS rx_dev_cpu
    FROM spikes k JOIN paths p ON p.rx_server_id = k.rx_server_id AND p.rx_seq = k.rx_seq
    JOIN servers a ON a.id = k.src_server_id JOIN servers b ON b.id = k.dst_server_id
    LEFT JOIN packets tx ON tx.server_id = p.tx_server_id AND tx.observer_seq = p.tx_seq
    LEFT JOIN packets rx ON rx.server_id = p.rx_server_id AND rx.observer_seq = p.rx_seq`,
  `CREATE OR REPLACE VIEW unmatched_report AS
    SELECT u.window_ns, COALESCE(a.name, '(not observed)') AS src, COALESCE(b.name, '(not observed)') AS dst, u.reason, u.samples
    FROM unmatched u LEFT JOIN servers a ON a.id = u.src_server_id LEFT JOIN servers b ON b.id = u.dst_server_id`,
]);
