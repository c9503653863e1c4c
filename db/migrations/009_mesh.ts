/**
 * The probe mesh (issue 26): what each observer measured to each peer in each mesh round. The
 * analysis solves a round's edges together for the clocks, then corrects each edge's one-way
 * delays with them (analyzer/mesh.ts).
 */
import { migration } from '../migration.js';

export const m009 = migration(9, 'probe mesh edges', 'timesync', [
  `CREATE TABLE IF NOT EXISTS mesh_edges (
    epoch BIGINT UNSIGNED NOT NULL COMMENT 'the round: it started at epoch × interval_ms on the wall clock',
    server_id INT UNSIGNED NOT NULL COMMENT 'the prober',
    peer_id INT UNSIGNED NOT NULL COMMENT 'the responder (0: the manager, probed by its anchors)',
    interval_ms INT UNSIGNED NOT NULL,
    at_unix_ms BIGINT NOT NULL COMMENT 'when the prober sent its round',
    sent INT UNSIGNED NOT NULL COMMENT 'probes sent after the warm-up',
    lost INT UNSIGNED NOT NULL COMMENT 'of those, without a reply in time',
    offset_ns BIGINT NULL COMMENT 'the peer''s clock minus the prober''s (NULL: no reply)',
    bound_ns DOUBLE NULL COMMENT 'causality bound of offset_ns',
    at_ns BIGINT UNSIGNED NULL COMMENT 'the prober''s CLOCK_MONOTONIC at the estimate',
    rtt_min_ns DOUBLE NULL, rtt_p50_ns DOUBLE NULL COMMENT 'round trip without the responder''s hold',
    fwd_min_ns DOUBLE NULL, fwd_p50_ns DOUBLE NULL COMMENT 'prober → peer, as if offset_ns were the truth',
    bwd_min_ns DOUBLE NULL, bwd_p50_ns DOUBLE NULL COMMENT 'peer → prober, the same',
    PRIMARY KEY (epoch, server_id, peer_id),
    KEY by_time (at_unix_ms)
  ) ENGINE=InnoDB COMMENT='probe mesh rounds: one row per prober, peer and round'`,
]);
