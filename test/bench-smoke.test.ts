/**
 * Benchmarks do not rot: bench/ingest, bench/provision, bench/records-format, bench/analyze, bench/scrape, bench/observer-overhead, bench/ringbuf, bench/graph, bench/timesync and bench/host-overhead run in their smallest form (a few
 * thousand rows, two hosts) and print their JSON with the documented keys. Speed is not judged
 * here; that is what the benchmarks themselves are for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

function bench(name: string, args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [join(projectRoot, 'dist', 'bench', `${name}.js`), ...args], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `bench/${name} failed:\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `bench/${name} printed no JSON:\n${r.stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

test('bench/ingest in smoke size: ours, ours over TLS, ours signed and checked, and the reference each ingest every row and report rows per second', () => {
  const j = bench('ingest', ['--rows', '4000', '--rounds', '1']);
  assert.equal(j.rows, 4000);
  assert.ok(Number(j.oursRowsPerS) > 0 && Number(j.referenceRowsPerS) > 0 && Number(j.oursTlsRowsPerS) > 0 && Number(j.oursSignedRowsPerS) > 0, JSON.stringify(j));
});

test('bench/provision in smoke size: two fresh hosts and two warm ones provisioned, keys hosts, freshS, warmS', () => {
  const j = bench('provision', ['--hosts', '2', '--rounds', '1']);
  assert.equal(j.hosts, 2);
  assert.ok(Number(j.freshS) > 0 && Number(j.warmS) > 0, JSON.stringify(j));
});

test('bench/records-format in smoke size: text, binary and the binary scan each decode every record', () => {
  const j = bench('records-format', ['--records', '2000', '--rounds', '1']) as { nsPerRecord: Record<string, number>; bytesPerRecord: Record<string, number> };
  for (const side of ['text', 'binary', 'binaryScan']) assert.ok(j.nsPerRecord[side]! > 0, side);
  assert.ok(j.bytesPerRecord.binary! < j.bytesPerRecord.text!, 'the binary format is smaller');
});

test('bench/analyze in smoke size: the stream stage, the batch analyzer and the SQL JOIN each analyze the records; keys of issue 22', () => {
  const j = bench('analyze', ['--records', '30000', '--reference-records', '10000', '--rounds', '1']) as Record<string, any>;
  assert.equal(j.records, 30000);
  assert.ok(j.workers >= 1, `stream workers: ${j.workers}`);
  for (const k of ['recordsPerSec', 'referenceRecordsPerSec', 'batchRecordsPerSec', 'perRecordCostRatio', 'peakRssMb']) assert.ok(Number(j[k]) > 0, `${k}: ${JSON.stringify(j)}`);
  assert.ok(j.ours.paths > 14_000, `paths joined: ${j.ours.paths}`);
  assert.equal(j.batch.paths, j.reference.paths, 'the batch analyzer and the SQL JOIN join the same paths');
});

test('bench/scrape in smoke size: both reads of the histograms and counters are timed', () => {
  const j = bench('scrape', ['--ports', '2', '--rounds', '3']);
  assert.equal(j.ports, 2);
  for (const k of ['perBucketMs', 'perBucketHoldMs', 'batchMs', 'batchHoldMs', 'ratio', 'holdRatio']) assert.ok(Number(j[k]) > 0, `${k}: ${JSON.stringify(j)}`);
});

test('bench/observer-overhead in smoke size: every configuration runs every workload; the keys of issue 24', () => {
  const j = bench('observer-overhead', ['--rounds', '1', '--seconds', '1']) as Record<string, any>;
  assert.ok(j.bpfNsPerRunMedian > 0 && j.bpfNsPerRunEverySegmentMedian > 0, JSON.stringify(j));
  for (const k of ['p50', 'p99']) assert.equal(typeof j.sockperfAddedUs.sampling[k], 'number', `sockperfAddedUs.sampling.${k}`);
  assert.ok(j.bulkThroughputRatio.sampling > 0 && j.pingpongRttPerSec.baseline > 0, JSON.stringify(j));
});

test('bench/observer-overhead stopped by SIGTERM mid-run: it says so, exits 1, and leaves no namespace, server or BPF program behind', async () => {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'bench', 'observer-overhead.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('ls-bov-'));
  try {
    for (let i = 0; i < 600 && namespaces().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(namespaces().length, 2, 'its testbed is up');
    await new Promise((r) => setTimeout(r, 3000)); // into its first runs
    child.kill('SIGTERM');
    assert.equal(await exited, 1, err);
  } finally {
    child.kill('SIGKILL');
  }
  assert.match(err, /stopped \(SIGTERM/);
  assert.deepEqual(namespaces(), [], 'no namespace left');
  assert.equal(spawnSync('pgrep', ['-f', 'dist/bench/tcpbench']).status, 1, 'no traffic server left');
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), /\blt_|empty_/, 'no program of the benchmark left');
});

test('bench/ringbuf, bench/graph, bench/timesync and bench/host-overhead in smoke size: each measures both of its sides', () => {
  const rb = bench('ringbuf', ['--seconds', '1']) as Record<string, any>;
  assert.ok(rb.batched.recordsPerSec > 0 && rb.perRecordReference.recordsPerSec > 0 && rb.batched.outOfOrder === 0, JSON.stringify(rb));
  const g = bench('graph', ['--rounds', '1']) as Record<string, any>;
  assert.ok(g.daySeconds > 0 && g.hourSeconds > 0, JSON.stringify(g));
  const ts = bench('timesync', ['--rounds', '2', '--probes', '100', '--seconds', '4']) as Record<string, any>;
  assert.ok(ts.xdp.probes > 0 && ts.userSpaceEcho.probes > 0, JSON.stringify(ts));
  const ho = bench('host-overhead', ['--rounds', '1', '--seconds', '1']) as Record<string, any>;
  assert.ok(ho.medianNsPerEvent.latscope > 0 && ho.throughput.baseline.tcpPingpongRttPerS > 0, JSON.stringify(ho));
});

test('bench/provision refuses more hosts than one kernel can run observers for, saying why', () => {
  const r = spawnSync(process.execPath, [join(projectRoot, 'dist', 'bench', 'provision.js'), '--hosts', '100'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--hosts 100: at most 64 observers can run on one kernel/);
});
