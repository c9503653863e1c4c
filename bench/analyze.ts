/**
 * bench/analyze: records analyzed per second, end to end, over synthetic but realistic data
 * (local/synthetic.ts: 8 servers with skewed drifting clocks, flows between every pair in both
 * directions, retransmissions), three ways in one run:
 * - ours, the stream stage (analyzer/stream/stage.ts): records published to the Redis records
 *   streams as observers publish them (binary, sharded by flow into one stream per worker),
 *   analyzed into statistics, unmatched counts, flows and spikes in MariaDB by --workers stage
 *   processes (bench/stream-worker.ts; default: one per core), each owning its shard. The
 *   records go in rounds of a million (publishing is not timed; Redis holds one round at a
 *   time), after a warm-up of --warmup-records that is not counted (below); the cost per record over the whole run is compared with that over the first million
 *   (flat in history: the ratio stays near 1), and the peak resident memory of the workers
 *   together is kept, and their CPU time per record (ours.workerCpuUsPerRecord, steadier than
 *   records/s on a shared machine: 2 cores at 2 µs a record make 1 M records/s at best), and
 *   that of the Redis and MariaDB servers while the workers run (ours.redisCpuUsPerRecord,
 *   ours.mariadbCpuUsPerRecord: they share the same cores);
 * - the batch analyzer (analyzer/analyze.ts) over --reference-records of the same records in
 *   packets, as the ingest would have loaded them;
 * - the reference: a straightforward SQL JOIN of those records into path rows (INSERT ...
 *   SELECT joining sender and receiver rows on flow_id and sample_seq through an index, clock
 *   offsets applied from each server's latest round).
 * The synthetic fleet makes --fleet-rate records per second of its own time (default a million
 * a minute): the denser, the more records share each window's per-step work (merging and
 * writing its sketches). Medians, ratios, JSON and one line. Run: npm run bench:analyze
 * [-- --records 10000000 --reference-records 1000000 --rounds 1 --workers 2 --step-records 250000
 * --fleet-rate 16667 --warmup-records 2000000]. Needs root (the local Redis and MariaDB).
 * SIGTERM stops it and its workers, and deletes its streams.
 */
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import { serverPids, startMariaDb, startRedis } from '../local/servers.js';
import { processCpuMs } from '../local/exec.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { publishSynthetic, syntheticFleet, writeSynthetic, type SyntheticOptions } from '../local/synthetic.js';
import { analyze } from '../analyzer/analyze.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { recordStream } from '../protocol/redis.js';
import { DEFAULT_STEP_RECORDS } from '../analyzer/stream/stage.js';
import { projectRoot } from '../lib/paths.js';
import { localServers, numberArg, median } from './common.js';

const records = numberArg('records', 10_000_000);
const refRecords = numberArg('reference-records', Math.min(records, 1_000_000));
const rounds = numberArg('rounds', 1);
/** Stream-stage worker processes (and record shards); the machine's cores by default. */
const workers = numberArg('workers', Math.max(1, availableParallelism()));
/** Records per step of a stream worker (the stage's maxRecords). */
const stepRecords = numberArg('step-records', DEFAULT_STEP_RECORDS);
const ROUND = Math.min(1_000_000, records);
/**
 * Records the workers analyze before the clock starts (a fifth of --records by default): a stage
 * is a service that runs for days, so the first records' extra cost (V8 compiling the code, the
 * heap's first growth, statements prepared on new connections) is paid once per process, not per
 * record. Measured: a cold worker's first 250,000 records cost 3.5-4.3 µs of CPU each, falling over
 * about two million more to ~1.5 µs. Without the warm-up, that cost would also hide any growth
 * with history from perRecordCostRatio. The warm-up's records come from a stream of their own and
 * go through stages of their own (thrown away after) into the same database, whose results are
 * then deleted (the timed run's rows are the same as without a warm-up). Its own rate is in the
 * JSON (warmup); --warmup-records 0 measures cold workers.
 */
