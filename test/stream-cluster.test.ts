/**
 * Sharded streams on a real Redis Cluster (three masters of Debian's redis-server, started by the
 * project's local/servers.ts): the shards spread over the masters, two worker processes share
 * them through their leases, one is killed mid-run, the other takes its shards over, and every
 * record is counted once: the statistics equal those of one unsharded, uninterrupted run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { startRedisCluster, stopRedisCluster, redisClusterRunning, startMariaDb, type RedisClusterInfo, type MariaDbInfo } from '../local/servers.js';
import type { Pool } from '../db/pool.js';
import { freshDatabase } from './helpers/database.js';
import { publishSynthetic, syntheticFleet, type SyntheticOptions } from '../local/synthetic.js';
import { StreamStage } from '../analyzer/stream/stage.js';
import { recordStream } from '../protocol/redis.js';
import { projectRoot } from '../lib/paths.js';
import { waitFor } from '../local/exec.js';

const SHARDS = 4;
const SPEC: SyntheticOptions = {
  servers: 4, flowsPerPair: 2, samples: 20_000, startNs: 7_000_000_000_000n, spanNs: 40e9, retransRate: 0.01, seed: 17,
  slowLink: { from: 2, to: 1, extraNs: 2_000_000, share: 0.03 },
};
const OPTS = { windowNs: 10e9, graceMs: 3_600_000, spikeFactor: 10, filterRetrans: true, sampleSize: 65536, maxRecords: 5000, entriesPerRead: 4 };
const STATS = 'SELECT window_ns, scope, src_server_id, dst_server_id, flow_id, segment, samples, p50_ns, p99_ns, max_ns FROM path_stats ORDER BY window_ns, scope, src_server_id, dst_server_id, flow_id, segment';

let info: RedisClusterInfo, db: MariaDbInfo, cluster: Cluster;
let startedCluster = false;
const pools: Pool[] = [];
const keys: string[] = [];

before(async () => {
  startedCluster = !redisClusterRunning();
  info = await startRedisCluster();
  db = await startMariaDb();
  cluster = new Cluster(info.nodes, { redisOptions: { password: info.password } });
});
after(async () => {
  for (const k of keys) await cluster?.del(k).catch(() => {});
  cluster?.disconnect();
  for (const p of pools) {
    const [[{ d }]] = (await p.query('SELECT DATABASE() AS d')) as any;
    await p.query(`DROP DATABASE IF EXISTS ${d}`).catch(() => {});
    await p.end().catch(() => {});
  }
  if (startedCluster) await stopRedisCluster();
});

async function fleetIn(name: string, shards: number): Promise<{ pool: Pool; stream: string; records: number }> {
  const pool = await freshDatabase(db, name);
  pools.push(pool);
  const stream = `latscope:test:cluster:${name}:${process.pid}`;
  for (let k = 0; k < shards; k++) keys.push(recordStream(k, shards, stream));
  const fleet = await syntheticFleet(pool, SPEC);
  const records = await publishSynthetic(cluster, stream, fleet.servers, fleet.records, Infinity, 500, shards);
  return { pool, stream, records };
}

const rows = async (p: Pool, sql: string) => ((await p.query(sql)) as any)[0] as any[];
const committed = async (p: Pool) => Number(((await p.query('SELECT COALESCE(SUM(records), 0) AS n FROM stream_checkpoints')) as any)[0][0].n);

function worker(name: string, dbName: string, stream: string): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [join(projectRoot, 'dist/test/helpers/stream-worker.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LATSCOPE_WORKER_ARGS: JSON.stringify({ redis: { cluster: info.nodes, password: info.password }, db: { ...db, database: dbName }, stream, shards: SHARDS, consumer: name, maxRecords: 1500, graceMs: OPTS.graceMs }) }, // not in argv: ps shows argv to every user
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return { child, out: () => out };
}

/** waitFor (local/exec.ts) of a yes/no check. */
const until = (what: string, ms: number, check: () => Promise<boolean> | boolean) => waitFor(what, ms, async () => ((await check()) ? true : undefined));

test('on a 3-master Redis Cluster: shards on several masters, two worker processes, one killed mid-run, its shards taken over, every record once', async () => {
  // the reference: the same records through one stream, one worker, uninterrupted
  const ref = await fleetIn('cl_ref', 1);
  const refStage = new StreamStage(cluster, ref.pool, { ...OPTS, stream: ref.stream, consumer: 'ref' });
  assert.ok(await refStage.acquire());
  await refStage.finish();
  await refStage.release();

  const { pool, stream, records } = await fleetIn('cl_shards', SHARDS);
  assert.equal(cluster.nodes('master').length, 3);
  // which master serves each shard: its key's slot, and the cluster's map of slots
  const holders = new Set<string>();
  for (let k = 0; k < SHARDS; k++) {
    const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', recordStream(k, SHARDS, stream)));
    holders.add(String(cluster.slots[slot]?.[0]));
  }
  assert.ok(holders.size >= 2, `the shards live on ${holders.size} masters: ${[...holders]}`);

  const a = worker('doomed', 'latscope_test_cl_shards', stream);
  let b: ReturnType<typeof worker> | undefined;
  try {
    await until('worker A owning every shard', 30_000, () => a.out().includes(`owns ${SHARDS}`));
    b = worker('survivor', 'latscope_test_cl_shards', stream);
    await until('worker B running', 30_000, () => b!.out().includes('owns 0'));
    await until('worker A committing', 60_000, async () => (await committed(pool)) >= 8000);
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('exit', r));
    const atKill = await committed(pool);
    assert.ok(atKill < records, `killed mid-run (${atKill} of ${records} committed)`);
    // A's leases ended with its connections: B takes every shard and reads on from A's checkpoints
    await until('worker B owning every shard', 30_000, () => b!.out().includes(`owns ${SHARDS}`));
    await until('every record analyzed', 120_000, async () => (await committed(pool)) >= records);
    assert.equal(await committed(pool), records, 'every record counted once');
    b.child.kill('SIGKILL');
    await new Promise((r) => b!.child.once('exit', r));
    // what still waits for its other end (a lost transmission waits out its grace): settled here
    for (let k = 0; k < SHARDS; k++) {
      const s = new StreamStage(cluster, pool, { ...OPTS, stream: recordStream(k, SHARDS, stream), consumer: 'settle' });
      assert.ok(await s.acquire(10));
      assert.equal(await s.finish(), 0, 'nothing left to read');
      await s.release();
      assert.equal(await cluster.xlen(recordStream(k, SHARDS, stream)), 0);
    }
    assert.deepEqual(await rows(pool, STATS), await rows(ref.pool, STATS), 'the statistics of one unsharded, uninterrupted run');
    assert.deepEqual(await rows(pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'), await rows(ref.pool, 'SELECT * FROM unmatched ORDER BY 1, 2, 3, 4'));
  } finally {
    a.child.kill('SIGKILL');
    b?.child.kill('SIGKILL');
  }
});
