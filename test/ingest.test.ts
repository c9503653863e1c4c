/**
 * The ingest against the project's Redis and MariaDB, with entries that do not decode: each is
 * acknowledged, counted and kept aside in the dead-letter stream, the good ones of the same read
 * land, nothing half-formed reaches MySQL. A record stream deleted under the running ingest (or a
 * Redis that lost its data) gets its consumer group back, counted, and ingest goes on. Crafted
 * host entries (issue 23: a time that is not a number, an oversized entry) cannot stop the lane.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, startMariaDb, type RedisInfo, type MariaDbInfo } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { Ingest } from '../ingest/ingest.js';
import { encodeRows, ROW_FORMAT, type PacketRecord } from '../protocol/records.js';
import { BAD_RECORD_STREAM, INGEST_GROUP, toFields } from '../protocol/redis.js';
import { HOST_FORMAT } from '../protocol/host.js';
import { HIST_FORMAT } from '../protocol/histograms.js';

const DB = 'latscope_test_ingest';
let redisInfo: RedisInfo, db: MariaDbInfo, pool: Pool, redis: Redis;
const stream = `latscope:test:ingest:${process.pid}`;
const histograms = `${stream}:h`;

before(async () => {
  redisInfo = await startRedis();
  db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  pool = openPool({ ...db, database: DB });
  await migrate(pool);
  redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
});
after(async () => {
  await redis?.del(stream, histograms);
  redis?.disconnect();
  await pool?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await pool?.end();
});

const record = (seq: number): PacketRecord => ({
  node: 'ing', observerSeq: seq, dir: 'rx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: seq,
  segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true,
  layers: { dev: { tsNs: 10n, cpu: 0, tid: 1 }, ip: { tsNs: 11n, cpu: 0, tid: 1 }, tcp: { tsNs: 12n, cpu: 0, tid: 1 }, sock: { tsNs: 13n, cpu: 1, tid: 7 } },
  devices: [{ ifindex: 2, netns: 4026531840, rx: true, tsNs: 10n }],
});
const batch = (node: string, seqs: number[], rows = encodeRows(seqs.map(record))) => toFields({ node, first: seqs[0]!, last: seqs.at(-1)!, n: seqs.length, format: ROW_FORMAT, rows });
const count = async (node: string) => Number(((await pool.query('SELECT COUNT(*) AS n FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name = ?', [node])) as any)[0][0].n);

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('entries that do not decode are acknowledged, counted and kept aside; the good ones land; a deleted stream gets its group back', async () => {
  await redis.del(stream, histograms, BAD_RECORD_STREAM);
  const ingest = new Ingest(redis, pool, { consumer: 'test', stream, histogramStream: histograms, entriesPerRead: 50, blockMs: 100, retryMs: 50 });
  await ingest.ensureGroup();
  const good = encodeRows([record(3)]);
  const bad = [
    toFields({ node: 'ing', first: 1, last: 1, n: 1, format: 'rows0', rows: good }), // an older format
    batch('ing', [4, 5], encodeRows([record(4)])), // says 2, holds 1
    batch('ing', [6], good.replace('\trx\t', '\t\\N\t')), // a NULL where the direction goes
    batch('ing', [7], good.replace(/\t[^\t]*\n/, '\n')), // a column short: LOAD DATA would have filled it in
    batch('ing\tx', [8]), // a node name with a tab
    ['node', 'ing'], // nothing else
  ];
  await redis.xadd(stream, '*', ...batch('ing', [1, 2]));
  for (const f of bad) await redis.xadd(stream, '*', ...f);
  await redis.xadd(stream, '*', ...batch('ing', [9, 10, 11]));
  ingest.start();
  try {
    await until('every entry handled', 20_000, async () => ingest.counters.entries >= 2 + bad.length);
    assert.equal(ingest.counters.badEntries, bad.length);
    assert.equal(ingest.counters.rows, 5);
    assert.equal(await count('ing'), 5, 'the good rows, and only they');
    assert.equal(await redis.xlen(stream), 0, 'every entry acknowledged and deleted');
    assert.equal(await redis.xlen(BAD_RECORD_STREAM), bad.length, 'each bad entry kept aside');

    // the stream vanishes under the running ingest (FLUSHALL, a Redis without persistence)
    await redis.del(stream);
    await new Promise((r) => setTimeout(r, 300));
    await redis.xadd(stream, '*', ...batch('ing', [12, 13]));
    await until('rows after the stream came back', 20_000, async () => (await count('ing')) === 7);
    assert.ok(ingest.counters.groupsRecreated >= 1, `groups recreated: ${ingest.counters.groupsRecreated}`);
  } finally {
    await ingest.stop();
    await redis.del(BAD_RECORD_STREAM);
  }
});

test('crafted host entries cannot stop the host lane: each is refused, counted and kept aside; the good ones before and after land', async () => {
  const host = `${stream}:host`;
  await redis.del(host, BAD_RECORD_STREAM);
  const ingest = new Ingest(redis, pool, { consumer: 'test-host', stream, histogramStream: histograms, hostStream: host, entriesPerRead: 10, blockMs: 100, retryMs: 50 });
  await ingest.ensureGroup();
  const stat = { module: 'sched', metric: 'runq', key: '0', count: 3, sumNs: 300, maxNs: 200, p50Ns: 50, p99Ns: 190, p99999Ns: 200, errors: null };
  const event = { tsNs: '5000000000', kind: 'runq', cpu: 1, pid: 10, tgid: 10, comm: 'app', delayNs: 1000, otherPid: null, otherComm: null, detail: null };
  const entry = (node: string, stats: unknown, events: unknown) =>
    toFields({ node, at: Date.now(), monoNs: '6000000000', since: Date.now() - 1000, format: HOST_FORMAT, stats: typeof stats === 'string' ? stats : JSON.stringify(stats), events: typeof events === 'string' ? events : JSON.stringify(events) });
  const crafted = [
    entry('hostlane', [stat], [{ ...event, tsNs: 'x' }]), // used to throw in BigInt after the checks: the lane re-read it forever
    entry('hostlane', [stat], [{ ...event, tsNs: 'y' }]), // a second one: both lanes would have been stuck
    entry('hostlane', [{ ...stat, count: '3' }], []), // a count as text
    entry('hostlane', [{ ...stat, module: 'nosuch' }], []),
    entry('hostlane', '[' + '1,'.repeat(800_000) + '1]', '[]'), // 1.6 MB of two-byte items: over the size cap, never parsed
    entry('hostlane', '{', '[]'), // not JSON
    entry('hostlane', [stat], [{ ...event, cpu: -1 }]),
  ];
  await redis.xadd(host, '*', ...(entry('hostlane', [stat], [event])));
  for (const f of crafted) await redis.xadd(host, '*', ...f);
  await redis.xadd(host, '*', ...(entry('hostlane', [{ ...stat, key: '1' }], [{ ...event, tsNs: '5000000001' }])));
  ingest.start();
  try {
    await until('every host entry handled', 20_000, async () => ingest.counters.entries >= crafted.length + 2);
    assert.equal(ingest.counters.badEntries, crafted.length);
    const [[{ s }]] = (await pool.query("SELECT COUNT(*) AS s FROM host_stats hs JOIN servers v ON v.id = hs.server_id WHERE v.name = 'hostlane'")) as any;
    const [[{ e }]] = (await pool.query("SELECT COUNT(*) AS e FROM host_events he JOIN servers v ON v.id = he.server_id WHERE v.name = 'hostlane'")) as any;
    assert.deepEqual([Number(s), Number(e)], [2, 2], 'the good entries before and after the crafted ones landed');
    assert.equal(await redis.xlen(host), 0, 'every entry acknowledged and deleted');
    const pending = (await redis.xpending(host, INGEST_GROUP)) as [number, ...unknown[]];
    assert.equal(pending[0], 0, 'nothing left pending to be re-read');
    const aside = (await redis.xrange(BAD_RECORD_STREAM, '-', '+')) as [string, string[]][];
    assert.equal(aside.length, crafted.length);
    assert.ok(aside.some(([, f]) => f.includes('refused') && f.some((v) => /larger than/.test(v)) && !f.includes('stats')), 'the oversized one is noted, not copied');
  } finally {
    await ingest.stop();
    await redis.del(host, BAD_RECORD_STREAM);
  }
});

test('crafted histogram entries are refused whole: a U+010A that latin1 would make a line break (a row under a server the writer chose), extra columns, no newline', async () => {
  const hist = `${stream}:hcraft`;
  await redis.del(hist, BAD_RECORD_STREAM);
  const ingest = new Ingest(redis, pool, { consumer: 'test-hist', stream, histogramStream: hist, hostStream: `${stream}:hcraft-host`, entriesPerRead: 10, blockMs: 100, retryMs: 50 });
  await ingest.ensureGroup();
  const [[victim]] = (await pool.query("INSERT INTO servers (name) VALUES ('hist-victim') ON DUPLICATE KEY UPDATE name = name RETURNING id")) as any;
  const snap = (node: string, rows: string) => toFields({ node, at: Date.now(), format: HIST_FORMAT, rows });
  const crafted = [
    // the row after U+010A would be loaded as the victim's, with a count the writer chose
    snap('hist-writer', `5000\ttx\tsock\ttcp\t3\t10\u010a${victim.id}\t${Date.now()}\t5000\ttx\tsock\ttcp\t4\t999999\n`),
    snap('hist-writer', '5000\ttx\tsock\ttcp\t3\t10\t7\n'), // an extra column
    snap('hist-writer', '5000\ttx\tsock\ttcp\t3\t10'), // no newline
    snap('hist-writer', '5000\ttx\tsock\tnet\t3\t10\n'), // not a layer
    snap('bad node!', '5000\ttx\tsock\ttcp\t3\t10\n'),
  ];
  await redis.xadd(hist, '*', ...snap('hist-writer', '5000\ttx\tsock\ttcp\t3\t10\n'));
  for (const f of crafted) await redis.xadd(hist, '*', ...f);
  ingest.start();
  try {
    await until('every histogram entry handled', 20_000, async () => ingest.counters.entries >= crafted.length + 1);
    assert.equal(ingest.counters.badEntries, crafted.length);
    const [[{ v }]] = (await pool.query('SELECT COUNT(*) AS v FROM layer_histograms WHERE server_id = ?', [victim.id])) as any;
    assert.equal(Number(v), 0, 'no row under the victim');
    const [[{ w }]] = (await pool.query("SELECT COUNT(*) AS w FROM layer_histograms h JOIN servers s ON s.id = h.server_id WHERE s.name = 'hist-writer'")) as any;
    assert.equal(Number(w), 1, 'the good snapshot landed');
    assert.equal((await redis.xrange(BAD_RECORD_STREAM, '-', '+')).length, crafted.length, 'each kept aside');
    assert.equal(await redis.xlen(hist), 0);
  } finally {
    await ingest.stop();
    await redis.del(hist, `${stream}:hcraft-host`, BAD_RECORD_STREAM);
  }
});
