/**
 * Collection's tables: the servers, the sampled packets and the in-kernel histograms the ingest
 * loads, and the first analysis results (per-layer delays of each server).
 */
import { migration } from '../migration.js';

export const m002 = migration(2, 'servers, packets, flows, layer histograms, delay results', 'ingest', [
      `CREATE TABLE IF NOT EXISTS servers (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT,
        name VARCHAR(63) NOT NULL COMMENT 'connect_info hostname, or the node name an observer reports',
        address VARCHAR(45) NULL COMMENT 'SSH address (connect_info); NULL for an observer the manager did not provision',
        metadata_key VARCHAR(64) NULL COMMENT 'connect_info metadata_key',
        kind ENUM('bare-metal','vm','container','unknown') NOT NULL DEFAULT 'unknown',
        host_key VARCHAR(64) NULL COMMENT 'metadata_key of the host of a VM or container',
        updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        PRIMARY KEY (id),
        UNIQUE KEY name (name)
      ) ENGINE=InnoDB COMMENT='every server latscope knows, from connect_info or from its records'`,
      `CREATE TABLE IF NOT EXISTS packets (
        server_id INT UNSIGNED NOT NULL COMMENT 'servers.id of the observer that recorded it',
        observer_seq BIGINT UNSIGNED NOT NULL COMMENT 'per-observer record number: (server_id, observer_seq) is unique, so ingest is idempotent',
        dir ENUM('tx','rx') NOT NULL COMMENT 'sent or received by this server',
        family TINYINT UNSIGNED NOT NULL COMMENT '4 or 6',
        src VARCHAR(45) NOT NULL, sport SMALLINT UNSIGNED NOT NULL,
        dst VARCHAR(45) NOT NULL, dport SMALLINT UNSIGNED NOT NULL,
        sample_seq INT UNSIGNED NOT NULL COMMENT 'TCP sequence number of the sample byte; the same on sender and receiver',
        stream_offset INT UNSIGNED NOT NULL COMMENT 'offset of the sample byte in the stream, mod 2^32',
        seg_start INT UNSIGNED NOT NULL COMMENT 'sequence range of the segment that carried it',
        seg_end INT UNSIGNED NOT NULL,
        attempt SMALLINT UNSIGNED NOT NULL COMMENT '0: first transmission',
        flags TINYINT UNSIGNED NOT NULL COMMENT '1 retransmission, 2 sampled by the interval rule, 4 complete',
        sock_ns BIGINT UNSIGNED NULL COMMENT 'CLOCK_MONOTONIC of this server at the socket layer (NULL: not seen)',
        sock_cpu SMALLINT UNSIGNED NULL, sock_tid INT UNSIGNED NULL,
        tcp_ns BIGINT UNSIGNED NULL COMMENT 'at the TCP layer', tcp_cpu SMALLINT UNSIGNED NULL, tcp_tid INT UNSIGNED NULL,
        ip_ns BIGINT UNSIGNED NULL COMMENT 'at the IP layer', ip_cpu SMALLINT UNSIGNED NULL, ip_tid INT UNSIGNED NULL,
        dev_ns BIGINT UNSIGNED NULL COMMENT 'at the first device it crossed (every crossing is in hops)', dev_cpu SMALLINT UNSIGNED NULL, dev_tid INT UNSIGNED NULL,
        hops VARCHAR(2048) NOT NULL DEFAULT '' COMMENT 'every device crossing in order: ifindex:netns:rx:ns, comma-separated',
        ingested_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (server_id, observer_seq)
      ) ENGINE=InnoDB COMMENT='one sampled packet on one server: the time it reached each layer'`,
      `CREATE OR REPLACE VIEW flows AS
        SELECT server_id, family, src, sport, dst, dport, COUNT(*) AS packets, SUM(flags & 1) AS retransmissions,
               MIN(COALESCE(sock_ns, dev_ns)) AS first_ns, MAX(COALESCE(sock_ns, dev_ns)) AS last_ns
        FROM packets GROUP BY server_id, family, src, sport, dst, dport`,
      `CREATE TABLE IF NOT EXISTS layer_histograms (
        server_id INT UNSIGNED NOT NULL,
        taken_at TIMESTAMP(3) NOT NULL COMMENT 'when the observer read its in-kernel histograms',
        port SMALLINT UNSIGNED NOT NULL COMMENT 'watched port (sampling_info ports)',
        dir ENUM('tx','rx') NOT NULL,
        from_layer ENUM('sock','tcp','ip','dev') NOT NULL,
        to_layer ENUM('sock','tcp','ip','dev') NOT NULL,
        bucket TINYINT UNSIGNED NOT NULL COMMENT 'log2 bucket: delays in [2^bucket, 2^(bucket+1)) ns',
        count BIGINT UNSIGNED NOT NULL COMMENT 'segments since the observer started (cumulative)',
        PRIMARY KEY (server_id, taken_at, port, dir, from_layer, to_layer, bucket)
      ) ENGINE=InnoDB COMMENT='snapshots of the per-port adjacent-layer delay histograms over every matched segment'`,
      `CREATE TABLE IF NOT EXISTS delay_results (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        analysis VARCHAR(64) NOT NULL COMMENT 'analysis run name',
        kind ENUM('layer','one-way','end-to-end') NOT NULL COMMENT 'between two layers of one server, between two servers, or socket to socket',
        src_server_id INT UNSIGNED NOT NULL, dst_server_id INT UNSIGNED NOT NULL,
        from_layer VARCHAR(16) NOT NULL, to_layer VARCHAR(16) NOT NULL,
        window_start_ns BIGINT NOT NULL COMMENT 'kind layer: the server''s own clock; otherwise the manager timeline (timesync.toManagerTime)',
        window_end_ns BIGINT NOT NULL,
        samples INT UNSIGNED NOT NULL,
        p50_ns DOUBLE NULL, p99_ns DOUBLE NULL, max_ns DOUBLE NULL,
        bound_ns DOUBLE NOT NULL DEFAULT 0 COMMENT 'clock-offset error bound that applies to every value (0 within one server)',
        PRIMARY KEY (id),
        KEY by_pair (analysis, src_server_id, dst_server_id, kind)
      ) ENGINE=InnoDB COMMENT='the analyzer''s delay statistics per window'`,
]);
