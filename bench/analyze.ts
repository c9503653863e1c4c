/**
 * bench/analyze: records analyzed per second, end to end (from packets in MariaDB to paths,
 * statistics, unmatched counts and spikes in MariaDB), over synthetic but realistic data
 * (local/synthetic.ts: 8 servers with skewed drifting clocks, flows between every pair in both
 * directions, retransmissions), side by side with the reference: a straightforward SQL JOIN of
 * the same records into path rows (INSERT ... SELECT joining sender and receiver rows on
 * flow_id and sample_seq through an index, clock offsets applied from each server's latest
 * round), in the same run. The data is made once and kept (database latscope_bench_analyze);
 * each round resets the outputs and runs both. Medians, ratio, JSON and one line.
 * Run: npm run bench:analyze [-- --records 10000000 --rounds 1]. Needs root (the local MariaDB).
 */
import { startMariaDb } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { writeSynthetic } from '../local/synthetic.js';
import { analyze } from '../analyzer/analyze.js';
import { numberArg, median } from './common.js';

const records = numberArg('records', 10_000_000);
const rounds = numberArg('rounds', 1);
const DB = 'latscope_bench_analyze';
const SPEC = { servers: 8, flowsPerPair: 4, samples: Math.round(records / 2), startNs: 9_000_000_000_000n, spanNs: 600e9, retransRate: 0.005, seed: 3, batchRecords: 16384 };

async function prepare(): Promise<Pool> {
  const db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
  await admin.end();
  const pool = openPool({ ...db, database: DB });
  await migrate(pool);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_spec (spec VARCHAR(512) NOT NULL)');
  const spec = JSON.stringify(SPEC, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  const [[have]] = (await pool.query('SELECT spec FROM bench_spec')) as any;
  if (have?.spec !== spec) {
    console.error(`bench/analyze: writing ${records} synthetic records (once; kept in ${DB} for the next runs)`);
    for (const t of ['packets', 'ingest_batches', 'clock_offsets', 'servers', 'server_addresses', 'bench_spec']) await pool.query(`TRUNCATE ${t}`);
    const t0 = Date.now();
    const syn = await writeSynthetic(pool, SPEC);
    await pool.query('INSERT INTO bench_spec VALUES (?)', [spec]);
    console.error(`bench/analyze: ${syn.records} records in ${syn.batches} batches written in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  return pool;
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
  const pool = await prepare();
  const [[{ n }]] = (await pool.query('SELECT COUNT(*) AS n FROM packets')) as any;
  const total = Number(n);
  const ours: { seconds: number; paths: number; unmatched: number }[] = [];
  const refs: { seconds: number; paths: number; indexSeconds: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    await reset(pool);
    const res = await analyze(pool, { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536, log: (l) => console.error(l) });
    ours.push({ seconds: res.elapsedMs / 1000, paths: res.paths, unmatched: Object.values(res.unmatched).reduce((a, b) => a + b, 0) });
    refs.push(await reference(pool));
    console.error(`round ${r + 1}: ours ${ours.at(-1)!.seconds.toFixed(1)} s, reference ${refs.at(-1)!.seconds.toFixed(1)} s`);
  }
  await pool.query('ALTER TABLE packets DROP KEY IF EXISTS ref_join');
  await pool.end();
  const oursRate = total / median(ours.map((x) => x.seconds));
  const refRate = total / median(refs.map((x) => x.seconds));
  const result = {
    bench: 'analyze',
    records: total,
    rounds,
    ours: { recordsPerSec: Math.round(oursRate), seconds: median(ours.map((x) => x.seconds)), paths: ours[0]!.paths, unmatched: ours[0]!.unmatched },
    reference: { recordsPerSec: Math.round(refRate), seconds: median(refs.map((x) => x.seconds)), paths: refs[0]!.paths, indexSeconds: median(refs.map((x) => x.indexSeconds)) },
    ratio: oursRate / refRate,
    target: { recordsPerSec: 1_000_000, met: oursRate >= 1_000_000 },
  };
  console.log(JSON.stringify(result));
  console.log(
    `analyze: ${Math.round(oursRate).toLocaleString('en')} records/s end to end (paths, statistics, tail attribution, unmatched, spikes) vs ` +
      `${Math.round(refRate).toLocaleString('en')} for a plain SQL JOIN into path rows (x${result.ratio.toFixed(2)}), ${total.toLocaleString('en')} records, median of ${rounds}; ` +
      `target >= 1,000,000 records/s: ${result.target.met ? 'met' : 'NOT met'}`,
  );
}

main().catch((e) => {
  console.error(`bench/analyze: ${(e as Error).message}`);
  process.exitCode = 1;
});
