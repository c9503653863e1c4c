/**
 * Benchmarks do not rot: bench/ingest, bench/provision, bench/records-format, bench/analyze and
 * bench/scrape run in their smallest form (a few thousand rows, two hosts) and print their JSON
 * with the documented keys; the kernel-side ones have their own files (bench-smoke-*.test.ts).
 * Speed is not judged here; that is what the benchmarks themselves are for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { bench, stopBench } from './helpers/bench.js';
import { startMariaDb, startRedis } from '../local/servers.js';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';


test('bench/ingest in smoke size: ours, ours over TLS, ours signed and checked, and the reference each ingest every row and report rows per second', async () => {
  const j = await bench('ingest', ['--rows', '4000', '--rounds', '1']);
  assert.equal(j.rows, 4000);
  assert.ok(Number(j.oursRowsPerS) > 0 && Number(j.referenceRowsPerS) > 0 && Number(j.oursTlsRowsPerS) > 0 && Number(j.oursSignedRowsPerS) > 0, JSON.stringify(j));
});

test('bench/ingest stopped by SIGTERM mid-run: it says so, exits 1, and leaves neither its streams nor its database behind', async () => {
  const r = await startRedis();
  const m = await startMariaDb();
  const { code, err } = await stopBench('ingest', ['--rows', '100000', '--rounds', '3'], /round 1 ours:/);
  assert.equal(code, 1, err);
  assert.match(err, /stopped \(SIGTERM/);
  const redis = new Redis({ host: r.host, port: r.port, password: r.password });
  const admin = await mysql.createConnection({ host: m.host, port: m.port, user: m.user, password: m.password });
  try {
    assert.deepEqual(await redis.keys('latscope:bench:*'), [], 'no stream left');
    const [dbs] = (await admin.query(`SHOW DATABASES LIKE 'latscope_bench'`)) as [unknown[], unknown];
    assert.equal(dbs.length, 0, 'its database dropped');
  } finally {
    redis.disconnect();
    await admin.end();
  }
});

test('bench/provision in smoke size: two fresh hosts and two warm ones provisioned, keys hosts, freshS, warmS', async () => {
  const j = await bench('provision', ['--hosts', '2', '--rounds', '1']);
  assert.equal(j.hosts, 2);
  assert.ok(Number(j.freshS) > 0 && Number(j.warmS) > 0, JSON.stringify(j));
});

test('bench/records-format in smoke size: text, binary and the binary scan each decode every record', async () => {
  const j = await bench('records-format', ['--records', '2000', '--rounds', '1']) as { nsPerRecord: Record<string, number>; bytesPerRecord: Record<string, number> };
  for (const side of ['text', 'binary', 'binaryScan']) assert.ok(j.nsPerRecord[side]! > 0, side);
  assert.ok(j.bytesPerRecord.binary! < j.bytesPerRecord.text!, 'the binary format is smaller');
});

test('bench/analyze in smoke size: the stream stage, the batch analyzer and the SQL JOIN each analyze the records; keys of issue 22', async () => {
  const j = await bench('analyze', ['--records', '30000', '--reference-records', '10000', '--rounds', '1']) as Record<string, any>;
  assert.equal(j.records, 30000);
  assert.ok(j.workers >= 1, `stream workers: ${j.workers}`);
  for (const k of ['recordsPerSec', 'referenceRecordsPerSec', 'batchRecordsPerSec', 'perRecordCostRatio', 'peakRssMb']) assert.ok(Number(j[k]) > 0, `${k}: ${JSON.stringify(j)}`);
  assert.ok(j.ours.paths > 14_000, `paths joined: ${j.ours.paths}`);
  // the warm-up (a fifth of the records, analyzed apart before the clock starts) ran through the workers
  assert.equal(j.warmup.records, 6000, `warm-up: ${JSON.stringify(j.warmup)}`);
  assert.ok(j.warmup.recordsPerSec > 0 && j.warmup.workerCpuUsPerRecord > 0, `warm-up: ${JSON.stringify(j.warmup)}`);
  assert.ok(j.ours.workerCpuUsPerRecord > 0, `worker CPU: ${JSON.stringify(j.ours)}`);
  // the servers' CPU is read from /proc in ticks of 10 ms: a smoke run may take less than one, never NaN (a server not found)
  for (const k of ['redisCpuUsPerRecord', 'mariadbCpuUsPerRecord']) assert.ok(Number.isFinite(j.ours[k]) && j.ours[k] >= 0, `${k}: ${JSON.stringify(j.ours)}`);
  assert.equal(j.batch.paths, j.reference.paths, 'the batch analyzer and the SQL JOIN join the same paths');
});

test('bench/scrape in smoke size: both reads of the histograms and counters are timed', async () => {
  const j = await bench('scrape', ['--ports', '2', '--rounds', '3']);
  assert.equal(j.ports, 2);
  for (const k of ['perBucketMs', 'perBucketHoldMs', 'batchMs', 'batchHoldMs', 'ratio', 'holdRatio']) assert.ok(Number(j[k]) > 0, `${k}: ${JSON.stringify(j)}`);
});




test('bench/provision refuses more hosts than one kernel can run observers for, saying why', async () => {
  const r = spawnSync(process.execPath, [join(projectRoot, 'dist', 'bench', 'provision.js'), '--hosts', '100'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--hosts 100: at most 64 observers can run on one kernel/);
});
