/**
 * A Redis user per observer (issue 23), against the project's Redis and MariaDB: what an
 * observer's user may do (add to latscope's streams, read their length) and everything it may
 * not (flush, reconfigure, read entries, publish on the manager's control channel, write other
 * keys); entries and heartbeats written as another server, unsigned or changed after signing
 * are set aside and counted, and only what each node signed itself lands or counts as alive.
 * The observer side is the observer's own publisher, connecting as its own user.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, startMariaDb, type RedisInfo, type MariaDbInfo } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { Ingest } from '../ingest/ingest.js';
import { RecordPublisher } from '../observer/publisher.js';
import { encodeRows, ROW_FORMAT, type PacketRecord } from '../protocol/records.js';
import { BAD_RECORD_STREAM, CONTROL_CHANNEL, HEARTBEAT_STREAM, entryFields, toFields } from '../protocol/redis.js';
import { EntryVerifier, entryKey, observerPassword, observerUser, signFields } from '../protocol/entry-mac.js';
import { ensureObserverUsers, removeObserverUsers } from '../manager/observer-users.js';
import { latestHeartbeats } from '../manager/state.js';
import type { Deployment } from '../conf/deployment.js';
import { waitFor } from '../local/exec.js';

const DB = 'latscope_test_observer_users';
const A = `oa${process.pid}`, B = `ob${process.pid}`;
// a shard name of its own: observer users may write latscope:records:{*}, and other tests use the rest
const STREAM = `latscope:records:{test${process.pid}}`;
let redisInfo: RedisInfo, db: MariaDbInfo, pool: Pool, admin: Redis;
let d: Deployment;
const spool = mkdtempSync(join(tmpdir(), 'latscope-users-'));

before(async () => {
  redisInfo = await startRedis();
  db = await startMariaDb();
  const root = openPool({ ...db, database: 'latscope' });
  await root.query(`DROP DATABASE IF EXISTS ${DB}`);
  await root.query(`CREATE DATABASE ${DB}`);
  await root.end();
  pool = openPool({ ...db, database: DB });
  await migrate(pool);
  admin = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  // what the manager needs of a deployment here: its Redis and its servers
  d = { redis: { address: redisInfo.host, port: redisInfo.port, secret: redisInfo.password, observer_users: true }, servers: [{ hostname: A }, { hostname: B }] } as unknown as Deployment;
  await ensureObserverUsers(admin, d);
});
after(async () => {
  await admin?.del(STREAM, BAD_RECORD_STREAM);
  if (d) assert.equal(await removeObserverUsers(admin, d), 2, 'both users removed');
  admin?.disconnect();
  await pool?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await pool?.end();
  rmSync(spool, { recursive: true, force: true });
});

const as = (node: string) =>
  new Redis({ host: redisInfo.host, port: redisInfo.port, username: observerUser(node), password: observerPassword(redisInfo.password!, node), enableReadyCheck: false, disableClientInfo: true, maxRetriesPerRequest: 0 });

const record = (node: string, seq: number): PacketRecord => ({
  node, observerSeq: seq, dir: 'rx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: seq,
  segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true,
  layers: { dev: { tsNs: 10n, cpu: 0, tid: 1 }, sock: { tsNs: 13n, cpu: 1, tid: 7 } },
  devices: [{ ifindex: 2, netns: 4026531840, rx: true, tsNs: 10n }],
});
const batch = (node: string, seqs: number[]) => toFields({ node, first: seqs[0]!, last: seqs.at(-1)!, n: seqs.length, format: ROW_FORMAT, rows: encodeRows(seqs.map((s) => record(node, s))) });
const rowsOf = async (node: string) => Number(((await pool.query('SELECT COUNT(*) AS n FROM packets p JOIN servers s ON s.id = p.server_id WHERE s.name = ?', [node])) as any)[0][0].n);

test("an observer's own Redis user may add to latscope's streams and nothing else: no admin command, no reading, no other key, no control channel", async () => {
  const a = as(A);
  try {
    assert.match(String(await a.xadd(STREAM, '*', ...signFields(entryKey(observerPassword(redisInfo.password!, A)), batch(A, [1])))), /^\d+-\d+$/);
    assert.equal(await a.xlen(STREAM), 1, 'the stream length, for backpressure');
    assert.equal(await a.ping(), 'PONG');
    const denied: [string, () => Promise<unknown>][] = [
      ['FLUSHALL', () => a.flushall()],
      ['CONFIG SET', () => a.config('SET', 'maxmemory', '1')],
      ['CONFIG GET', () => a.config('GET', 'requirepass')],
      ['PUBLISH on the control channel', () => a.publish(CONTROL_CHANNEL, 'stop')],
      ['XRANGE (reading entries)', () => a.xrange(STREAM, '-', '+')],
      ['XREADGROUP', () => a.xreadgroup('GROUP', 'g', 'c', 'STREAMS', STREAM, '>')],
      ['XDEL', () => a.xdel(STREAM, '0-1')],
      ['DEL', () => a.del(STREAM)],
      ['XADD to the dead-letter stream', () => a.xadd(BAD_RECORD_STREAM, '*', 'x', '1')],
      ['SET on the configuration key', () => a.set('latscope:conf', '{}')],
      ['KEYS', () => a.keys('*')],
      ['ACL SETUSER', () => a.call('ACL', 'SETUSER', observerUser(B), 'on', 'nopass', '+@all', '~*')],
      ['INFO', () => a.info()],
    ];
    for (const [what, run] of denied) await assert.rejects(run(), /NOPERM/, `${what} must be refused`);
    // the password is stored hashed, and the rules are exactly ours after a second run
    await ensureObserverUsers(admin, d);
    const info = (await admin.call('ACL', 'GETUSER', observerUser(A))) as unknown[];
    const passwords = String(info[info.indexOf('passwords') + 1]);
    assert.ok(!passwords.includes(observerPassword(redisInfo.password!, A)), 'only the hash is stored');
    const anon = new Redis({ host: redisInfo.host, port: redisInfo.port, enableReadyCheck: false, disableClientInfo: true });
    try {
      await assert.rejects(anon.call('AUTH', observerUser(A), observerPassword(redisInfo.password!, B)), /WRONGPASS/, "another observer's password does not open this user");
      assert.equal(await anon.call('AUTH', observerUser(A), observerPassword(redisInfo.password!, A)), 'OK');
    } finally {
      anon.disconnect();
    }
    // a manager user without ACL rights is told what to do
    await admin.call('ACL', 'SETUSER', `noacl${process.pid}`, 'reset', 'on', `>pw${process.pid}`, '~*', '+@all', '-@admin', '-@dangerous');
    const weak = new Redis({ host: redisInfo.host, port: redisInfo.port, username: `noacl${process.pid}`, password: `pw${process.pid}` });
    try {
      await assert.rejects(ensureObserverUsers(weak, d), /may not create ACL users .*NOPERM.*observer_users: 1 in redis_info\.yaml needs a manager user with ACL rights .* or set observer_users: 0/);
    } finally {
      weak.disconnect();
      await admin.call('ACL', 'DELUSER', `noacl${process.pid}`);
    }
  } finally {
    a.disconnect();
    await admin.del(STREAM);
  }
});

test('entries written as another server, unsigned or changed after signing are set aside and counted; only what each node signed lands; forged heartbeats are no sign of life', async () => {
  await admin.del(STREAM, BAD_RECORD_STREAM);
  const publisher = (node: string) =>
    new RecordPublisher({
      node, redis: { host: redisInfo.host, port: redisInfo.port, username: observerUser(node), password: observerPassword(redisInfo.password!, node), signEntries: true },
      stream: STREAM, batchRecords: 50, pipelineEntries: 8, maxMemoryBytes: 1 << 20, spoolDir: join(spool, node), maxSpoolBytes: 1 << 20, flushMs: 5,
    });
  const [pa, pb] = [publisher(A), publisher(B)];
  const a = as(A);
  const ingest = new Ingest(admin, pool, { consumer: 'test-users', stream: STREAM, histogramStream: `${STREAM}:h`, hostStream: `${STREAM}:host`, entriesPerRead: 16, blockMs: 100, retryMs: 50, verify: new EntryVerifier(redisInfo.password!) });
  await ingest.ensureGroup();
  try {
    await pa.connect();
    await pb.connect();
    for (let i = 1; i <= 100; i++) pa.push(record(A, i));
    for (let i = 1; i <= 100; i++) pb.push(record(B, i));
    assert.equal(await pa.close(), 0, 'nothing left spooled');
    assert.equal(await pb.close(), 0);
    const keyA = entryKey(observerPassword(redisInfo.password!, A));
    const keyB = entryKey(observerPassword(redisInfo.password!, B));
    // observer A writes rows as B, signed with its own key
    await a.xadd(STREAM, '*', ...signFields(keyA, batch(B, [1001, 1002])));
    // an entry with no signature, as a holder of the shared password would add it
    await admin.xadd(STREAM, '*', ...batch(B, [1003]));
    // B's true entry with a row changed after signing
    const changed = signFields(keyB, batch(B, [1004]));
    changed[changed.indexOf('rows') + 1] = changed[changed.indexOf('rows') + 1]!.replace('1004', '1005');
    await admin.xadd(STREAM, '*', ...changed);
    ingest.start();
    await waitFor('every entry handled', 20_000, async () => (ingest.counters.entries >= 7 ? true : undefined));
    assert.equal(ingest.counters.forgedEntries, 3);
    assert.equal(ingest.counters.badEntries, 0);
    assert.deepEqual([await rowsOf(A), await rowsOf(B)], [100, 100], 'only what each observer signed itself');
    const aside = (await admin.xrange(BAD_RECORD_STREAM, '-', '+')).map(([, f]) => entryFields(f).get('refused'));
    assert.deepEqual(aside.sort(), ['not signed by its node: bad mac', 'not signed by its node: bad mac', 'not signed by its node: unsigned']);
    assert.equal(await admin.xlen(STREAM), 0, 'every entry acknowledged and deleted');

    // heartbeats: B is silent, A forges one for it
    const since = Date.now();
    await a.xadd(HEARTBEAT_STREAM, '*', ...signFields(keyA, toFields({ node: A, pid: 1, records: 0 })));
    await a.xadd(HEARTBEAT_STREAM, '*', ...signFields(keyA, toFields({ node: B, pid: 1, records: 0 })));
    const unchecked = await latestHeartbeats(admin, since);
    assert.ok(unchecked.has(B), 'without the check, the forged heartbeat would keep B alive');
    const checked = await latestHeartbeats(admin, since, new EntryVerifier(redisInfo.password!));
    assert.ok(checked.has(A) && !checked.has(B), 'with it, only the heartbeat A signed as itself counts');
  } finally {
    await ingest.stop();
    a.disconnect();
  }
});
