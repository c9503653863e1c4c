/**
 * Retention against the project's MariaDB: the migrated tables are partitioned by day; old data
 * goes and recent data stays (p_old rows in chunks, whole days by DROP PARTITION when the clock
 * moves on ten days), for packets, paths, histograms and the analyzer's results; and the ingest
 * (the real one, LOAD DATA into the newest day) keeps loading while retention runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, startMariaDb, type MariaDbInfo } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { applyRetention, ensurePartitions } from '../db/retention.js';
import { Ingest } from '../ingest/ingest.js';
import { encodeRows, ROW_FORMAT, type PacketRecord } from '../protocol/records.js';
import { toFields } from '../protocol/redis.js';

const DB = 'latscope_test_retention';
const DAY = 86_400_000;
let db: MariaDbInfo, pool: Pool, redis: Redis;

before(async () => {
  const r = await startRedis();
  redis = new Redis({ host: r.host, port: r.port, password: r.password });
  db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  pool = openPool({ ...db, database: DB }, 8);
  await migrate(pool);
  await pool.query("INSERT INTO servers (id, name) VALUES (1, 'ret1'), (2, 'ret2')");
});
after(async () => {
  await pool?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await pool?.end();
  redis?.disconnect();
});

const q = async (sql: string, v: unknown[] = []) => ((await pool.query(sql, v)) as any)[0];
const count = async (sql: string, v: unknown[] = []) => Number((await q(sql, v))[0].n);
const parts = async (table: string) => (await q('SELECT PARTITION_NAME AS p FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY PARTITION_ORDINAL_POSITION', [table])).map((r: any) => r.p as string);

/** n packets of server 1 from observer_seq `first` (µs), one per µs; and a path for each. */
async function putPackets(first: number, n: number): Promise<void> {
  await pool.query(
    `INSERT INTO packets (server_id, observer_seq, dir, family, src, sport, dst, dport, flow_id, sample_seq, stream_offset, seg_start, seg_end, attempt, flags)
     SELECT 1, ? + seq, 'tx', 4, '10.0.0.1', 1, '10.0.0.2', 2, 7, seq, seq, 0, 1, 0, 4 FROM seq_0_to_${n - 1}`,
    [first],
  );
  await pool.query(
    `INSERT INTO paths (rx_server_id, rx_seq, tx_server_id, tx_seq, src_server_id, dst_server_id, flow_id, sample_seq, attempt, flags, window_ns, t_ns)
     SELECT 2, ? + seq, 1, ? + seq, 1, 2, 7, seq, 0, 4, 0, 0 FROM seq_0_to_${n - 1}`,
    [first, first],
  );
}

/** Results of one window dated at `ms`, with its clock offset, histograms and an analyzed batch. */
async function putWindow(windowNs: number, ms: number): Promise<void> {
  await pool.query("INSERT INTO path_stats (window_ns, window_unix_ms, window_len_ns, scope, src_server_id, dst_server_id, segment, samples) VALUES (?, ?, 1e10, 'pair', 1, 2, 'wire', 5)", [windowNs, ms]);
  await pool.query('INSERT INTO flow_windows (window_ns, flow_id, src_server_id, dst_server_id, samples, size_samples, retransmissions, sample_size) VALUES (?, 7, 1, 2, 5, 5, 0, 1000)', [windowNs]);
  await pool.query("INSERT INTO unmatched (window_ns, src_server_id, dst_server_id, reason, samples) VALUES (?, 1, 2, 'no_receiver_record', 1)", [windowNs]);
  await pool.query("INSERT INTO spikes (window_ns, rx_server_id, rx_seq, src_server_id, dst_server_id, end_to_end_ns, median_ns, top_segment) VALUES (?, 2, 1, 1, 2, 100, 10, 'wire')", [windowNs]);
  await pool.query(
    "INSERT INTO clock_offsets (server, round, at_ns, offset_ns, bound_ns, drift_ppb, drift_bound_ppb, samples, kept, lost, min_delay_ns, median_delay_ns, at_unix_ms) VALUES ('ret1', ?, ?, 0, 1, 0, 1, 10, 5, 0, 1000, 1000, ?)",
    [windowNs / 1e12, windowNs, ms],
  );
  await pool.query("INSERT INTO layer_histograms (server_id, taken_at, port, dir, from_layer, to_layer, bucket, count) VALUES (1, FROM_UNIXTIME(?), 5000, 'tx', 'sock', 'tcp', 10, 3)", [ms / 1000]);
  await pool.query('INSERT INTO ingest_batches (records, committed_at, analyzed) VALUES (1, FROM_UNIXTIME(?), 1)', [ms / 1000]);
  // a probe mesh round, settled, with its clocks
  const epoch = windowNs / 1e12;
  await pool.query('INSERT INTO mesh_edges (epoch, server_id, peer_id, interval_ms, at_unix_ms, sent, lost) VALUES (?, 1, 2, 10000, ?, 50, 0)', [epoch, ms]);
  await pool.query('INSERT INTO mesh_rounds_settled (epoch, ref_unix_ms, edges, rejected) VALUES (?, ?, 1, 0)', [epoch, ms]);
  await pool.query('INSERT INTO mesh_clocks (epoch, server_id, offset_ns, bound_ns, drift_ppb, drift_bound_ppb) VALUES (?, 1, 5, 1, 0, 1), (?, 2, 7, 1, 0, 1)', [epoch, epoch]);
}