const warmupRecords = numberArg('warmup-records', Math.round(records / 5));
const DB = 'latscope_bench_analyze';
const STREAM_DB = 'latscope_bench_stream';
const STREAM = 'latscope:bench:analyze';
const WARMUP_STREAM = 'latscope:bench:warmup';
/** The tables the stream stage writes its results into. */
const RESULTS = ['packets', 'paths', 'path_stats', 'flow_windows', 'unmatched', 'spikes', 'path_flows', 'stream_checkpoints', 'stream_waiting'];
/**
 * Records the synthetic fleet makes per second of its own time: how densely they fill the
 * 10 s windows. Each window's sketches are merged and written once per step that reaches it,
 * so the sparser the records, the more of that per-window work each record carries. The
 * default, a million a minute, is sparse; a fleet that makes records as fast as the target
 * analyzes them (1,000,000/s) fills a window with 10 M.
 */
const fleetRate = numberArg('fleet-rate', 1e6 / 60);
const spec = (n: number): SyntheticOptions => ({ servers: 8, flowsPerPair: 4, samples: Math.round(n / 2), startNs: 9_000_000_000_000n, spanNs: Math.max(20e9, (n / fleetRate) * 1e9), retransRate: 0.005, seed: 3, batchRecords: 16384, keepTruth: false });
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

/** A stream-stage worker process (bench/stream-worker.ts) and a way to send it a command and read its answer. */
interface Worker {
  proc: ChildProcess;
  ask(cmd: string): Promise<{ records: number; paths: number; steps: number; peakRssMb: number; cpuMs: number; sysMs: number }>;
}

function startWorker(args: object): Promise<Worker> {
  // LATSCOPE_BENCH_WORKER_NODE_ARGS: node options for the workers (e.g. "--cpu-prof" to see where a worker's time goes)
  const nodeArgs = process.env.LATSCOPE_BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // its arguments (passwords among them) in its environment: argv shows in ps to every user
  const proc = spawn(process.execPath, [...nodeArgs, join(projectRoot, 'dist/bench/stream-worker.js')], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LATSCOPE_WORKER_ARGS: JSON.stringify(args) } });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const l = await lines.next();
    if (l.done) throw new Error(`a stream worker ended (exit ${proc.exitCode ?? proc.signalCode})`);
    return l.value;
  };
  const worker: Worker = {
    proc,
    async ask(cmd) {
      proc.stdin!.write(`${cmd}\n`);
      return JSON.parse(await next());
    },
  };
  return next().then(
    (l) => {
      if (l !== 'ready') throw new Error(`a stream worker said ${JSON.stringify(l)}`);
      return worker;
    },
  ).catch((e) => {
    // not yet among the workers the caller stops: this one would keep the benchmark from exiting
    proc.kill('SIGTERM');
    throw e;
  });
}

/**
 * Ours: every record through the stream stage, a round at a time, in `workers` processes: the
 * records are sharded by flow into as many streams, each owned by one worker (--workers 1: one
 * stage in one process).
 */
