/**
 * The analyzer's SQL, in one place: every query of the analysis (batch and stream), the report,
 * the graphs' series and the gauges, each a function with a named row type. No row is read by a
 * column's position, and none is untyped.
 *
 * Column types as mysql2 returns them (db/pool.ts): a BIGINT is a number when it is a safe
 * integer, else a string (`Big`, read with big()); DECIMAL sums are strings (`Decimal`); BLOBs
 * are Buffers. Every function takes a pool or a connection (`Db`): a write inside a
 * transaction passes the transaction's connection.
 */
import type { Readable } from 'node:stream';
import type { Connection as CoreConnection } from 'mysql2';
import type { Connection, Pool, PoolConnection } from '../db/pool.js';

export type Db = Pool | PoolConnection | Connection;
/** A BIGINT as mysql2 returns it: a number when it is a safe integer, else its digits. */
export type Big = number | string;
/** A DECIMAL (SUM of integers) as mysql2 returns it. */
export type Decimal = string | number;

/** The one place a result set becomes typed rows (mysql2 types results loosely). */
async function select<T>(db: Db, sql: string, values?: unknown[]): Promise<T[]> {
  const [rows] = await db.query(sql, values);
  return rows as unknown as T[];
}

async function execute(db: Db, sql: string, values?: unknown[]): Promise<{ affectedRows: number }> {
  const [res] = await db.query(sql, values);
  return res as unknown as { affectedRows: number };
}

// ---- locks (MariaDB named locks: held by a connection, gone with it) ----

/** Takes a named lock, waiting up to waitS seconds; false if another connection holds it. */
export async function getLock(db: Db, name: string, waitS: number): Promise<boolean> {
  const [row] = await select<{ ok: number | null }>(db, 'SELECT GET_LOCK(?, ?) AS ok', [name, waitS]);
  return row?.ok === 1;
}

export async function releaseLock(db: Db, name: string): Promise<void> {
  await db.query('DO RELEASE_LOCK(?)', [name]);
}

// ---- servers and their addresses ----

export interface ServerRow {
  id: number;
  name: string;
}

export const servers = (db: Db): Promise<ServerRow[]> => select<ServerRow>(db, 'SELECT id, name FROM servers ORDER BY name');

export interface ServerAddressRow {
  address: string;
  server_id: number;
}

export const serverAddresses = (db: Db): Promise<ServerAddressRow[]> => select<ServerAddressRow>(db, 'SELECT address, server_id FROM server_addresses');

// ---- clock rounds ----

export interface ClockRoundRow {
  server: string;
  at_ns: Big;
  offset_ns: Big;
  bound_ns: number;
  at_unix_ms: Big | null;
}

/** Every server's time-sync rounds, by server and time. */
export const clockRounds = (db: Db): Promise<ClockRoundRow[]> => select<ClockRoundRow>(db, 'SELECT server, at_ns, offset_ns, bound_ns, at_unix_ms FROM clock_offsets ORDER BY server, at_ns');

export interface LatestClockRow {
  server: string;
  offset_ns: Big;
  bound_ns: number;
}

/** Each server's newest round. */
export const latestClocks = (db: Db): Promise<LatestClockRow[]> =>
  select<LatestClockRow>(
    db,
    `SELECT c.server, c.offset_ns, c.bound_ns FROM clock_offsets c
     JOIN (SELECT server, MAX(round) AS r FROM clock_offsets GROUP BY server) l ON l.server = c.server AND l.r = c.round`,
  );

/** A server's clock as stored: its offset (exact, as text), bound and drift. */
interface ClockFields {
  server: string;
  /** Exact, as text. */
  offset_ns: string;
  bound_ns: number;
  drift_ppb: number;
  drift_bound_ppb: number;
}

export interface AnchorRoundRow extends ClockFields {
  at_unix_ms: Big;
}

/** The rounds (with their drift) dated between two wall-clock times. */
export const roundsBetween = (db: Db, fromUnixMs: number, toUnixMs: number): Promise<AnchorRoundRow[]> =>
  select<AnchorRoundRow>(db, 'SELECT server, at_unix_ms, CAST(offset_ns AS CHAR) AS offset_ns, bound_ns, drift_ppb, drift_bound_ppb FROM clock_offsets WHERE at_unix_ms BETWEEN ? AND ?', [fromUnixMs, toUnixMs]);

// ---- records (packets) and what the batch analysis still has to do ----

