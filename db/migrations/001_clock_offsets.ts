/** Time sync's table: one row per server and round (timesync/store.ts writes it, the analyzer reads it back as clock fits). */
import { migration } from '../migration.js';

export const m001 = migration(1, 'clock offsets', 'timesync', [
      `CREATE TABLE IF NOT EXISTS clock_offsets (
        server VARCHAR(255) NOT NULL COMMENT 'server name (connect_info)',
        round INT UNSIGNED NOT NULL COMMENT 'time-sync round, increasing per deployment',
        at_ns BIGINT UNSIGNED NOT NULL COMMENT 'manager CLOCK_MONOTONIC time the offset refers to',
        offset_ns BIGINT NOT NULL COMMENT 'server clock minus manager clock at at_ns',
        bound_ns DOUBLE NOT NULL COMMENT '|offset error| <= bound_ns (causality bound)',
        drift_ppb DOUBLE NOT NULL COMMENT 'offset change per manager second, in ns/s, over the fit window ending here',
        drift_bound_ppb DOUBLE NOT NULL COMMENT '|drift error| <= drift_bound_ppb',
        samples INT UNSIGNED NOT NULL COMMENT 'completed probes in the round',
        kept INT UNSIGNED NOT NULL COMMENT 'probes kept by the minimum-delay filter',
        lost INT UNSIGNED NOT NULL COMMENT 'probes without a reply',
        min_delay_ns DOUBLE NOT NULL COMMENT 'lowest round trip (responder time removed)',
        median_delay_ns DOUBLE NOT NULL,
        created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (server, round)
      ) ENGINE=InnoDB COMMENT='one row per server and time-sync round'`,
]);
