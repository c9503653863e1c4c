/**
 * The stream stage (analyzer/stream/stage.ts) on the project's Redis and MariaDB, with synthetic
 * records published as observers publish them: the same answers as the batch analyzer over the
 * same records (statistics, unmatched counts, flows, the injected causes found), without a row
 * per record; exactly once when a worker is killed mid-run and another takes its stream over;
 * one owner per stream; bad entries set aside and counted; raw rows kept only for a sampled
 * share, both ends of a sample together; the waiting records kept in parts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, startMariaDb, type RedisInfo, type MariaDbInfo } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { freshDatabase } from './helpers/database.js';
import { publishSynthetic, syntheticFleet, writeSynthetic, type SyntheticOptions } from '../local/synthetic.js';
import { analyze, type AnalyzeOptions } from '../analyzer/analyze.js';
import { StreamStage, type StreamStageOptions } from '../analyzer/stream/stage.js';
import { loadReport } from '../analyzer/report.js';
import { BAD_RECORD_STREAM, recordStream } from '../protocol/redis.js';
import { projectRoot } from '../lib/paths.js';
import * as store from '../analyzer/store.js';
import { m012 } from '../db/migrations/012_stream_waiting_parts.js';

let redisInfo: RedisInfo, db: MariaDbInfo, redis: Redis;
const pools: Pool[] = [];
const streams: string[] = [];
const OPTS: AnalyzeOptions = { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 };
const SPEC: SyntheticOptions = {
  servers: 4, flowsPerPair: 2, samples: 20_000, startNs: 7_000_000_000_000n, spanNs: 40e9, retransRate: 0.01, seed: 11, batchRecords: 4000,
  slowLink: { from: 0, to: 1, extraNs: 2_000_000, share: 0.03 }, slowReader: { server: 3, extraNs: 1_000_000, share: 0.03 },
};

before(async () => {
  redisInfo = await startRedis();
  db = await startMariaDb();
  redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
});
after(async () => {
  if (streams.length) await redis?.del(...streams);
  redis?.disconnect();
  for (const p of pools) {
    const [[{ d }]] = (await p.query('SELECT DATABASE() AS d')) as any;
    await p.query(`DROP DATABASE IF EXISTS ${d}`).catch(() => {});
    await p.end().catch(() => {});
  }
});

async function fresh(name: string): Promise<Pool> {
  const pool = await freshDatabase(db, name);
  pools.push(pool);
  return pool;
}

/** A database holding the fleet's servers and clocks, and its records published to a fresh stream. */
async function published(name: string, spec = SPEC, entryRecords = 500, shards = 1, format: 'rb1' | 'rows2' = 'rb1'): Promise<{ pool: Pool; stream: string; records: number }> {
  const pool = await fresh(name);
  const stream = `latscope:test:stream:${name}:${process.pid}`;
  for (let k = 0; k < shards; k++) streams.push(recordStream(k, shards, stream));
  await redis.del(...streams);
  const fleet = await syntheticFleet(pool, spec);
  const records = await publishSynthetic(redis, stream, fleet.servers, fleet.records, Infinity, entryRecords, shards, format);
  return { pool, stream, records };
}

const stageOf = (pool: Pool, stream: string, more: Partial<StreamStageOptions> = {}) =>
  new StreamStage(redis, pool, { ...OPTS, graceMs: 3_600_000, stream, consumer: 'test', maxRecords: 5000, entriesPerRead: 4, ...more });

/** The records published and analyzed by one stage from start to end: what a run with faults is compared with. */
async function analyzedByOne(name: string): Promise<Awaited<ReturnType<typeof published>>> {
  const ref = await published(name);
  const stage = stageOf(ref.pool, ref.stream);
  assert.ok(await stage.acquire());
  await stage.finish();
  await stage.release();
  return ref;
}

