/**
 * Retention, the way MySQL/MariaDB operators expect it: the tables that grow with traffic
 * (packets, paths, layer_histograms) are partitioned by day, and old days go whole
 * (ALTER TABLE … DROP PARTITION: no row-by-row DELETE holding locks while the ingest loads the
 * newest day). The few rows from before partitioning (partition p_old) and the small result
 * tables go by bounded DELETEs, a chunk per statement. Days are UTC; a day is kept until all of
 * it is older than the policy, so up to one day more than asked is kept. Run as the BullMQ job
 * `retention` every hour, and at the manager's start.
 */
import type { Pool } from './pool.js';
import { KEEP_JOBS, RETRY, type FeatureJobs } from '../lib/jobs.js';
import { QUEUES } from '../protocol/redis.js';

/** Days to keep (0: forever). */
export interface RetentionPolicy {
  /** packets and the paths joined from them, and the analyzer's bookkeeping of them. */
  packets: number;
  /** layer_histograms snapshots, and the host-jitter figures and outliers (host_stats, host_events). */
  histograms: number;
  /** The analyzer's results (path_stats, flow_windows, unmatched, spikes), the clock offsets and the probe mesh's rounds. */
  results: number;
}

const DAY_MS = 86_400_000;
/** Rows per DELETE statement: each commits on its own, so no lock is held for long. */
const CHUNK = 10_000;
/** Days of partitions made ahead of time, so that today's rows never land in p_future. */
const AHEAD_DAYS = 3;

/** A table partitioned by day: its partitioning expression and the unit of its values. */
interface DailyTable {
  table: string;
  policy: keyof RetentionPolicy;
  /** The partitioning expression (MariaDB allows UNIX_TIMESTAMP() on a TIMESTAMP column). */
  expr: string;
  /** Milliseconds → the expression's value. */
  at: (ms: number) => number;
}

export const DAILY_TABLES: DailyTable[] = [
  // observer_seq is microseconds of the observer's wall clock (observer/records.ts)
  { table: 'packets', policy: 'packets', expr: 'observer_seq', at: (ms) => ms * 1000 },
  { table: 'paths', policy: 'packets', expr: 'rx_seq', at: (ms) => ms * 1000 },
  { table: 'layer_histograms', policy: 'histograms', expr: 'UNIX_TIMESTAMP(taken_at)', at: (ms) => Math.floor(ms / 1000) },
];

const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
const dayName = (ms: number) => `p${new Date(ms).toISOString().slice(0, 10).replace(/-/g, '')}`;

/** The first partitioning of a daily table (a migration): everything so far in p_old, the rest in p_future. */
export function partitionSql(t: DailyTable, nowMs: number): string {
  return `ALTER TABLE ${t.table} PARTITION BY RANGE (${t.expr}) (PARTITION p_old VALUES LESS THAN (${t.at(dayStart(nowMs))}), PARTITION p_future VALUES LESS THAN MAXVALUE)`;
}

interface Partition {
  name: string;
  /** The LESS THAN value (null: MAXVALUE). */
  below: number | null;
}

async function partitions(pool: Pool, table: string): Promise<Partition[]> {
  const [rows] = (await pool.query(
    `SELECT PARTITION_NAME AS name, PARTITION_DESCRIPTION AS below FROM information_schema.PARTITIONS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION`,
    [table],
  )) as unknown as [{ name: string; below: string }[]];
  return rows.map((r) => ({ name: r.name, below: r.below === 'MAXVALUE' ? null : Number(r.below) }));
}

/** DDL that waits at most this long for the table's metadata lock: a busy ingest is never queued behind it for long. */
async function ddl(pool: Pool, sql: string): Promise<void> {
  const conn = await pool.getConnection();
  try {
    await conn.query('SET SESSION lock_wait_timeout = 10');
    await conn.query(sql);
  } finally {
    conn.release();
  }
}

/** Makes the daily partitions from the last one there through AHEAD_DAYS after today; returns their names. */
export async function ensurePartitions(pool: Pool, nowMs = Date.now()): Promise<string[]> {
  const made: string[] = [];
  for (const t of DAILY_TABLES) {
    const parts = await partitions(pool, t.table);
    const future = parts.find((p) => p.below === null);
    if (!future) continue; // not partitioned (or not by us): leave it
    const lastBelow = Math.max(...parts.filter((p) => p.below !== null).map((p) => p.below!));
    const add: string[] = [];
    for (let day = dayStart(nowMs) - DAY_MS * 2; day <= dayStart(nowMs) + AHEAD_DAYS * DAY_MS; day += DAY_MS) {
      if (t.at(day + DAY_MS) <= lastBelow) continue;
      add.push(`PARTITION ${dayName(day)} VALUES LESS THAN (${t.at(day + DAY_MS)})`);
      made.push(`${t.table}.${dayName(day)}`);
    }
    if (add.length) await ddl(pool, `ALTER TABLE ${t.table} REORGANIZE PARTITION p_future INTO (${add.join(', ')}, PARTITION p_future VALUES LESS THAN MAXVALUE)`);
  }
  return made;
}

export interface RetentionResult {
  /** table.partition of every day dropped whole. */
  droppedPartitions: string[];
  /** Rows deleted per table (p_old and the small tables). */
  deletedRows: Record<string, number>;
  createdPartitions: string[];
}

