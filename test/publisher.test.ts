/**
 * The publisher's spool under load, against the project's Redis: records pushed while a send is
 * in flight and the memory spool spills to disk reach the stream exactly once, and the counters
 * say so (a regression: the spill used to take batches that were being sent, which then went
 * out twice while others were dropped from memory unsent).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, stopRedis, redisRunning, type RedisInfo } from '../local/servers.js';
import { RecordPublisher } from '../observer/publisher.js';
import { flowId, type PacketRecord } from '../protocol/records.js';
import { entryRecords } from '../protocol/records-binary.js';
import { recordStream, shardOf } from '../protocol/redis.js';

let info: RedisInfo;
let started = false;
before(async () => {
  started = !redisRunning();
  info = await startRedis();
});
after(async () => {
  if (started) await stopRedis();
});

const record = (seq: number): PacketRecord => ({
  node: 'pub', observerSeq: seq, dir: 'tx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: seq,
  segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true, layers: { sock: { tsNs: 1n, cpu: 0, tid: 1 } }, devices: [],
});

test('records pushed during a stalled send, spilling to disk, reach the stream exactly once', async () => {
  const stream = `latscope:test:pub:${process.pid}`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-spool-'));
  const admin = new Redis({ host: info.host, port: info.port, password: info.password });
  const pub = new RecordPublisher({ node: 'pub', redis: info, stream, batchRecords: 100, pipelineEntries: 8, maxMemoryBytes: 150_000, spoolDir: spool, maxSpoolBytes: 64 << 20, flushMs: 5 });
  try {
    await pub.connect();
    let seq = 0;
    for (let round = 0; round < 5; round++) {
      await admin.call('CLIENT', 'PAUSE', '300', 'WRITE'); // the next send hangs in flight
      for (let i = 0; i < 800; i++) pub.push(record(++seq));
      await new Promise((r) => setTimeout(r, 50)); // it started: these batches are in flight
      for (let i = 0; i < 3000; i++) pub.push(record(++seq)); // the memory spool spills meanwhile
      await new Promise((r) => setTimeout(r, 400));
    }
    await pub.close(10_000);
    const seen = new Map<number, number>();
    for (const [, f] of await admin.xrangeBuffer(stream, '-', '+'))
      for (const r of entryRecords(f)) seen.set(r.observerSeq, (seen.get(r.observerSeq) ?? 0) + 1);
    assert.ok(pub.counters.spooledToDisk > 0, 'the memory spool spilled to disk');
    assert.equal(seen.size, seq, `every record in the stream (${seen.size} of ${seq})`);
    assert.deepEqual([...seen.values()].filter((n) => n > 1), [], 'none twice');
    assert.equal(pub.counters.published, seq);
    assert.equal(pub.counters.overflow, 0);
  } finally {
    await admin.del(stream);
    admin.disconnect();
    rmSync(spool, { recursive: true, force: true });
  }
});

test('with record shards, each record goes to the stream of its flow\'s shard, and nowhere else', async () => {
  const SHARDS = 3;
  const base = `latscope:test:pubshard:${process.pid}`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-spool-'));
  const admin = new Redis({ host: info.host, port: info.port, password: info.password });
  const pub = new RecordPublisher({ node: 'pub', redis: info, stream: base, shards: SHARDS, batchRecords: 50, pipelineEntries: 8, maxMemoryBytes: 1 << 20, spoolDir: spool, maxSpoolBytes: 64 << 20, flushMs: 5 });
  try {
    await pub.connect();
    const n = 3000;
    for (let i = 0; i < n; i++) pub.push({ ...record(i + 1), flow: { family: 4, src: '10.0.0.1', sport: 1000 + (i % 40), dst: '10.0.0.2', dport: 2 } });
    await pub.close(10_000);
    let total = 0;
    const used = new Set<number>();
    for (let k = 0; k < SHARDS; k++)
      for (const [, f] of await admin.xrangeBuffer(recordStream(k, SHARDS, base), '-', '+'))
        for (const r of entryRecords(f)) {
          assert.equal(shardOf(flowId(r.flow), SHARDS), k, 'in its flow\'s shard');
          used.add(k);
          total++;
        }
    assert.equal(total, n);
    assert.equal(used.size, SHARDS, 'forty flows spread over every shard');
    assert.equal(await admin.exists(base), 0, 'nothing in the unsharded stream');
  } finally {
    for (let k = 0; k < SHARDS; k++) await admin.del(recordStream(k, SHARDS, base));
    admin.disconnect();
    rmSync(spool, { recursive: true, force: true });
  }
});
