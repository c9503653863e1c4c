/**
 * Mesh rounds solved once: a round's clocks depend on the rounds around it (the drifts are fitted
 * over them), and once enough later rounds have come nothing moves them any more. The analysis
 * then keeps them (analyzer/mesh.ts settleMesh), and a report over a day reads a day of rounds
 * rather than solving them all again.
 */
import { migration } from '../migration.js';

export const m011 = migration(11, 'settled mesh rounds', 'timesync', [
  `CREATE TABLE IF NOT EXISTS mesh_rounds_settled (
    epoch BIGINT UNSIGNED NOT NULL PRIMARY KEY COMMENT 'the round (mesh_edges.epoch)',
    ref_unix_ms DOUBLE NOT NULL COMMENT 'the time its clocks are solved for: the median of its edges'' times',
    edges INT UNSIGNED NOT NULL COMMENT 'its mesh_edges rows when it was solved',
    rejected INT UNSIGNED NOT NULL COMMENT 'edges between servers that loop consistency set aside',
    KEY by_time (ref_unix_ms)
  ) ENGINE=InnoDB COMMENT='mesh rounds whose solve later rounds no longer change'`,
  `CREATE TABLE IF NOT EXISTS mesh_clocks (
    epoch BIGINT UNSIGNED NOT NULL,
    server_id INT UNSIGNED NOT NULL,
    offset_ns BIGINT NOT NULL COMMENT 'its clock minus the manager''s at the round''s ref_unix_ms',
    bound_ns DOUBLE NOT NULL,
    drift_ppb DOUBLE NOT NULL COMMENT 'its drift against the manager there, fitted over the rounds around',
    drift_bound_ppb DOUBLE NOT NULL,
    PRIMARY KEY (epoch, server_id)
  ) ENGINE=InnoDB COMMENT='each server''s clock in each settled mesh round'`,
]);
