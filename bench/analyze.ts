/**
 * bench/analyze: records analyzed per second, end to end, over synthetic but realistic data
 * (local/synthetic.ts: 8 servers with skewed drifting clocks, flows between every pair in both
 * directions, retransmissions), three ways in one run:
 * - ours, the stream stage (analyzer/stream/stage.ts): records published to a Redis stream as
 *   observers publish them, analyzed into statistics, unmatched counts, flows and spikes in
 *   MariaDB. The records go in rounds of a million (publishing is not timed; Redis holds one
 *   round at a time); its cost per record over the whole run is compared with that over the
 *   first million (flat in history: the ratio stays near 1), and its peak resident memory kept;
 * - the batch analyzer (analyzer/analyze.ts) over --reference-records of the same records in
 *   packets, as the ingest would have loaded them;
 * - the reference: a straightforward SQL JOIN of those records into path rows (INSERT ...
 *   SELECT joining sender and receiver rows on flow_id and sample_seq through an index, clock
 *   offsets applied from each server's latest round).
 * Medians, ratios, JSON and one line. Run: npm run bench:analyze [-- --records 10000000
 * --reference-records 1000000 --rounds 1]. Needs root (the local Redis and MariaDB). SIGTERM
 * stops it between steps and deletes its stream.
 */
import { Redis } from 'ioredis';
import { startMariaDb, startRedis } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { publishSynthetic, syntheticFleet, writeSynthetic, type SyntheticOptions } from '../local/synthetic.js';
import { analyze } from '../analyzer/analyze.js';
import { StreamStage } from '../analyzer/stream/stage.js';
import { numberArg, median } from './common.js';

const records = numberArg('records', 10_000_000);
const refRecords = numberArg('reference-records', Math.min(records, 1_000_000));
const rounds = numberArg('rounds', 1);
const ROUND = Math.min(1_000_000, records);
const DB = 'latscope_bench_analyze';
const STREAM_DB = 'latscope_bench_stream';
const STREAM = 'latscope:bench:analyze';
const spec = (n: number): SyntheticOptions => ({ servers: 8, flowsPerPair: 4, samples: Math.round(n / 2), startNs: 9_000_000_000_000n, spanNs: Math.max(60e9, (n / 1e6) * 60e9), retransRate: 0.005, seed: 3, batchRecords: 16384, keepTruth: false });
const OPTS = { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 };
let stopping = false;
process.once('SIGTERM', () => (stopping = true));
process.once('SIGINT', () => (stopping = true));

async function database(name: string): Promise<Pool> {
  const db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`CREATE DATABASE IF NOT EXISTS ${name}`);
  await admin.end();
  const pool = openPool({ ...db, database: name });
  await migrate(pool);
  return pool;
}

