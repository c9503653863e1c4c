/**
 * A stream-stage worker in a process of its own, for the test that kills one mid-run:
 * node stream-worker.js '{"redis":{...},"db":{...},"stream":"...","consumer":"...","maxRecords":N,"graceMs":N}'
 * It runs until killed, saying "owns" once it holds the stream's lease.
 */
import { Redis } from 'ioredis';
import { openPool } from '../../db/pool.js';
import { StreamStage } from '../../analyzer/stream/stage.js';

const a = JSON.parse(process.argv[2]!);
const redis = new Redis(a.redis);
const pool = openPool(a.db);
const stage = new StreamStage(redis, pool, {
  stream: a.stream, consumer: a.consumer, maxRecords: a.maxRecords, entriesPerRead: 4, blockMs: 200,
  windowNs: 10e9, graceMs: a.graceMs, spikeFactor: 10, filterRetrans: true, sampleSize: 65536,
  log: (l) => process.stdout.write(`${l}\n`),
});
while (!(await stage.acquire(1)));
process.stdout.write('owns\n');
stage.start();