/** A record of packets as the analysis reads it: the last device crossing's time and, with several, every crossing. */
export interface RecordRow {
  server_id: number;
  observer_seq: Big;
  /** 1: the sender's record. */
  is_tx: number;
  flow_id: Big;
  sample_seq: number;
  stream_offset: number;
  attempt: number;
  flags: number;
  sock_ns: Big | null;
  tcp_ns: Big | null;
  ip_ns: Big | null;
  dev_ns: Big | null;
  last_dev_ns: Big | null;
  /** The crossings' text, only when there are several. */
  hops: string | null;
}

const RECORD_SELECT = `SELECT p.server_id, p.observer_seq, p.dir = 'tx' AS is_tx, p.flow_id, p.sample_seq, p.stream_offset, p.attempt, p.flags,
  p.sock_ns, p.tcp_ns, p.ip_ns, p.dev_ns, NULLIF(SUBSTRING_INDEX(p.hops, ':', -1), '') AS last_dev_ns, IF(LOCATE(',', p.hops), p.hops, NULL) AS hops`;

/** The records still waiting for their other end from earlier runs, with when they began to wait. */
export const pendingRecords = (db: Db): Promise<(RecordRow & { since_ms: Decimal })[]> =>
  select(db, `${RECORD_SELECT}, UNIX_TIMESTAMP(a.since) * 1000 AS since_ms FROM analysis_pending a JOIN packets p ON p.server_id = a.server_id AND p.observer_seq = a.observer_seq`);

/** The records of some ingest batches, one row at a time as they arrive (no second copy of a chunk in memory). */
export function eachBatchRecord(conn: PoolConnection, batches: number[], row: (r: RecordRow) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // the callback API of the connection underneath (the promise API has no row events; its
    // typings give `connection` the promise type, at run time it is the core connection)
    const core = conn.connection as unknown as CoreConnection;
    const q = core.query({ sql: `${RECORD_SELECT} FROM packets p WHERE p.batch_id IN (?)`, values: [batches] });
    q.on('result', (r) => row(r as unknown as RecordRow));
    q.on('end', () => resolve());
    q.on('error', reject);
  });
}

export interface BatchRow {
  id: number;
  records: number;
}

/** Ingest batches not analyzed yet after `afterId`, oldest first. */
export const unanalyzedBatches = (db: Db, afterId: number): Promise<BatchRow[]> =>
  select<BatchRow>(db, 'SELECT id, records FROM ingest_batches WHERE analyzed = 0 AND id > ? ORDER BY id LIMIT 20000', [afterId]);

export const markBatchesAnalyzed = (db: Db, ids: number[]) => execute(db, 'UPDATE ingest_batches SET analyzed = 1 WHERE id IN (?)', [ids]);

/** The records still waiting become exactly these (server, observer_seq, since). */
export async function replacePending(db: Db, rows: [server: number, seq: number, since: Date][]): Promise<void> {
  await db.query('DELETE FROM analysis_pending');
  for (let i = 0; i < rows.length; i += 10_000) await db.query('INSERT INTO analysis_pending (server_id, observer_seq, since) VALUES ?', [rows.slice(i, i + 10_000)]);
}

/** Raw records as row lines ("server_id TAB <protocol/records.ts row>"), into packets; idempotent (IGNORE). */
export async function loadRawRecords(db: Db, columns: readonly string[], text: () => Readable): Promise<number> {
  const [res] = await db.query({
    sql: `LOAD DATA LOCAL INFILE 'latscope-raw' IGNORE INTO TABLE packets CHARACTER SET ascii FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (server_id, ${columns.join(', ')})`,
    infileStreamFactory: text,
  });
  return (res as unknown as { affectedRows: number }).affectedRows;
}

// ---- flows ----

export interface FlowEndsRow {
  flow_id: Big;
  src_server_id: number | null;
  dst_server_id: number | null;
}

export const pathFlowEnds = (db: Db): Promise<FlowEndsRow[]> => select<FlowEndsRow>(db, 'SELECT flow_id, src_server_id, dst_server_id FROM path_flows');