const rows = async (p: Pool, sql: string) => ((await p.query(sql)) as any)[0] as any[];
const STATS = 'SELECT window_ns, scope, src_server_id, dst_server_id, flow_id, segment, samples, p50_ns, p99_ns, max_ns FROM path_stats ORDER BY window_ns, scope, src_server_id, dst_server_id, flow_id, segment';

test('the stream stage gives the batch analyzer\'s answers over the same records, with no row per record', async () => {
  const batch = await fresh('st_batch');
  await writeSynthetic(batch, SPEC);
  const want = await analyze(batch, OPTS);
  const { pool, stream, records } = await published('st_stream');
  assert.equal(records, want.records, 'the same records');
  const stage = stageOf(pool, stream);
  assert.ok(await stage.acquire());
  const n = await stage.finish();
  assert.equal(n, records);
  const c = stage.counters;
  assert.ok(c.steps >= 5, `several steps (${c.steps}): a path's two records often land in different ones`);
  assert.equal(c.paths, want.paths, 'every path joined');
  assert.equal(c.waiting, 0);
  // the same statistics, window by window, scope by scope, segment by segment
  assert.deepEqual(await rows(pool, STATS), await rows(batch, STATS));
  assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(batch, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
  assert.deepEqual(await rows(pool, 'SELECT * FROM flow_windows ORDER BY 1, 2'), await rows(batch, 'SELECT * FROM flow_windows ORDER BY 1, 2'));
  // no row per record: packets holds only the exemplars' records, paths only the exemplars
  const [[{ pk }]] = (await pool.query('SELECT COUNT(*) AS pk FROM packets')) as any;
  const [[{ pa }]] = (await pool.query('SELECT COUNT(*) AS pa FROM paths')) as any;
  const [[{ sp }]] = (await pool.query('SELECT COUNT(*) AS sp FROM spikes')) as any;
  assert.ok(sp > 0 && pa === sp && pk === 2 * sp, `packets ${pk}, paths ${pa}, spikes ${sp}`);
  // the report names the injected causes, and its spikes have their full breakdown
  const report = await loadReport(pool, {});
  const slow = report.pairs.find((p) => p.src === 'syn1' && p.dst === 'syn2')!;
  assert.equal(slow.tail?.holder, 'wire');
  const reader = report.pairs.find((p) => p.dst === 'syn4')!;
  assert.equal(reader.tail?.holder, 'rx_tcp_sock');
  assert.ok(report.spikes.some((s) => s.src === 'syn1' && s.dst === 'syn2' && s.topSegment === 'wire'));
  // the stream is empty: every entry acknowledged and deleted after its commit
  assert.equal(await redis.xlen(stream), 0);
  const [[cp]] = (await pool.query('SELECT last_id, waiting_records, records FROM stream_checkpoints WHERE stream = ?', [stream])) as any;
  assert.equal(Number(cp.records), records);
  assert.equal(cp.waiting_records, 0);
  await stage.release();
});

test('exactly once: a worker killed mid-run is replayed from its checkpoint by the one that takes its stream over', async () => {
  const ref = await analyzedByOne('st_ref');
  const { pool, stream, records } = await published('st_kill');
  const worker = spawn(process.execPath, [join(projectRoot, 'dist/test/helpers/stream-worker.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LATSCOPE_WORKER_ARGS: JSON.stringify({ redis: { host: redisInfo.host, port: redisInfo.port, password: redisInfo.password }, db: { ...db, database: 'latscope_test_st_kill' }, stream, consumer: 'doomed', maxRecords: 1500, graceMs: 3_600_000 }) }, // not in argv: ps shows argv to every user
  });
  let out = '';
  worker.stdout!.on('data', (d) => (out += d));
  try {
    // let it commit a few steps, then kill it without warning
    for (let i = 0; i < 600; i++) {
      const [[cp]] = (await pool.query('SELECT records FROM stream_checkpoints WHERE stream = ?', [stream])) as any;
      if (cp && Number(cp.records) >= 4000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const other = stageOf(pool, stream, { consumer: 'survivor' });
    assert.equal(await other.acquire(0), false, 'the stream has one owner while the worker lives');
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    assert.match(out, /owns 1/);
    const [[cp]] = (await pool.query('SELECT records FROM stream_checkpoints WHERE stream = ?', [stream])) as any;
    const before = Number(cp.records);
    assert.ok(before > 0 && before < records, `killed mid-run (${before} of ${records} committed)`);
    // its lease ended with its connection: the survivor takes the stream and its pending entries
    assert.ok(await other.acquire(10), 'the lease is free once the worker is gone');
    const n = await other.finish();
    assert.equal(before + n, records, 'every record counted once');
    assert.equal(await redis.xlen(stream), 0);
    assert.equal(Number(((await redis.xpending(stream, 'latscope-analysis')) as [number])[0]), 0, 'nothing left pending');
    assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as an uninterrupted run');
    assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
    await other.release();
  } finally {
    worker.kill('SIGKILL');
  }
});

test('with a backlog, steps hold their results and commit every commit_steps steps: nothing stored or acknowledged before, the same statistics as a commit every step', async () => {
  const ref = await published('st_hold_ref');
  const every = stageOf(ref.pool, ref.stream, { consumer: 'every', maxRecords: 1500, commitSteps: 1 });
  assert.ok(await every.acquire());
  await every.finish();
  await every.release();
  const { pool, stream, records } = await published('st_hold');
  const log: string[] = [];
  const stage = stageOf(pool, stream, { consumer: 'holder', maxRecords: 1500, commitSteps: 3, stepLog: (l) => log.push(l) });
  assert.ok(await stage.acquire());
  const checkpoint = async () => Number(((await pool.query('SELECT COALESCE(SUM(records), 0) AS n FROM stream_checkpoints')) as any)[0][0].n);
  const statRows = async () => Number(((await pool.query('SELECT COUNT(*) AS n FROM path_stats')) as any)[0][0].n);
  const first = await stage.step();
  const second = await stage.step();
  assert.ok(first.records >= 1500 && second.records >= 1500, 'full steps: a backlog');
  assert.equal(stage.counters.records, 0, 'held: not counted until committed');
  assert.equal(stage.counters.held, first.records + second.records, 'held: shown as held');
  assert.equal(await checkpoint(), 0, 'held: no checkpoint yet');
  assert.equal(await statRows(), 0, 'held: no statistics stored yet');
  assert.ok(Number(((await redis.xpending(stream, 'latscope-analysis')) as [number])[0]) >= 6, 'held: their entries still pending');
  const third = await stage.step();
  assert.match(log.join('\n'), /committed with 2 steps held/);
  assert.equal(stage.counters.records, first.records + second.records + third.records, 'the three steps counted at their commit');
  assert.equal(await checkpoint(), stage.counters.records, 'the checkpoint covers the three steps');
  assert.equal(stage.counters.held, 0);
  assert.ok((await statRows()) > 0);
  await stage.finish();
  assert.equal(stage.counters.records, records, 'every record counted once');
  assert.equal(Number(((await redis.xpending(stream, 'latscope-analysis')) as [number])[0]), 0, 'nothing left pending');
  assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as a commit every step');
  assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
  assert.deepEqual(await rows(pool, 'SELECT * FROM flow_windows ORDER BY 1, 2'), await rows(ref.pool, 'SELECT * FROM flow_windows ORDER BY 1, 2'));
  await stage.release();
});

test('a step that fails (its commit refused) is run again from the checkpoint by the next, with the steps it held: every record once', async () => {
  const ref = await analyzedByOne('st_fail_ref');
  const { pool, stream, records } = await published('st_fail');
  const stage = stageOf(pool, stream, { consumer: 'failing', maxRecords: 1500, commitSteps: 3 });
  assert.ok(await stage.acquire());
  await stage.step();
  await stage.step();
  // the third step commits what the two held: MariaDB refuses it
  await pool.query('RENAME TABLE stream_checkpoints TO stream_checkpoints_away');
  try {
    await assert.rejects(stage.step(), /stream_checkpoints/);
  } finally {
    await pool.query('RENAME TABLE stream_checkpoints_away TO stream_checkpoints');
  }
  assert.equal(stage.counters.records, 0, 'nothing counted: nothing committed');
  await stage.finish();
  assert.equal(stage.counters.records, records, 'every record counted once');
  assert.equal(Number(((await redis.xpending(stream, 'latscope-analysis')) as [number])[0]), 0, 'nothing left pending');
  assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as an uninterrupted run');
  assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
  await stage.release();
});

test('entries read ahead while a step waits are analyzed once: by the next step, or, the lease given back, by the worker that takes the stream over', async () => {
  const ref = await analyzedByOne('st_ahead_ref');
  const { pool, stream, records } = await published('st_ahead');
  const first = stageOf(pool, stream, { consumer: 'first', maxRecords: 1500 });
  assert.ok(await first.acquire());
  await first.step();
  await first.step();
  // the third step's entries are on their way while nobody steps: pending for this consumer
  let ahead = 0;
  for (let i = 0; i < 100 && !ahead; i++) {
    const [n] = (await redis.xpending(stream, 'latscope-analysis')) as [number];
    ahead = Number(n);
    if (!ahead) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(ahead > 0, 'the next entries were read ahead');
  await first.release();
  const second = stageOf(pool, stream, { consumer: 'second' });
  assert.ok(await second.acquire());
  const n = await second.finish();
  assert.equal(first.counters.records + n, records, `every record counted once (${first.counters.records} + ${n})`);
  assert.equal(second.counters.replayed, 0);
  assert.equal(Number(((await redis.xpending(stream, 'latscope-analysis')) as [number])[0]), 0, 'nothing left pending');
  assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as one worker\'s run');
  await second.release();
});

test('bad entries are set aside and counted, the good ones of the same read analyzed; raw rows kept for a sampled share, both ends together; the text format still read', async () => {
  // the text format (rows2) of observers before the binary one, still read for one release
  const { pool, stream, records } = await published('st_bad', { ...SPEC, samples: 4000, slowLink: undefined, slowReader: undefined }, 500, 1, 'rows2');
  // counted by id, not by length: the stream is capped (BAD_RECORD_MAXLEN), and a Redis kept
  // from earlier runs may hold it at its cap
  const [[lastBad] = ['0-0']] = await redis.xrevrange(BAD_RECORD_STREAM, '+', '-', 'COUNT', 1);
  await redis.xadd(stream, '*', 'format', 'rows2', 'node', 'syn1', 'n', '1', 'rows', 'not a row\n');
  await redis.xadd(stream, '*', 'format', 'rows2', 'node', 'bad name!', 'n', '0', 'rows', '');
  await redis.xadd(stream, '*', 'format', 'rb1', 'node', 'syn1', 'n', '1', 'records', Buffer.from('LSR1 but cut short'));
  const stage = stageOf(pool, stream, { rawSampleRate: 0.1 });
  assert.ok(await stage.acquire());
  assert.equal(await stage.finish(), records);
  assert.equal(stage.counters.badEntries, 3);
  assert.equal((await redis.xrange(BAD_RECORD_STREAM, `(${lastBad}`, '+')).length, 3, 'kept aside');
  // each with why
  const aside = (await redis.xrevrange(BAD_RECORD_STREAM, '+', '-', 'COUNT', 3)).map(([, f]) => f[f.indexOf('refused') + 1]);
  assert.ok(aside.includes('row 1 is not a record row') && aside.includes('no valid node') && aside.some((w) => /binary record entry/.test(w ?? '')), JSON.stringify(aside));
  const [[{ tx, rx, paired }]] = (await pool.query(
    `SELECT SUM(dir = 'tx' AND attempt = 0) AS tx, SUM(dir = 'rx') AS rx,
       (SELECT COUNT(*) FROM packets a JOIN packets b ON a.flow_id = b.flow_id AND a.sample_seq = b.sample_seq AND a.dir = 'tx' AND a.attempt = 0 AND b.dir = 'rx') AS paired
     FROM packets`,
  )) as any;
  const share = Number(rx) / (records / 2);
  assert.ok(share > 0.07 && share < 0.13, `about a tenth of the samples kept raw (${share.toFixed(3)})`);
  assert.equal(Number(paired), Number(rx), 'each kept receiver record has its sender record');
  assert.equal(Number(tx), Number(rx));
  const [[{ all }]] = (await pool.query('SELECT COUNT(*) AS `all` FROM packets')) as any;
  assert.equal(stage.counters.rawRows, Number(all), 'every raw row counted');
  await stage.release();
});

test('sharded streams: both ends of a sample in one shard; a worker process killed mid-run, its shards move to the other, every record counted once', async () => {
  const SHARDS = 4;
  const ref = await analyzedByOne('st_shref');
  const { pool, stream, records } = await published('st_shards', SPEC, 500, SHARDS);
  const lens = await Promise.all(Array.from({ length: SHARDS }, (_, k) => redis.xlen(recordStream(k, SHARDS, stream))));
  assert.ok(lens.every((n) => n > 0), `every shard has entries: ${lens}`);
  const worker = spawn(process.execPath, [join(projectRoot, 'dist/test/helpers/stream-worker.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LATSCOPE_WORKER_ARGS: JSON.stringify({ redis: { host: redisInfo.host, port: redisInfo.port, password: redisInfo.password }, db: { ...db, database: 'latscope_test_st_shards' }, stream, shards: SHARDS, consumer: 'doomed', maxRecords: 1500, graceMs: 3_600_000 }) }, // not in argv: ps shows argv to every user
  });
  let out = '';
  worker.stdout!.on('data', (d) => (out += d));
  const committed = async () => Number(((await pool.query('SELECT COALESCE(SUM(records), 0) AS n FROM stream_checkpoints')) as any)[0][0].n);
  try {
    for (let i = 0; i < 600 && (await committed()) < 8000; i++) await new Promise((r) => setTimeout(r, 50));
    const survivors = Array.from({ length: SHARDS }, (_, k) => stageOf(pool, recordStream(k, SHARDS, stream), { consumer: 'survivor' }));
    for (const s of survivors) assert.equal(await s.acquire(0), false, 'each shard has one owner while the worker lives');
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    assert.match(out, new RegExp(`owns ${SHARDS}`), out);
    const before = await committed();
    assert.ok(before > 0 && before < records, `killed mid-run (${before} of ${records} committed)`);
    let n = 0;
    for (const s of survivors) {
      assert.ok(await s.acquire(10), 'the shard moves once its owner is gone');
      n += await s.finish();
    }
    assert.equal(before + n, records, 'every record counted once');
    for (let k = 0; k < SHARDS; k++) assert.equal(await redis.xlen(recordStream(k, SHARDS, stream)), 0);
    // each shard joined its own flows: the union is what one stream gives
    assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as one unsharded, uninterrupted run');
    assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
    for (const s of survivors) await s.release();
  } finally {
    worker.kill('SIGKILL');
  }
});

test('two workers at once, each owning half the shards, committing side by side: the statistics of one stream, nothing merged twice or lost', async () => {
  const SHARDS = 4;
  const ref = await analyzedByOne('st_parref');
  const { pool, stream, records } = await published('st_par', SPEC, 500, SHARDS);
  // a second pool is a second worker: steps of one pool run one after another, of two side by side
  const other = openPool({ ...db, database: 'latscope_test_st_par' });
  pools.push(other);
  const stages = Array.from({ length: SHARDS }, (_, k) => stageOf(k % 2 ? other : pool, recordStream(k, SHARDS, stream), { consumer: `w${k % 2}`, maxRecords: 1500 }));
  for (const s of stages) assert.ok(await s.acquire());
  const counts = await Promise.all([0, 1].map(async (w) => {
    let n = 0;
    for (const s of stages.filter((_, k) => k % 2 === w)) n += await s.finish();
    return n;
  }));
  assert.equal(counts[0]! + counts[1]!, records);
  assert.ok(counts[0]! > 0 && counts[1]! > 0, `both workers analyzed records: ${counts}`);
  assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the same statistics as one stream');
  assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
  assert.deepEqual(await rows(pool, 'SELECT * FROM flow_windows ORDER BY 1, 2'), await rows(ref.pool, 'SELECT * FROM flow_windows ORDER BY 1, 2'));
  for (const s of stages) await s.release();
});

test('the checkpoint keeps its waiting records in parts below max_allowed_packet, whole across saves; a checkpoint from before migration 12 moves to parts', async () => {
  const pool = await fresh('st_waiting');
  const stream = 'latscope:test:waiting';
  // 40k lines of 300 bytes: 12 MB, three parts, each one statement far below the server's packet limit
  const lines = Array.from({ length: 40_000 }, (_, i) => `${1 + (i % 3)}\t${1_700_000_000_000 + i}\t${String(i).padStart(8, '0')}${'x'.repeat(270)}\n`);
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await store.saveCheckpoint(conn, stream, '5-0', lines, 1234);
    await conn.commit();
  } finally {
    conn.release();
  }
  const parts = await rows(pool, `SELECT part, records, LENGTH(body) AS bytes FROM stream_waiting WHERE stream = '${stream}' ORDER BY part`);
  assert.equal(parts.length, 3, 'three parts');
  assert.ok(parts.every((p) => Number(p.bytes) <= store.WAITING_PART_BYTES), `every part within ${store.WAITING_PART_BYTES} bytes`);
  assert.equal(parts.reduce((s, p) => s + Number(p.records), 0), lines.length);
  assert.equal((await store.checkpointWaiting(pool, stream)).map((b) => b.toString('latin1')).join(''), lines.join(''), 'the lines come back whole, in order');
  // a worker that takes the stream over gets them back
  const stage = stageOf(pool, stream);
  assert.ok(await stage.acquire());
  assert.equal(stage.counters.waiting, lines.length);
  await stage.release();
  // fewer waiting: the parts left from before go
  await store.saveCheckpoint(pool, stream, '6-0', lines.slice(0, 10), 1);
  assert.deepEqual(await rows(pool, `SELECT part, records FROM stream_waiting WHERE stream = '${stream}'`), [{ part: 0, records: 10 }]);
  const [[cp]] = (await pool.query('SELECT last_id, waiting_records, records FROM stream_checkpoints WHERE stream = ?', [stream])) as any;
  assert.deepEqual({ ...cp, records: Number(cp.records) }, { last_id: '6-0', waiting_records: 10, records: 1235 });

  // migration 12 (run again, as after a crash before it was recorded) moves a one-value checkpoint to parts
  const old = 'latscope:test:waiting:old';
  await pool.query('INSERT INTO stream_checkpoints (stream, last_id, waiting, waiting_records, records) VALUES (?, ?, ?, ?, ?)', [old, '9-0', Buffer.from(lines.slice(0, 5).join(''), 'latin1'), 5, 5]);
  for (const sql of m012.up) await pool.query(sql);
  assert.equal((await store.checkpointWaiting(pool, old)).map((b) => b.toString('latin1')).join(''), lines.slice(0, 5).join(''));
  assert.deepEqual(await rows(pool, `SELECT stream FROM stream_checkpoints WHERE waiting IS NOT NULL`), [], 'the old values emptied');
  assert.equal((await store.checkpointWaiting(pool, stream)).length, 1, 'parts already there are left alone');
});
