/**
 * Each mesh edge's own time: a round's peers are probed one after another, seconds apart, and
 * two clocks drift apart over that time; the analysis carries each edge to its round's time
 * (timesync/mesh.ts solveMeshRounds).
 */
import { migration } from '../migration.js';

export const m010 = migration(10, 'the time of each mesh edge', 'timesync', [
  `ALTER TABLE mesh_edges ADD COLUMN IF NOT EXISTS edge_unix_ms BIGINT NULL COMMENT 'when the prober measured this edge (its wall clock; NULL from older observers: at_unix_ms, the round''s end, stands in)' AFTER at_unix_ms`,
]);