export interface FlowAddressRow {
  flow_id: Big;
  family: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** The addresses of the flows of some records, by (server_id, observer_seq). */
export const flowAddressesOf = (db: Db, records: [server: number, seq: number][]): Promise<FlowAddressRow[]> =>
  select<FlowAddressRow>(db, 'SELECT flow_id, family, src, sport, dst, dport FROM packets WHERE (server_id, observer_seq) IN (?)', [records]);

/** New flows' addresses and ends; an end already known stays. */
export const addPathFlows = (db: Db, values: [flow: number, family: number, src: string, sport: number, dst: string, dport: number, srcServer: number | null, dstServer: number | null][]) =>
  execute(
    db,
    `INSERT INTO path_flows (flow_id, family, src, sport, dst, dport, src_server_id, dst_server_id) VALUES ?
     ON DUPLICATE KEY UPDATE src_server_id = COALESCE(src_server_id, VALUES(src_server_id)), dst_server_id = COALESCE(dst_server_id, VALUES(dst_server_id))`,
    [values],
  );

// ---- the analysis' results ----

/** Path rows as tab-separated lines of `columns`, in primary-key order; idempotent (IGNORE). */
export async function loadPaths(db: Db, columns: readonly string[], text: () => Readable): Promise<void> {
  await db.query({
    sql: `LOAD DATA LOCAL INFILE 'latscope-paths' IGNORE INTO TABLE paths CHARACTER SET ascii FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (${columns.join(', ')})`,
    infileStreamFactory: text,
  });
}

export interface StoredStatRow {
  window_ns: Big;
  scope: 'pair' | 'flow' | 'host';
  src_server_id: number;
  dst_server_id: number;
  flow_id: Big;
  segment: string;
  sketch: Buffer | null;
  tail_sketch: Buffer | null;
  bound_ns: number;
  faults: Big;
}

/**
 * The stored sketches of some windows, for a merge to rewrite: their pair and host rows (`shared`),
 * and the rows of the flows given (a worker merges its own shard's flows only; those of other
 * shards' flows need not cross the wire), or of every flow. Not a locking read: what keeps
 * another worker from rewriting the rows in between is the merge lock (shared rows) or the
 * shard's lease (a flow's rows), and the transaction reads at READ COMMITTED (Run.attempt), so
 * that it sees what the worker before it committed; a locking read would also lock the rows
 * next to its ranges, another shard's flow rows among them.
 */
export const storedStats = (conn: Db, windowsNs: string[], o: { shared: boolean; flows: number[] | 'every' }): Promise<StoredStatRow[]> => {
  const flows = o.flows === 'every' ? '' : o.flows.length ? 'flow_id IN (?)' : 'FALSE';
  const scope = o.shared ? (flows ? ` AND (scope <> 'flow' OR ${flows})` : '') : ` AND scope = 'flow'${flows ? ` AND ${flows}` : ''}`;
  return select<StoredStatRow>(
    conn,
    `SELECT window_ns, scope, src_server_id, dst_server_id, flow_id, segment, sketch, tail_sketch, bound_ns, faults FROM path_stats WHERE window_ns IN (?)${scope}`,
    Array.isArray(o.flows) && o.flows.length ? [windowsNs, o.flows] : [windowsNs],
  );
};

/** Whether MariaDB can log READ COMMITTED transactions: not when it writes its binary log in STATEMENT format. */
export async function readCommittedLogged(db: Db): Promise<boolean> {
  const [row] = await select<{ log_bin: number; format: string }>(db, 'SELECT @@log_bin AS log_bin, @@binlog_format AS format');
  return !(Number(row?.log_bin) && row?.format === 'STATEMENT');
}

/** A path_stats row as upsertStats writes it. */
export type StatValues = [
  windowNs: string, windowUnixMs: number | null, windowLenNs: number, scope: string, src: number, dst: number, flow: number, segment: string, samples: number,
  p50: number, p90: number, p99: number, p999: number, max: number, mean: number, bound: number, faults: number, tailMean: number | null, tailShare: number | null, sketch: Buffer, tailSketch: Buffer | null,
];

/** Windows' statistics, replacing what they held (the rows carry the merged sketches). */
export function upsertStats(db: Db, values: StatValues[]): Promise<void> {
  return executeRows(
    db,
    'INSERT INTO path_stats (window_ns, window_unix_ms, window_len_ns, scope, src_server_id, dst_server_id, flow_id, segment, samples, p50_ns, p90_ns, p99_ns, p999_ns, max_ns, mean_ns, bound_ns, faults, tail_mean_ns, tail_share, sketch, tail_sketch) VALUES',
    `ON DUPLICATE KEY UPDATE window_unix_ms = VALUES(window_unix_ms), samples = VALUES(samples), p50_ns = VALUES(p50_ns), p90_ns = VALUES(p90_ns), p99_ns = VALUES(p99_ns),
       p999_ns = VALUES(p999_ns), max_ns = VALUES(max_ns), mean_ns = VALUES(mean_ns), bound_ns = VALUES(bound_ns), faults = VALUES(faults), tail_mean_ns = VALUES(tail_mean_ns),
       tail_share = VALUES(tail_share), sketch = VALUES(sketch), tail_sketch = VALUES(tail_sketch)`,
    values,
  );
}

/** Rows of executeRows' statements: the most, then the binary digits of the rest (a few statement shapes, each prepared once per connection). */
const EXECUTE_ROWS = 512;

/**
 * A multi-row statement (`head` (?, ...), (?, ...) `tail`) as prepared statements: the values go
 * in the binary protocol, a sketch as its bytes rather than as SQL text twice its size for the
 * server to parse (the statistics' write, in the step every worker takes its turn for, takes half
 * the time). Statement shapes stay few: EXECUTE_ROWS rows, then one per binary digit of the rest.
 */
async function executeRows(db: Db, head: string, tail: string, values: readonly (string | number | Buffer | null)[][]): Promise<void> {
  if (!values.length) return;
  const row = `(${values[0]!.map(() => '?').join(', ')})`;
  for (let i = 0; i < values.length; ) {
    const left = values.length - i;
    const n = left >= EXECUTE_ROWS ? EXECUTE_ROWS : 2 ** Math.floor(Math.log2(left));
    await db.execute(`${head} ${new Array(n).fill(row).join(', ')} ${tail}`, values.slice(i, i + n).flat());
    i += n;
  }
}

export type FlowWindowValues = [windowNs: string, flow: number, src: number, dst: number, samples: number, sizeSamples: number, retransmissions: number, sampleSize: number, firstNs: string, lastNs: string];

/** Flows' samples per window, added to what the windows held. */
export async function addFlowWindows(db: Db, values: FlowWindowValues[]): Promise<void> {
  for (let i = 0; i < values.length; i += 5000)
    await db.query(
      `INSERT INTO flow_windows (window_ns, flow_id, src_server_id, dst_server_id, samples, size_samples, retransmissions, sample_size, first_ns, last_ns) VALUES ?
       ON DUPLICATE KEY UPDATE samples = samples + VALUES(samples), size_samples = size_samples + VALUES(size_samples), retransmissions = retransmissions + VALUES(retransmissions),
         first_ns = LEAST(first_ns, VALUES(first_ns)), last_ns = GREATEST(last_ns, VALUES(last_ns))`,
      [values.slice(i, i + 5000)],
    );
}

/** Unmatched samples per window, pair and reason, added to what the windows held. */
export const addUnmatched = (db: Db, values: [windowNs: string, src: number, dst: number, reason: string, samples: number][]) =>
  execute(db, 'INSERT INTO unmatched (window_ns, src_server_id, dst_server_id, reason, samples) VALUES ? ON DUPLICATE KEY UPDATE samples = samples + VALUES(samples)', [values]);

export type SpikeValues = [windowNs: string, rxServer: number, rxSeq: number, src: number, dst: number, endToEndNs: number, medianNs: number, topSegment: string];
export const addSpikes = (db: Db, values: SpikeValues[]) =>
  execute(db, 'INSERT IGNORE INTO spikes (window_ns, rx_server_id, rx_seq, src_server_id, dst_server_id, end_to_end_ns, median_ns, top_segment) VALUES ?', [values]);

// ---- the stream stage's checkpoints ----

export interface CheckpointRow {
  last_id: string;
}

export async function checkpoint(db: Db, stream: string): Promise<CheckpointRow | undefined> {
  const [row] = await select<CheckpointRow>(db, 'SELECT last_id FROM stream_checkpoints WHERE stream = ?', [stream]);
  return row;
}

/** The checkpoint's waiting records, part by part (a line each). */
export async function checkpointWaiting(db: Db, stream: string): Promise<Buffer[]> {
  const rows = await select<{ body: Buffer }>(db, 'SELECT body FROM stream_waiting WHERE stream = ? ORDER BY part', [stream]);
  return rows.map((r) => r.body);
}

/**
 * The most a part of the waiting records holds: a statement each, far below MariaDB's
 * max_allowed_packet (16 MB by default), however many records wait.
 */
export const WAITING_PART_BYTES = 4 << 20;

/**
 * A step's mark, inside the step's transaction: the last entry it covered and the records still
 * waiting, in parts of at most WAITING_PART_BYTES (a line longer than that is a part of its own).
 */
export async function saveCheckpoint(db: Db, stream: string, lastId: string, waitingLines: readonly string[], records: number): Promise<void> {
  await execute(
    db,
    `INSERT INTO stream_checkpoints (stream, last_id, waiting_records, records) VALUES (?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE last_id = VALUES(last_id), waiting_records = VALUES(waiting_records), records = records + VALUES(records)`,
    [stream, lastId, waitingLines.length, records],
  );
  await execute(db, 'DELETE FROM stream_waiting WHERE stream = ?', [stream]);
  let part = 0;
  for (let i = 0; i < waitingLines.length; ) {
    let bytes = 0, j = i;
    while (j < waitingLines.length && (j === i || bytes + waitingLines[j]!.length <= WAITING_PART_BYTES)) bytes += waitingLines[j++]!.length;
    const body = Buffer.from(waitingLines.slice(i, j).join(''), 'latin1');
    await execute(db, 'INSERT INTO stream_waiting (stream, part, records, body) VALUES (?, ?, ?, ?)', [stream, part++, j - i, body]);
    i = j;
  }
}

// ---- reading the results: reports, series, gauges ----

export interface StatSketchRow extends Omit<StoredStatRow, 'window_ns'> {
  window_ns: Big;
  window_unix_ms: Big | null;
  window_len_ns: Big;
}

/** Windows that start in [sinceUnixMs, untilUnixMs) (either end open when absent). */
export interface WindowRange {
  sinceUnixMs?: number;
  untilUnixMs?: number;
}

/** A range's conditions on window_unix_ms, and their values. */
function inRange(o: WindowRange): { conds: string[]; values: number[] } {
  const conds: string[] = [], values: number[] = [];
  if (o.sinceUnixMs !== undefined) conds.push('window_unix_ms >= ?'), values.push(Math.floor(o.sinceUnixMs));
  if (o.untilUnixMs !== undefined) conds.push('window_unix_ms < ?'), values.push(Math.floor(o.untilUnixMs));
  return { conds, values };
}

/** path_stats rows with their sketches over a range; with `pair` (server ids), only that pair's and its two hosts'. */
export function statSketches(db: Db, range: WindowRange, pair?: [number, number]): Promise<StatSketchRow[]> {
  const { conds, values } = inRange(range);
  if (pair) {
    conds.push(`((scope IN ('pair','flow') AND src_server_id = ? AND dst_server_id = ?) OR (scope = 'host' AND src_server_id IN (?, ?)))`);
    values.push(pair[0], pair[1], pair[0], pair[1]);
  }
  return select<StatSketchRow>(
    db,
    `SELECT window_ns, window_unix_ms, window_len_ns, scope, src_server_id, dst_server_id, flow_id, segment, sketch, tail_sketch, bound_ns, faults
     FROM path_stats ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''}`,
    values,
  );
}

export interface UnmatchedRow {
  src_server_id: number;
  dst_server_id: number;
  reason: string;
  n: Decimal;
}

export const unmatchedIn = (db: Db, windowsNs: string[]): Promise<UnmatchedRow[]> =>
  select<UnmatchedRow>(db, 'SELECT src_server_id, dst_server_id, reason, SUM(samples) AS n FROM unmatched WHERE window_ns IN (?) GROUP BY src_server_id, dst_server_id, reason ORDER BY n DESC', [windowsNs]);

/** A row of the spike_report view (migration 8). */
export interface SpikeRow {
  window_ns: Big;
  at_unix_ms: Big | null;
  flow_src: string | null;
  flow_sport: number | null;
  flow_dst: string | null;
  flow_dport: number | null;
  src: string;
  dst: string;
  end_to_end_ns: Big;
  median_ns: Big;
  times_median: number | string;
  top_segment: string;
  bound_ns: number | null;
  tx_server_id: number | null;
  tx_seq: Big | null;
  rx_server_id: number | null;
  rx_seq: Big | null;
  tx_cpu: number | null;
  tx_tid: number | null;
  rx_cpu: number | null;
  rx_tid: number | null;
  /** Each of SEGMENTS (protocol/layers.ts), ns. */
  [segment: string]: unknown;
}

export const spikesIn = (db: Db, windowsNs: string[], pair: [string, string] | undefined, top: number): Promise<SpikeRow[]> =>
  select<SpikeRow>(db, `SELECT * FROM spike_report WHERE window_ns IN (?) ${pair ? 'AND src = ? AND dst = ?' : ''} ORDER BY times_median DESC LIMIT ?`, [windowsNs, ...(pair ?? []), top]);

export interface RecordTimesRow {
  sock_ns: Big | null;
  tcp_ns: Big | null;
  ip_ns: Big | null;
  dev_ns: Big | null;
  sock_cpu: number | null;
  tcp_cpu: number | null;
  ip_cpu: number | null;
  dev_cpu: number | null;
}

export async function recordTimes(db: Db, server: number, seq: Big): Promise<RecordTimesRow | undefined> {
  const [row] = await select<RecordTimesRow>(db, 'SELECT sock_ns, tcp_ns, ip_ns, dev_ns, sock_cpu, tcp_cpu, ip_cpu, dev_cpu FROM packets WHERE server_id = ? AND observer_seq = ?', [server, seq]);
  return row;
}

export interface HostEventRow {
  kind: string;
  cpu: number;
  comm: string;
  pid: number;
  delay_ns: Big;
  other_comm: string | null;
  other_pid: number | null;
  detail: string | null;
  offset_ns: Big;
}

/** The longest host events on a server's CPUs that overlap [fromNs, toNs] of its clock (offset_ns: from fromNs to the event's start). */
export const hostEventsDuring = (db: Db, server: number, cpus: number[], fromNs: bigint, toNs: bigint): Promise<HostEventRow[]> =>
  select<HostEventRow>(
    db,
    `SELECT kind, cpu, comm, pid, delay_ns, other_comm, other_pid, detail, CAST(ts_ns AS SIGNED) - CAST(delay_ns AS SIGNED) - ? AS offset_ns
     FROM host_events WHERE server_id = ? AND cpu IN (?) AND ts_ns >= ? AND ts_ns - delay_ns <= ? ORDER BY delay_ns DESC LIMIT 5`,
    [String(fromNs), server, cpus, String(fromNs), String(toNs)],
  );

export interface KernelBucketRow {
  server_id: number;
  port: number;
  dir: string;
  from_layer: string;
  to_layer: string;
  bucket: number;
  count: Big;
}

/** Each server's last snapshot of its in-kernel histograms taken at or before a time (null: the last one of all). */
export const kernelSnapshot = (db: Db, atOrBeforeUnixMs: number | null): Promise<KernelBucketRow[]> =>
  select<KernelBucketRow>(
    db,
    `SELECT h.server_id, h.port, h.dir, h.from_layer, h.to_layer, h.bucket, h.count FROM layer_histograms h
     JOIN (SELECT server_id, MAX(taken_at) AS t FROM layer_histograms ${atOrBeforeUnixMs === null ? '' : 'WHERE taken_at <= FROM_UNIXTIME(? / 1000)'} GROUP BY server_id) l
       ON l.server_id = h.server_id AND l.t = h.taken_at`,
    atOrBeforeUnixMs === null ? [] : [atOrBeforeUnixMs],
  );

/** Every snapshot of the in-kernel histograms since a time (null: all), in order per histogram. */
export const kernelSnapshotsSince = (db: Db, sinceUnixMs: number | null): Promise<(KernelBucketRow & { at: Decimal })[]> =>
  select(
    db,
    `SELECT server_id, port, dir, from_layer, to_layer, bucket, count, UNIX_TIMESTAMP(taken_at) * 1000 AS at FROM layer_histograms
     ${sinceUnixMs === null ? '' : 'WHERE taken_at >= FROM_UNIXTIME(? / 1000)'} ORDER BY server_id, port, dir, from_layer, to_layer, taken_at`,
    sinceUnixMs === null ? [] : [sinceUnixMs],
  );

export interface FlowTotalsRow extends FlowAddressRow {
  src_server_id: number | null;
  dst_server_id: number | null;
  samples: Decimal | null;
  retrans: Decimal | null;
  bytes: Decimal | null;
  first_ns: Big | null;
  last_ns: Big | null;
}

/** Flows' addresses and their totals over some windows. */
export const flowTotals = (db: Db, windowsNs: string[], flows: number[]): Promise<FlowTotalsRow[]> =>
  select<FlowTotalsRow>(
    db,
    `SELECT f.flow_id, f.src, f.sport, f.dst, f.dport, f.src_server_id, f.dst_server_id, SUM(w.samples) AS samples, SUM(w.retransmissions) AS retrans,
            SUM(w.size_samples * w.sample_size) AS bytes, MIN(w.first_ns) AS first_ns, MAX(w.last_ns) AS last_ns
     FROM path_flows f LEFT JOIN flow_windows w ON w.flow_id = f.flow_id AND w.window_ns IN (?)
     WHERE f.flow_id IN (?) GROUP BY f.flow_id`,
    [windowsNs, flows],
  );

/** A range as `AND …` conditions to append to a WHERE, and their values. */
function andInRange(o: WindowRange): { sql: string; values: number[] } {
  const { conds, values } = inRange(o);
  return { sql: conds.map((c) => `AND ${c}`).join(' '), values };
}

export interface OneWayWindowRow {
  src_server_id: number;
  dst_server_id: number;
  window_unix_ms: Big;
  p50_ns: number;
  p99_ns: number;
  bound_ns: number;
  samples: Big;
}

export function oneWayWindows(db: Db, o: WindowRange): Promise<OneWayWindowRow[]> {
  const range = andInRange(o);
  return select<OneWayWindowRow>(
    db,
    `SELECT src_server_id, dst_server_id, window_unix_ms, p50_ns, p99_ns, bound_ns, samples FROM path_stats WHERE scope = 'pair' AND segment = 'one_way' AND window_unix_ms IS NOT NULL ${range.sql} ORDER BY window_ns`,
    range.values,
  );
}

export interface FlowWindowRow {
  flow_id: Big;
  window_unix_ms: Big;
  samples: Big;
  retransmissions: Big;
  bytes: Big;
  first_ns: Big;
  last_ns: Big;
}

export function flowWindows(db: Db, o: WindowRange, flows: number[]): Promise<FlowWindowRow[]> {
  const range = andInRange(o);
  return select<FlowWindowRow>(
    db,
    `SELECT w.flow_id, s.window_unix_ms, w.samples, w.retransmissions, w.size_samples * w.sample_size AS bytes, w.first_ns, w.last_ns
     FROM flow_windows w JOIN (SELECT DISTINCT window_ns, window_unix_ms FROM path_stats WHERE scope = 'pair' AND window_unix_ms IS NOT NULL ${range.sql}) s ON s.window_ns = w.window_ns
     WHERE w.flow_id IN (?) ORDER BY w.window_ns`,
    [...range.values, flows],
  );
}

export interface CdfSketchRow {
  scope: 'pair' | 'host';
  src_server_id: number;
  dst_server_id: number;
  segment: string;
  sketch: Buffer;
}

/** The sketches of the CDFs: hosts' own layers, pairs' wire and end-to-end. */
export function cdfSketches(db: Db, o: WindowRange): Promise<CdfSketchRow[]> {
  const range = andInRange(o);
  return select<CdfSketchRow>(
    db,
    `SELECT scope, src_server_id, dst_server_id, segment, sketch FROM path_stats
     WHERE ((scope = 'host' AND segment NOT LIKE 'hop:%') OR (scope = 'pair' AND segment IN ('wire', 'end_to_end'))) AND sketch IS NOT NULL ${range.sql}`,
    range.values,
  );
}

export async function newestWindow(db: Db): Promise<Big | null> {
  const [row] = await select<{ w: Big | null }>(db, 'SELECT MAX(window_ns) AS w FROM path_stats');
  return row?.w ?? null;
}

export interface PairGaugeRow {
  src: string;
  dst: string;
  segment: string;
  p50_ns: number;
  p99_ns: number;
  samples: Big;
  faults: Big;
  bound_ns: number;
}

/** Each pair's newest window after `sinceNs`: the given segments' figures. */
export const newestPairStats = (db: Db, sinceNs: string, segments: readonly string[]): Promise<PairGaugeRow[]> =>
  select<PairGaugeRow>(
    db,
    `SELECT a.name AS src, b.name AS dst, s.segment, s.p50_ns, s.p99_ns, s.samples, s.faults, s.bound_ns
     FROM path_stats s
     JOIN (SELECT src_server_id, dst_server_id, MAX(window_ns) AS w FROM path_stats WHERE window_ns > ? AND scope = 'pair' GROUP BY src_server_id, dst_server_id) l
       ON l.src_server_id = s.src_server_id AND l.dst_server_id = s.dst_server_id AND l.w = s.window_ns
     JOIN servers a ON a.id = s.src_server_id JOIN servers b ON b.id = s.dst_server_id
     WHERE s.window_ns > ? AND s.scope = 'pair' AND s.flow_id = 0 AND s.segment IN (?)`,
    [sinceNs, sinceNs, segments],
  );

export const unmatchedSince = (db: Db, sinceNs: string): Promise<{ reason: string; n: Decimal }[]> =>
  select(db, 'SELECT reason, SUM(samples) AS n FROM unmatched WHERE window_ns > ? GROUP BY reason', [sinceNs]);

// ---- the probe mesh ----

/** A row of mesh_edges with its servers' names (protocol/mesh.ts MeshEdgeRow is an edge as the wire carries it). */
export interface StoredMeshEdgeRow {
  epoch: Big;
  /** The prober's name. */
  a: string;
  /** The peer's name (`manager` for the manager's responder, peer 0). */
  b: string;
  at_unix_ms: Big;
  /** When the edge was measured (the prober's wall clock); the round's end for older observers. */
  edge_unix_ms: Big;
  sent: number;
  lost: number;
  /** Exact, as text. */
  offset_ns: string | null;
  bound_ns: number | null;
  fwd_min_ns: number | null;
  fwd_p50_ns: number | null;
  bwd_min_ns: number | null;
  bwd_p50_ns: number | null;
}

/** Mesh edges with their servers' names (the manager's responder, peer 0, named by the first value). */
const MESH_EDGES = `SELECT e.epoch, a.name AS a, COALESCE(b.name, ?) AS b, e.at_unix_ms, COALESCE(e.edge_unix_ms, e.at_unix_ms) AS edge_unix_ms, e.sent, e.lost, CAST(e.offset_ns AS CHAR) AS offset_ns, e.bound_ns, e.fwd_min_ns, e.fwd_p50_ns, e.bwd_min_ns, e.bwd_p50_ns
  FROM mesh_edges e JOIN servers a ON a.id = e.server_id LEFT JOIN servers b ON b.id = e.peer_id`;

/** The mesh's edges of the rounds fromEpoch..toEpoch, by round. */
export const meshEdgesOfRounds = (db: Db, manager: string, fromEpoch: number, toEpoch: number): Promise<StoredMeshEdgeRow[]> =>
  select<StoredMeshEdgeRow>(db, `${MESH_EDGES} WHERE e.epoch BETWEEN ? AND ? ORDER BY e.epoch`, [manager, fromEpoch, toEpoch]);

/** Up to `limit` mesh rounds (epochs) from `epoch` on (`up`) or back from it, nearest first. */
export async function meshRoundsFrom(db: Db, epoch: number, limit: number, up: boolean): Promise<number[]> {
  const rows = await select<{ epoch: Big }>(db, `SELECT DISTINCT epoch FROM mesh_edges WHERE epoch ${up ? '>=' : '<='} ? ORDER BY epoch ${up ? 'ASC' : 'DESC'} LIMIT ?`, [epoch, limit]);
  return rows.map((r) => Number(r.epoch));
}

/** The newest settled mesh round (null: none yet). */
export async function newestSettledMeshRound(db: Db): Promise<number | null> {
  const [row] = await select<{ epoch: Big | null }>(db, 'SELECT MAX(epoch) AS epoch FROM mesh_rounds_settled');
  return row?.epoch === null || row?.epoch === undefined ? null : Number(row.epoch);
}

export interface SettledMeshRoundRow {
  epoch: Big;
  ref_unix_ms: number;
  edges: number;
  rejected: number;
}

/** A server's clock in a settled mesh round. */
export interface MeshClockRow extends ClockFields {
  epoch: Big;
}

export const settledMeshRounds = (db: Db, fromEpoch: number, toEpoch: number): Promise<SettledMeshRoundRow[]> =>
  select<SettledMeshRoundRow>(db, 'SELECT epoch, ref_unix_ms, edges, rejected FROM mesh_rounds_settled WHERE epoch BETWEEN ? AND ?', [fromEpoch, toEpoch]);

export const settledMeshClocks = (db: Db, fromEpoch: number, toEpoch: number): Promise<MeshClockRow[]> =>
  select<MeshClockRow>(
    db,
    `SELECT c.epoch, s.name AS server, CAST(c.offset_ns AS CHAR) AS offset_ns, c.bound_ns, c.drift_ppb, c.drift_bound_ppb
     FROM mesh_clocks c JOIN servers s ON s.id = c.server_id WHERE c.epoch BETWEEN ? AND ?`,
    [fromEpoch, toEpoch],
  );

/** Settled rounds and their clocks, in one transaction (IGNORE: another worker may have settled them too). */
export async function saveSettledMeshRounds(
  conn: PoolConnection,
  rounds: [epoch: number, refUnixMs: number, edges: number, rejected: number][],
  clocks: [epoch: number, serverId: number, offsetNs: string, boundNs: number, driftPpb: number, driftBoundPpb: number][],
): Promise<void> {
  if (!rounds.length) return;
  await conn.beginTransaction();
  try {
    for (let i = 0; i < clocks.length; i += 5000) await conn.query('INSERT IGNORE INTO mesh_clocks (epoch, server_id, offset_ns, bound_ns, drift_ppb, drift_bound_ppb) VALUES ?', [clocks.slice(i, i + 5000)]);
    await conn.query('INSERT IGNORE INTO mesh_rounds_settled (epoch, ref_unix_ms, edges, rejected) VALUES ?', [rounds]);
    await conn.commit();
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  }
}

/** The mesh's measured edges dated in [fromUnixMs, toUnixMs), by round. */
export const meshEdges = (db: Db, manager: string, fromUnixMs: number, toUnixMs: number): Promise<StoredMeshEdgeRow[]> =>
  select<StoredMeshEdgeRow>(db, `${MESH_EDGES} WHERE e.at_unix_ms >= ? AND e.at_unix_ms < ? ORDER BY e.epoch`, [manager, fromUnixMs, toUnixMs]);