/** The batch analyzer's input: the records in packets, written once and kept for the next runs. */
async function prepare(): Promise<Pool> {
  const pool = await database(DB);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_spec (spec VARCHAR(512) NOT NULL)');
  const want = JSON.stringify(spec(refRecords), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  const [[have]] = (await pool.query('SELECT spec FROM bench_spec')) as any;
  if (have?.spec !== want) {
    console.error(`bench/analyze: writing ${refRecords} synthetic records into packets (once; kept in ${DB} for the next runs)`);
    for (const t of ['packets', 'ingest_batches', 'clock_offsets', 'servers', 'server_addresses', 'bench_spec']) await pool.query(`TRUNCATE ${t}`);
    const t0 = Date.now();
    const syn = await writeSynthetic(pool, spec(refRecords));
    await pool.query('INSERT INTO bench_spec VALUES (?)', [want]);
    console.error(`bench/analyze: ${syn.records} records in ${syn.batches} batches written in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  return pool;
}

/** Ours: every record through the stream stage, a round at a time. */
async function stream(redis: Redis): Promise<{ records: number; seconds: number; firstRoundUsPerRecord: number; usPerRecord: number; peakRssMb: number; paths: number; steps: number }> {
  const pool = await database(STREAM_DB);
  for (const t of ['packets', 'paths', 'path_stats', 'flow_windows', 'unmatched', 'spikes', 'path_flows', 'stream_checkpoints', 'clock_offsets', 'servers', 'server_addresses']) await pool.query(`TRUNCATE ${t}`);
  await redis.del(STREAM);
  const fleet = await syntheticFleet(pool, spec(records));
  const stage = new StreamStage(redis, pool, { ...OPTS, graceMs: 3_600_000, stream: STREAM, consumer: 'bench', entriesPerRead: 64, log: (l) => console.error(l), stepLog: process.env.LATSCOPE_BENCH_VERBOSE ? (l) => console.error(l) : undefined });
  if (!(await stage.acquire(5))) throw new Error('the bench stream is held by another process');
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  let busyMs = 0, done = 0, firstRoundUs = NaN;
  try {
    while (done < records && !stopping) {
      const n = await publishSynthetic(redis, STREAM, fleet.servers, fleet.records, Math.min(ROUND, records - done), 2048);
      if (!n) break;
      // the publishing's garbage (the observers' work, not the stage's) is collected before the clock starts
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = process.hrtime.bigint();
      const last = done + n >= records;
      const got = last ? await stage.finish() : await stage.drain();
      busyMs += Number(process.hrtime.bigint() - t0) / 1e6;
      done += got;
      if (Number.isNaN(firstRoundUs)) firstRoundUs = (busyMs * 1000) / got;
      console.error(`bench/analyze: stream ${done.toLocaleString('en')} of ${records.toLocaleString('en')} records, ${Math.round((done / busyMs) * 1000).toLocaleString('en')} records/s`);
    }
  } finally {
    clearInterval(sampler);
    await stage.release();
    await redis.del(STREAM);
    await pool.end();
  }
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return { records: done, seconds: busyMs / 1000, firstRoundUsPerRecord: firstRoundUs, usPerRecord: (busyMs * 1000) / done, peakRssMb: Math.round(peakRss / 1048576), paths: stage.counters.paths, steps: stage.counters.steps };
}

async function reset(pool: Pool): Promise<void> {
  for (const t of ['paths', 'path_stats', 'flow_windows', 'unmatched', 'spikes', 'analysis_pending', 'path_flows']) await pool.query(`TRUNCATE ${t}`);
  await pool.query('UPDATE ingest_batches SET analyzed = 0');
}

/** The reference: one INSERT ... SELECT joining the two ends, with each server's latest offset. */
async function reference(pool: Pool): Promise<{ seconds: number; paths: number; indexSeconds: number }> {
  const t0 = Date.now();
  await pool.query('ALTER TABLE packets ADD KEY IF NOT EXISTS ref_join (flow_id, sample_seq)');
  const indexSeconds = (Date.now() - t0) / 1000;
  await pool.query('DROP TABLE IF EXISTS ref_paths');
  await pool.query(`CREATE TABLE ref_paths (rx_server_id INT UNSIGNED NOT NULL, rx_seq BIGINT UNSIGNED NOT NULL, tx_server_id INT UNSIGNED NOT NULL, tx_seq BIGINT UNSIGNED NOT NULL,
    tx_sock_tcp BIGINT, tx_tcp_ip BIGINT, tx_ip_dev BIGINT, wire BIGINT, rx_dev_ip BIGINT, rx_ip_tcp BIGINT, rx_tcp_sock BIGINT, end_to_end BIGINT, PRIMARY KEY (rx_server_id, rx_seq)) ENGINE=InnoDB`);
  const t1 = Date.now();
  const [res] = (await pool.query(`INSERT IGNORE INTO ref_paths
    SELECT rx.server_id, rx.observer_seq, tx.server_id, tx.observer_seq,
      tx.tcp_ns - tx.sock_ns, tx.ip_ns - tx.tcp_ns, tx.dev_ns - tx.ip_ns,
      (CAST(rx.dev_ns AS SIGNED) - ro.offset_ns) - (CAST(tx.dev_ns AS SIGNED) - tox.offset_ns),
      rx.ip_ns - rx.dev_ns, rx.tcp_ns - rx.ip_ns, rx.sock_ns - rx.tcp_ns,
      (CAST(rx.sock_ns AS SIGNED) - ro.offset_ns) - (CAST(tx.sock_ns AS SIGNED) - tox.offset_ns)
    FROM packets tx
    JOIN packets rx ON rx.flow_id = tx.flow_id AND rx.sample_seq = tx.sample_seq AND rx.dir = 'rx'
    JOIN servers ts ON ts.id = tx.server_id JOIN servers rs ON rs.id = rx.server_id
    JOIN (SELECT c.server, c.offset_ns FROM clock_offsets c JOIN (SELECT server, MAX(round) AS r FROM clock_offsets GROUP BY server) l ON l.server = c.server AND l.r = c.round) tox ON tox.server = ts.name
    JOIN (SELECT c.server, c.offset_ns FROM clock_offsets c JOIN (SELECT server, MAX(round) AS r FROM clock_offsets GROUP BY server) l ON l.server = c.server AND l.r = c.round) ro ON ro.server = rs.name
    WHERE tx.dir = 'tx'`)) as any;
  return { seconds: (Date.now() - t1) / 1000, paths: Number(res.affectedRows), indexSeconds };
}

async function main(): Promise<void> {
  const r = await startRedis();
  const redis = new Redis({ host: r.host, port: r.port, password: r.password });
  const ours: Awaited<ReturnType<typeof stream>>[] = [];
  const batch: { seconds: number; paths: number }[] = [];
  const refs: { seconds: number; paths: number; indexSeconds: number }[] = [];
  try {
    for (let k = 0; k < rounds && !stopping; k++) ours.push(await stream(redis));
    const pool = await prepare();
    const [[{ n }]] = (await pool.query('SELECT COUNT(*) AS n FROM packets')) as any;
    for (let k = 0; k < rounds && !stopping; k++) {
      await reset(pool);
      const res = await analyze(pool, { ...OPTS, log: (l) => console.error(l) });
      batch.push({ seconds: res.elapsedMs / 1000, paths: res.paths });
      refs.push(await reference(pool));
      console.error(`round ${k + 1}: batch analyzer ${batch.at(-1)!.seconds.toFixed(1)} s, SQL JOIN ${refs.at(-1)!.seconds.toFixed(1)} s over ${Number(n).toLocaleString('en')} records`);
    }
    await pool.query('ALTER TABLE packets DROP KEY IF EXISTS ref_join');
    await pool.end();
    if (stopping) throw new Error('stopped (SIGTERM)');
    const refN = Number(n);
    const oursRate = median(ours.map((o) => o.records / o.seconds));
    const batchRate = refN / median(batch.map((x) => x.seconds));
    const refRate = refN / median(refs.map((x) => x.seconds));
    const result = {
      bench: 'analyze',
      records: ours[0]!.records,
      recordsPerSec: Math.round(oursRate),
      referenceRecordsPerSec: Math.round(refRate),
      batchRecordsPerSec: Math.round(batchRate),
      referenceRecords: refN,
      perRecordCostRatio: median(ours.map((o) => o.usPerRecord / o.firstRoundUsPerRecord)),
      peakRssMb: Math.max(...ours.map((o) => o.peakRssMb)),
      rounds,
      ours: { seconds: median(ours.map((o) => o.seconds)), usPerRecord: median(ours.map((o) => o.usPerRecord)), firstMillionUsPerRecord: median(ours.map((o) => o.firstRoundUsPerRecord)), paths: ours[0]!.paths, steps: ours[0]!.steps },
      batch: { seconds: median(batch.map((x) => x.seconds)), paths: batch[0]!.paths },
      reference: { seconds: median(refs.map((x) => x.seconds)), paths: refs[0]!.paths, indexSeconds: median(refs.map((x) => x.indexSeconds)) },
      ratioToReference: oursRate / refRate,
      ratioToBatch: oursRate / batchRate,
      target: { recordsPerSec: 1_000_000, met: oursRate >= 1_000_000 && ours[0]!.records >= 10_000_000, perRecordCostRatio: 1.1, peakRssMb: 1024 },
    };
    console.log(JSON.stringify(result));
    console.log(
      `analyze: stream stage ${result.recordsPerSec.toLocaleString('en')} records/s end to end from Redis to MariaDB over ${result.records.toLocaleString('en')} records ` +
        `(cost per record x${result.perRecordCostRatio.toFixed(2)} of the first million's, peak ${result.peakRssMb} MB) vs the batch analyzer ${result.batchRecordsPerSec.toLocaleString('en')} (x${result.ratioToBatch.toFixed(1)}) ` +
        `and a plain SQL JOIN ${result.referenceRecordsPerSec.toLocaleString('en')} (x${result.ratioToReference.toFixed(2)}) over ${refN.toLocaleString('en')}; median of ${rounds}; target >= 1,000,000 records/s: ${result.target.met ? 'met' : 'NOT met'}`,
    );
  } finally {
    redis.disconnect();
  }
}

main().catch((e) => {
  console.error(`bench/analyze: ${(e as Error).message}`);
  process.exitCode = 1;
});
