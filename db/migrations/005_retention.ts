/**
 * Retention: the tables that grow with traffic become partitioned by day (db/retention.ts), so
 * old days can be dropped whole. What is there already goes into p_old (deleted in chunks once
 * it ages out); the retention job makes the daily partitions. A one-time copy of each table.
 */
import { migration } from '../migration.js';
import { DAILY_TABLES, partitionSql } from '../retention.js';

export const m005 = migration(5, 'daily partitions of packets, paths and layer_histograms', 'db', DAILY_TABLES.map((t) => partitionSql(t, Date.now())));
