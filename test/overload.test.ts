/**
 * Overload, against the project's Redis and the kernel: the publisher holds back while the
 * record stream is at its bound and while Redis refuses writes for memory, counts both, and
 * loses nothing; a stop against a Redis that does not answer ends on time and spools the rest,
 * which the next start sends; an observer recording a bulk transfer stops within its stop time
 * with every hook detached. (bench/overload runs the 60-second version with the numbers.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisInfo } from '../local/servers.js';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { RecordPublisher, type PublisherOptions } from '../observer/publisher.js';
import { Observer } from '../observer/observer.js';
import { type PacketRecord } from '../protocol/records.js';
import { entryRecords } from '../protocol/records-binary.js';
import { projectRoot } from '../lib/paths.js';
import { progExists, until } from './helpers/fixtures.js';

let info: RedisInfo;
let admin: Redis;
before(async () => {
  info = await startRedis();
  admin = new Redis({ host: info.host, port: info.port, password: info.password });
});
after(() => admin?.disconnect());

const record = (seq: number): PacketRecord => ({
  node: 'ovl', observerSeq: seq, dir: 'tx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: seq,
  segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true, layers: { sock: { tsNs: 1n, cpu: 0, tid: 1 } }, devices: [],
});

function publisher(stream: string, spoolDir: string, o: Partial<PublisherOptions> = {}): RecordPublisher {
  return new RecordPublisher({ node: 'ovl', redis: info, stream, batchRecords: 10, pipelineEntries: 4, maxMemoryBytes: 1 << 20, spoolDir, maxSpoolBytes: 64 << 20, flushMs: 10, ...o });
}

/** Takes every entry out of the stream (as the ingest does) and returns the observer_seq of each record. */
async function consume(stream: string): Promise<number[]> {
  const seqs: number[] = [];
  for (const [id, f] of await admin.xrangeBuffer(stream, '-', '+')) {
    for (const r of entryRecords(f)) seqs.push(r.observerSeq);
    await admin.xdel(stream, id);
  }
  return seqs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the record stream at max_stream_entries: the publisher holds back (counted) and sends on once the ingest took entries; nothing lost or twice', async () => {
  const stream = `latscope:test:ovl:${process.pid}:a`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-ovl-'));
  const pub = publisher(stream, spool, { maxStreamEntries: 5 });
  try {
    await pub.connect();
    for (let s = 1; s <= 300; s++) pub.push(record(s));
    await sleep(500);
    assert.ok((await admin.xlen(stream)) <= 5 + 4, `the stream holds ${await admin.xlen(stream)} entries`);
    assert.ok(pub.counters.heldBack > 0 && pub.backlog.heldBack, 'held back, and it says so');
    const seen: number[] = [];
    for (let i = 0; i < 200 && seen.length < 300; i++) {
      seen.push(...(await consume(stream)));
      await sleep(20);
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1));
    assert.equal(pub.counters.published, 300);
    assert.equal(pub.counters.overflow, 0);
  } finally {
    await pub.close(100);
    await admin.del(stream);
    rmSync(spool, { recursive: true });
  }
});

test('Redis refusing writes for memory (maxmemory, noeviction): sends are counted as refused, records wait, and all arrive once there is room', async () => {
  const stream = `latscope:test:ovl:${process.pid}:b`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-ovl-'));
  const pub = publisher(stream, spool);
  const [, before] = (await admin.config('GET', 'maxmemory')) as string[];
  try {
    await pub.connect();
    await admin.config('SET', 'maxmemory', '1'); // below what Redis uses already: every write refused
    for (let s = 1; s <= 100; s++) pub.push(record(s));
    await sleep(300);
    assert.ok(pub.counters.redisFull > 0, `refusals counted: ${JSON.stringify(pub.counters)}`);
    assert.equal(pub.counters.published, 0);
    assert.equal(pub.backlog.memory, 100, 'the records wait');
    await admin.config('SET', 'maxmemory', before!);
    for (let i = 0; i < 100 && pub.counters.published < 100; i++) await sleep(20);
    assert.deepEqual((await consume(stream)).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
  } finally {
    await admin.config('SET', 'maxmemory', before!);
    await pub.close(100);
    await admin.del(stream);
    rmSync(spool, { recursive: true });
  }
});

test('a stop while Redis does not answer ends within its time and spools the rest; the next start sends it', async () => {
  const stream = `latscope:test:ovl:${process.pid}:c`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-ovl-'));
  const pub = publisher(stream, spool);
  try {
    await pub.connect();
    await admin.client('PAUSE', 3000, 'WRITE'); // Redis takes connections but answers no write
    for (let s = 1; s <= 50; s++) pub.push(record(s));
    await sleep(100);
    const t0 = Date.now();
    const spooled = await pub.close(500);
    const took = Date.now() - t0;
    assert.ok(took < 1500, `close took ${took} ms`);
    assert.equal(spooled, 50, 'every record went to the disk spool');
    assert.equal(pub.counters.spooledAtStop, 50);
    assert.ok(readdirSync(spool).length > 0);
  } finally {
    await admin.client('UNPAUSE');
  }
  const next = publisher(stream, spool);
  try {
    await next.connect();
    for (let i = 0; i < 100 && next.counters.published < 50; i++) await sleep(20);
    assert.equal(next.counters.published, 50, 'the spool went out at the next start');
    const seqs = await consume(stream);
    assert.deepEqual([...new Set(seqs)].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1), 'each record arrived');
    assert.equal(readdirSync(spool).length, 0);
  } finally {
    await next.close(100);
    await admin.del(stream);
    rmSync(spool, { recursive: true });
  }
});

