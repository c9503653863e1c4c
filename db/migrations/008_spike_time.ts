/**
 * Spikes with their time and flow: the spike_report view also gives when the packet left
 * (t_ns on the manager's timeline, and as wall-clock ms through its window's date) and its flow
 * (addresses and ports from path_flows), so an incident timeline can place each spike.
 */
import { migration } from '../migration.js';
import { SEGMENT_COLUMNS } from './004_analysis.js';

export const m008 = migration(8, 'spikes with their time and flow', 'analyzer', [
  `CREATE OR REPLACE VIEW spike_report AS
    SELECT k.window_ns, a.name AS src, b.name AS dst, k.end_to_end_ns, k.median_ns, k.end_to_end_ns / k.median_ns AS times_median, k.top_segment,
           ${SEGMENT_COLUMNS.map((c) => `p.${c}`).join(', ')}, p.bound_ns,
           tx.sock_cpu AS tx_cpu, tx.sock_tid AS tx_tid, rx.sock_cpu AS rx_cpu, rx.sock_tid AS rx_tid, rx.dev_cpu AS rx_dev_cpu,
           p.tx_server_id, p.tx_seq, k.rx_server_id, k.rx_seq,
           p.t_ns, p.flow_id, f.src AS flow_src, f.sport AS flow_sport, f.dst AS flow_dst, f.dport AS flow_dport,
           (SELECT MAX(w.window_unix_ms) FROM path_stats w WHERE w.window_ns = k.window_ns) + (p.t_ns - k.window_ns) DIV 1000000 AS at_unix_ms
    FROM spikes k JOIN paths p ON p.rx_server_id = k.rx_server_id AND p.rx_seq = k.rx_seq
    JOIN servers a ON a.id = k.src_server_id JOIN servers b ON b.id = k.dst_server_id
    LEFT JOIN path_flows f ON f.flow_id = p.flow_id
    LEFT JOIN packets tx ON tx.server_id = p.tx_server_id AND tx.observer_seq = p.tx_seq
    LEFT JOIN packets rx ON rx.server_id = p.rx_server_id AND rx.observer_seq = p.rx_seq`,
]);