async function stream(redis: Redis, redisInfo: { host: string; port: number; password: string }): Promise<{ warmup: { records: number; seconds: number; cpuUsPerRecord: number }; records: number; seconds: number; firstRoundUsPerRecord: number; usPerRecord: number; cpuUsPerRecord: number; kernelUsPerRecord: number; redisCpuUsPerRecord: number; mariadbCpuUsPerRecord: number; peakRssMb: number; peakRssMbPerWorker: number; paths: number; steps: number }> {
  const pool = await database(STREAM_DB);
  for (const t of [...RESULTS, 'clock_offsets', 'servers', 'server_addresses']) await pool.query(`TRUNCATE ${t}`);
  const shards = Array.from({ length: workers }, (_, k) => recordStream(k, workers, STREAM));
  const warmShards = Array.from({ length: workers }, (_, k) => recordStream(k, workers, WARMUP_STREAM));
  await redis.del(...shards, ...warmShards);
  const fleet = await syntheticFleet(pool, spec(records));
  const db = await startMariaDb();
  const options = { ...OPTS, graceMs: 3_600_000, entriesPerRead: 64, maxRecords: stepRecords };
  const procs: Worker[] = [];
  let peakRss = 0, peakRssPerWorker = 0, paths = 0, steps = 0;
  let perWorker = new Array<number>(workers).fill(0);
  let busyMs = 0, done = 0, firstRoundUs = NaN, cpuMs = 0, sysMs = 0, redisMs = 0, mariadbMs = 0;
  const warmup = { records: 0, seconds: 0, cpuUsPerRecord: 0 };
  // the servers share the 2 cores with the workers: their CPU while the workers run, per record
  const pids = serverPids();
  const cpuOf = (pid?: number) => (pid ? processCpuMs(pid) : NaN);
  const stopAll = () => procs.forEach((w) => w.proc.kill('SIGTERM'));
  process.once('SIGTERM', stopAll);
  process.once('SIGINT', stopAll);
  try {
    for (let w = 0; w < workers; w++)
      procs.push(await startWorker({ redis: redisInfo, db: { ...db, database: STREAM_DB }, stream: STREAM, shards: workers, mine: [w], options, warmupStream: WARMUP_STREAM }));
    if (warmupRecords > 0 && !stopping) {
      // records of the same fleet (its servers, flows and clock rounds are already stored), analyzed to the end, their results deleted after
      const warmFleet = await syntheticFleet(pool, spec(warmupRecords));
      await publishSynthetic(redis, WARMUP_STREAM, warmFleet.servers, warmFleet.records, warmupRecords, 2048, workers);
      const t0 = process.hrtime.bigint();
      const answers = await Promise.all(procs.map((w) => w.ask('warmup')));
      warmup.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      warmup.records = answers.reduce((s, x) => s + x.records, 0);
      warmup.cpuUsPerRecord = (answers.reduce((s, x) => s + x.cpuMs, 0) * 1000) / warmup.records;
      peakRss = Math.max(peakRss, answers.reduce((s, x) => s + x.peakRssMb, 0));
      await redis.del(...warmShards);
      for (const t of RESULTS) await pool.query(`DELETE FROM ${t}`);
      console.error(`bench/analyze: warm-up ${warmup.records.toLocaleString('en')} records, ${Math.round(warmup.records / warmup.seconds).toLocaleString('en')} records/s (${warmup.cpuUsPerRecord.toFixed(2)} µs of worker CPU per record), not counted`);
    }
    while (done < records && !stopping) {
      const n = await publishSynthetic(redis, STREAM, fleet.servers, fleet.records, Math.min(ROUND, records - done), 2048, workers);
      if (!n) break;
      // the publishing's garbage (the observers' work, not the stage's) is collected before the clock starts
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = process.hrtime.bigint();
      const redis0 = cpuOf(pids.redis), mariadb0 = cpuOf(pids.mariadb);
      const last = done + n >= records;
      const answers = await Promise.all(procs.map((w) => w.ask(last ? 'finish' : 'drain')));
      busyMs += Number(process.hrtime.bigint() - t0) / 1e6;
      redisMs += cpuOf(pids.redis) - redis0;
      mariadbMs += cpuOf(pids.mariadb) - mariadb0;
      const got = answers.reduce((s, x) => s + x.records, 0);
      done += got;
      perWorker = perWorker.map((r, k) => r + answers[k]!.records);
      cpuMs += answers.reduce((s, x) => s + x.cpuMs, 0);
      sysMs += answers.reduce((s, x) => s + x.sysMs, 0);
      paths = answers.reduce((s, x) => s + x.paths, 0);
      steps = answers.reduce((s, x) => s + x.steps, 0);
      peakRss = Math.max(peakRss, answers.reduce((s, x) => s + x.peakRssMb, 0));
      peakRssPerWorker = Math.max(peakRssPerWorker, ...answers.map((x) => x.peakRssMb));
      if (Number.isNaN(firstRoundUs)) firstRoundUs = (busyMs * 1000) / got;
      console.error(`bench/analyze: stream ${done.toLocaleString('en')} of ${records.toLocaleString('en')} records, ${Math.round((done / busyMs) * 1000).toLocaleString('en')} records/s (${workers} worker${workers > 1 ? 's' : ''}, ${((cpuMs * 1000) / done).toFixed(2)} µs of worker CPU per record, ${((sysMs * 1000) / done).toFixed(2)} of it in the kernel; Redis ${((redisMs * 1000) / done).toFixed(2)}, MariaDB ${((mariadbMs * 1000) / done).toFixed(2)}; records per worker ${perWorker.map((r) => r.toLocaleString('en')).join(' / ')})`);
    }
    await Promise.all(procs.map((w) => w.proc.stdin!.end('stop\n')));
    await Promise.all(procs.map((w) => (w.proc.exitCode === null ? new Promise((r) => w.proc.once('exit', r)) : undefined)));
  } finally {
    stopAll();
    process.off('SIGTERM', stopAll);
    process.off('SIGINT', stopAll);
    await redis.del(...shards, ...warmShards);
    await pool.end();
  }
  return { warmup, records: done, seconds: busyMs / 1000, firstRoundUsPerRecord: firstRoundUs, usPerRecord: (busyMs * 1000) / done, cpuUsPerRecord: (cpuMs * 1000) / done, kernelUsPerRecord: (sysMs * 1000) / done, redisCpuUsPerRecord: (redisMs * 1000) / done, mariadbCpuUsPerRecord: (mariadbMs * 1000) / done, peakRssMb: peakRss, peakRssMbPerWorker: peakRssPerWorker, paths, steps };
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
  const servers = localServers();
  const r = await startRedis();
  const redis = new Redis({ host: r.host, port: r.port, password: r.password });
  const ours: Awaited<ReturnType<typeof stream>>[] = [];
  const batch: { seconds: number; paths: number }[] = [];
  const refs: { seconds: number; paths: number; indexSeconds: number }[] = [];
  try {
    for (let k = 0; k < rounds && !stopping; k++) ours.push(await stream(redis, r));
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
      fleetRecordsPerSec: Math.round(fleetRate),
      peakRssMbPerWorker: Math.max(...ours.map((o) => o.peakRssMbPerWorker)),
      workers,
      rounds,
      warmup: { records: ours[0]!.warmup.records, recordsPerSec: Math.round(median(ours.map((o) => o.warmup.records / o.warmup.seconds))) || 0, workerCpuUsPerRecord: median(ours.map((o) => o.warmup.cpuUsPerRecord)) || 0 },
      ours: { seconds: median(ours.map((o) => o.seconds)), usPerRecord: median(ours.map((o) => o.usPerRecord)), firstMillionUsPerRecord: median(ours.map((o) => o.firstRoundUsPerRecord)), workerCpuUsPerRecord: median(ours.map((o) => o.cpuUsPerRecord)), workerKernelUsPerRecord: median(ours.map((o) => o.kernelUsPerRecord)), redisCpuUsPerRecord: median(ours.map((o) => o.redisCpuUsPerRecord)), mariadbCpuUsPerRecord: median(ours.map((o) => o.mariadbCpuUsPerRecord)), paths: ours[0]!.paths, steps: ours[0]!.steps },
      batch: { seconds: median(batch.map((x) => x.seconds)), paths: batch[0]!.paths },
      reference: { seconds: median(refs.map((x) => x.seconds)), paths: refs[0]!.paths, indexSeconds: median(refs.map((x) => x.indexSeconds)) },
      ratioToReference: oursRate / refRate,
      ratioToBatch: oursRate / batchRate,
      target: { recordsPerSec: 1_000_000, met: oursRate >= 1_000_000 && ours[0]!.records >= 10_000_000, perRecordCostRatio: 1.1, peakRssMb: 1024 },
    };
    console.log(JSON.stringify(result));
    console.log(
      `analyze: stream stage ${result.recordsPerSec.toLocaleString('en')} records/s end to end from Redis to MariaDB over ${result.records.toLocaleString('en')} records after a warm-up of ${result.warmup.records.toLocaleString('en')} ` +
        `(cost per record x${result.perRecordCostRatio.toFixed(2)} of the first million's, peak ${result.peakRssMb} MB) vs the batch analyzer ${result.batchRecordsPerSec.toLocaleString('en')} (x${result.ratioToBatch.toFixed(1)}) ` +
        `and a plain SQL JOIN ${result.referenceRecordsPerSec.toLocaleString('en')} (x${result.ratioToReference.toFixed(2)}) over ${refN.toLocaleString('en')}; median of ${rounds}; target >= 1,000,000 records/s: ${result.target.met ? 'met' : 'NOT met'}`,
    );
  } finally {
    redis.disconnect();
    await servers.stop();
  }
}

main().catch((e) => {
  console.error(`bench/analyze: ${(e as Error).message}`);
  process.exitCode = 1;
});