/** Deletes in chunks until none is left; returns the rows deleted. */
async function deleteChunks(pool: Pool, sql: string, values: unknown[]): Promise<number> {
  let n = 0;
  for (;;) {
    const [res] = (await pool.query(`${sql} LIMIT ${CHUNK}`, values)) as unknown as [{ affectedRows: number }];
    n += res.affectedRows;
    if (res.affectedRows < CHUNK) return n;
  }
}

/** Applies the policy as of nowMs: old days dropped whole, old rows of p_old and of the small tables deleted in chunks. */
export async function applyRetention(pool: Pool, policy: RetentionPolicy, nowMs = Date.now()): Promise<RetentionResult> {
  const out: RetentionResult = { droppedPartitions: [], deletedRows: {}, createdPartitions: await ensurePartitions(pool, nowMs) };
  const cutoff = (k: keyof RetentionPolicy) => (policy[k] > 0 ? nowMs - policy[k] * DAY_MS : undefined);
  const count = (table: string, n: number) => n && (out.deletedRows[table] = (out.deletedRows[table] ?? 0) + n);

  for (const t of DAILY_TABLES) {
    const cut = cutoff(t.policy);
    if (cut === undefined) continue;
    const parts = await partitions(pool, t.table);
    const old = parts.filter((p) => p.name !== 'p_old' && p.below !== null && p.below <= t.at(cut));
    if (old.length) {
      await ddl(pool, `ALTER TABLE ${t.table} DROP PARTITION ${old.map((p) => p.name).join(', ')}`);
      out.droppedPartitions.push(...old.map((p) => `${t.table}.${p.name}`));
    }
    const pOld = parts.find((p) => p.name === 'p_old');
    if (pOld && pOld.below !== null && pOld.below <= t.at(cut)) await ddl(pool, `ALTER TABLE ${t.table} TRUNCATE PARTITION p_old`).then(() => out.droppedPartitions.push(`${t.table}.p_old`));
    else if (pOld) count(t.table, await deleteChunks(pool, `DELETE FROM ${t.table} PARTITION (p_old) WHERE ${t.expr} < ?`, [t.at(cut)]));
    else count(t.table, await deleteChunks(pool, `DELETE FROM ${t.table} WHERE ${t.expr} < ?`, [t.at(cut)])); // not partitioned (yet)
  }

  const packets = cutoff('packets');
  if (packets !== undefined) {
    count('analysis_pending', await deleteChunks(pool, 'DELETE FROM analysis_pending WHERE since < FROM_UNIXTIME(?)', [packets / 1000]));
    count('ingest_batches', await deleteChunks(pool, 'DELETE FROM ingest_batches WHERE analyzed = 1 AND committed_at < FROM_UNIXTIME(?)', [packets / 1000]));
  }
  const results = cutoff('results');
  if (results !== undefined) {
    // result rows are keyed by the manager timeline; path_stats dates each window on the wall clock
    for (;;) {
      const [rows] = (await pool.query('SELECT DISTINCT window_ns FROM path_stats WHERE window_unix_ms < ? LIMIT 100', [results])) as unknown as [{ window_ns: number }[]];
      if (!rows.length) break;
      const windows = rows.map((r) => r.window_ns);
      for (const table of ['flow_windows', 'unmatched', 'spikes', 'path_stats'])
        count(table, await deleteChunks(pool, `DELETE FROM ${table} WHERE window_ns IN (?)`, [windows]));
    }
    count('clock_offsets', await deleteChunks(pool, 'DELETE FROM clock_offsets WHERE at_unix_ms < ?', [results]));
    count('mesh_edges', await deleteChunks(pool, 'DELETE FROM mesh_edges WHERE at_unix_ms < ?', [results]));
    // a settled round's clocks go with its round (migration 11)
    for (;;) {
      const [rows] = (await pool.query('SELECT epoch FROM mesh_rounds_settled WHERE ref_unix_ms < ? LIMIT 1000', [results])) as unknown as [{ epoch: number }[]];
      if (!rows.length) break;
      const epochs = rows.map((r) => r.epoch);
      count('mesh_clocks', await deleteChunks(pool, 'DELETE FROM mesh_clocks WHERE epoch IN (?)', [epochs]));
      count('mesh_rounds_settled', await deleteChunks(pool, 'DELETE FROM mesh_rounds_settled WHERE epoch IN (?)', [epochs]));
    }
  }
  const histograms = cutoff('histograms');
  if (histograms !== undefined) {
    // the host-jitter figures and outliers go with the histograms (a table made by migration 6)
    count('host_stats', await deleteChunks(pool, 'DELETE FROM host_stats WHERE taken_at < FROM_UNIXTIME(?)', [histograms / 1000]).catch(() => 0));
    count('host_events', await deleteChunks(pool, 'DELETE FROM host_events WHERE at_unix_ms < ?', [histograms]).catch(() => 0));
  }
  return out;
}

export const RETENTION_SCHEDULER = 'retention';

/** The hourly retention job. */
export function retentionJobs(pool: Pool, policy: RetentionPolicy): FeatureJobs {
  return {
    queue: QUEUES.retention,
    concurrency: 1,
    run: () => applyRetention(pool, policy),
    schedules: [{ id: RETENTION_SCHEDULER, everyMs: 3_600_000, name: 'retention', opts: { ...KEEP_JOBS, ...RETRY } }],
  };
}