test('a disk spool that fills during a spill keeps the batches that fit, counts the rest as lost, and the next start sends exactly those kept', async () => {
  const stream = `latscope:test:ovl:${process.pid}:e`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-ovl-'));
  // 10 records a batch, about 1.6 KB a spooled line: room for a few of the 20 batches only
  const pub = publisher(stream, spool, { maxSpoolBytes: 8000 });
  let kept = 0;
  try {
    await pub.connect();
    await admin.client('PAUSE', 3000, 'WRITE');
    for (let s = 1; s <= 200; s++) pub.push(record(s));
    await sleep(100);
    kept = await pub.close(300);
    assert.ok(kept > 0 && kept < 200 && kept % 10 === 0, `whole batches kept: ${kept}`);
    assert.equal(pub.counters.overflow, 200 - kept, 'what did not fit is counted as lost');
    assert.equal(pub.counters.spooledAtStop, kept);
    const lines = readdirSync(spool).map((f) => readFileSync(join(spool, f), 'utf8').trim().split('\n').length).reduce((a, b) => a + b, 0);
    assert.equal(lines, kept / 10, 'a line per kept batch');
  } finally {
    await admin.client('UNPAUSE');
  }
  const next = publisher(stream, spool);
  try {
    await next.connect();
    for (let i = 0; i < 100 && next.counters.published < kept; i++) await sleep(20);
    assert.equal(next.counters.published, kept, 'the kept records went out at the next start');
    assert.equal(new Set(await consume(stream)).size, kept);
  } finally {
    await next.close(100);
    await admin.del(stream);
    rmSync(spool, { recursive: true });
  }
});

test('an observer recording a bulk transfer at full load stops within its stop time, every hook detached, what it could not read counted', async () => {
  let tb: Testbed | undefined;
  const stream = `latscope:test:ovl:${process.pid}:d`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-ovl-'));
  try {
    tb = await testbedUp({ id: 'tovl', hosts: 2 });
    const redisInfo = await startRedis([tb.managerAddress]);
    const [h1, h2] = tb.hosts as [Testbed['hosts'][0], Testbed['hosts'][0]];
    const ob = new Observer({
      node: 'tovl-h1', redis: { host: redisInfo.host, port: redisInfo.port, password: redisInfo.password }, stream,
      sampling: { size: 1000, interval: 0, ports: [9200], filter_retrans: true, histograms: 'all', histogram_bytes: 4096, histogram_interval: 0 },
      interfaces: [h1.iface], ownNetnsOnly: true, netns: h1.netns, heartbeatMs: 1000, drainMs: 20, spoolDir: spool,
      limits: { stopMs: 1500 }, metrics: { host: '127.0.0.1', port: 0 }, bpfStats: false,
    });
    await ob.start();
    const traffic = join(projectRoot, 'dist', 'local', 'traffic.js');
    const sink = spawn('ip', ['netns', 'exec', h2.netns, process.execPath, traffic, 'tcp-sink', '9200', '1'], { stdio: 'ignore' });
    await sleep(300);
    const flood = spawn('ip', ['netns', 'exec', h1.netns, process.execPath, traffic, 'tcp-flood', h2.address, '9200', '6'], { stdio: 'ignore' });
    try {
      await sleep(3000);
      assert.ok(ob.counters.assembler.records > 1000, `recording: ${ob.counters.assembler.records} records`);
      const ids = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as { id: number; name?: string }[]).filter((p) => p.name?.startsWith('lt_')).map((p) => p.id);
      assert.ok(ids.length > 0);
      const stop = await ob.stop();
      assert.ok(stop.ms <= 1500, `stop took ${stop.ms} ms`);
      for (const id of ids) await until(`program ${id} unloaded`, 5000, () => !progExists(id));
      const c = ob.counters;
      assert.ok(c.drops.ring + c.drops.stop >= 0 && Number.isFinite(c.drops.stop));
      assert.equal(c.publisher.published + stop.spooled + c.drops.spool + c.backlog.memory, c.assembler.records, 'each record published, spooled or counted as dropped');
    } finally {
      flood.kill('SIGKILL');
      sink.kill('SIGKILL');
    }
  } finally {
    await admin.del(stream);
    rmSync(spool, { recursive: true, force: true });
    if (tb) await testbedDown(tb.id);
  }
});
