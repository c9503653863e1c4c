/**
 * A stream-stage worker in a process of its own, for the tests that kill one mid-run:
 * LATSCOPE_WORKER_ARGS='{"redis":{...} or {"cluster":[...],"password":...},"db":{...},"stream":"...","shards":N,"consumer":"...","maxRecords":N,"graceMs":N}' node stream-worker.js
 * (in the environment, not argv: the passwords in it would show in ps to every user)
 * It runs a stage per shard until killed, printing "owns K" whenever the number of shards it holds changes.
 */
import { Cluster, Redis } from 'ioredis';
import { openPool } from '../../db/pool.js';
import { StreamStage } from '../../analyzer/stream/stage.js';
import { recordStream } from '../../protocol/redis.js';

const a = JSON.parse(process.env.LATSCOPE_WORKER_ARGS!);
const shards: number = a.shards ?? 1;
// one Redis ({host, port, password}), or a Cluster ({cluster: [nodes], password})
const redis = a.redis.cluster ? new Cluster(a.redis.cluster, { redisOptions: { password: a.redis.password } }) : new Redis(a.redis);
const pool = openPool(a.db);
const stages = Array.from({ length: shards }, (_, k) =>
  new StreamStage(redis, pool, {
    stream: recordStream(k, shards, a.stream), consumer: a.consumer, maxRecords: a.maxRecords, entriesPerRead: 4, blockMs: 200,
    windowNs: 10e9, graceMs: a.graceMs, spikeFactor: 10, filterRetrans: true, sampleSize: 65536, log: (l) => process.stderr.write(`${l}\n`),
  }),
);
for (const s of stages) s.start();
let owned = -1;
setInterval(() => {
  const n = stages.filter((s) => s.owns).length;
  if (n !== owned) process.stdout.write(`owns ${(owned = n)}\n`);
}, 20);