test('old data goes, recent data stays: p_old in chunks, whole days dropped once they age out, results by their window date', async () => {
  const now = Date.now();
  assert.deepEqual(await parts('packets'), ['p_old', 'p_future'], 'the migration partitions packets');
  const made = await ensurePartitions(pool, now);
  assert.ok(made.includes(`packets.p${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}`), made.join(' '));
  assert.ok((await parts('paths')).length > 3 && (await parts('layer_histograms')).length > 3);

  await putPackets((now - 10 * DAY) * 1000, 1000); // before partitioning: p_old
  await putPackets(now * 1000, 500); // today: its own day
  await putWindow(1e12, now - 10 * DAY);
  await putWindow(2e12, now);
  const policy = { packets: 7, histograms: 7, results: 7 };

  const r1 = await applyRetention(pool, policy, now);
  assert.deepEqual(r1.droppedPartitions, [], 'no whole day is old yet');
  assert.equal(r1.deletedRows.packets, 1000);
  assert.equal(r1.deletedRows.paths, 1000);
  assert.equal(await count('SELECT COUNT(*) AS n FROM packets'), 500, 'recent packets stay');
  assert.equal(await count('SELECT COUNT(*) AS n FROM paths'), 500);
  for (const t of ['path_stats', 'flow_windows', 'unmatched', 'spikes', 'clock_offsets', 'layer_histograms', 'ingest_batches', 'mesh_edges', 'mesh_rounds_settled'])
    assert.equal(await count(`SELECT COUNT(*) AS n FROM ${t}`), 1, `${t}: the old row went, the recent one stayed`);
  assert.deepEqual(((await pool.query('SELECT epoch FROM mesh_clocks GROUP BY epoch')) as any)[0].map((r: any) => Number(r.epoch)), [2], 'the old round\'s clocks went with it');
  assert.equal(await count('SELECT COUNT(*) AS n FROM path_stats WHERE window_ns = 2e12'), 1);

  // ten days on: today's day is old, and goes whole; the days ahead are made
  const later = now + 10 * DAY;
  await putPackets(later * 1000, 10);
  const r2 = await applyRetention(pool, policy, later);
  const today = `p${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}`;
  for (const t of ['packets', 'paths', 'layer_histograms']) assert.ok(r2.droppedPartitions.includes(`${t}.${today}`), `${t}.${today} dropped: ${r2.droppedPartitions.join(' ')}`);
  assert.equal(r2.deletedRows.packets ?? 0, 0, 'whole days, no row-by-row delete');
  assert.equal(await count('SELECT COUNT(*) AS n FROM packets'), 10, 'only the newest day is left');
  assert.ok((await parts('packets')).includes(`p${new Date(later + DAY).toISOString().slice(0, 10).replace(/-/g, '')}`), 'days ahead made');
  assert.equal(await count('SELECT COUNT(*) AS n FROM path_stats'), 0);

  // forever means forever
  const r3 = await applyRetention(pool, { packets: 0, histograms: 0, results: 0 }, later + 100 * DAY);
  assert.deepEqual([r3.droppedPartitions, r3.deletedRows], [[], {}]);
  assert.equal(await count('SELECT COUNT(*) AS n FROM packets'), 10);
});

test('the ingest keeps loading the newest day while retention deletes and drops old ones', async () => {
  const now = Date.now();
  await pool.query('DELETE FROM packets');
  await ensurePartitions(pool, now);
  await putPackets((now - 30 * DAY) * 1000, 300_000); // a lot to delete from p_old, in chunks
  const ingest = new Ingest(redis, pool, { consumer: 'ret', stream: `latscope:test:ret:${process.pid}`, histogramStream: `latscope:test:ret:${process.pid}:h`, entriesPerRead: 8, blockMs: 100, retryMs: 50 });
  const rec = (seq: number): PacketRecord => ({
    node: 'ret1', observerSeq: seq, dir: 'tx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: 0,
    segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true, layers: { sock: { tsNs: 1n, cpu: 0, tid: 1 } }, devices: [],
  });
  let retentionDone = 0;
  const retention = applyRetention(pool, { packets: 7, histograms: 7, results: 7 }, now).then((r) => ((retentionDone = Date.now()), r));
  const loadsDone: number[] = [];
  let seq = now * 1000;
  for (let i = 0; i < 40 && (!retentionDone || i < 5); i++) {
    const batch = Array.from({ length: 500 }, () => rec(++seq));
    await ingest.ingest([[`${i + 1}-0`, toFields({ node: 'ret1', first: batch[0]!.observerSeq, last: seq, n: 500, format: ROW_FORMAT, rows: encodeRows(batch) })]]);
    loadsDone.push(Date.now());
  }
  const r = await retention;
  assert.equal(r.deletedRows.packets, 300_000);
  const during = loadsDone.filter((t) => t < retentionDone).length;
  assert.ok(during >= 3, `loads finished while retention ran: ${during} of ${loadsDone.length}`);
  assert.equal(ingest.counters.rows, loadsDone.length * 500, 'every load went in');
  assert.equal(await count('SELECT COUNT(*) AS n FROM packets WHERE observer_seq > ?', [now * 1000]), loadsDone.length * 500);
});
