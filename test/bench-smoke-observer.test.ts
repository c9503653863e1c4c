/**
 * bench/observer-overhead does not rot: its smallest run prints the keys of issue 24, and a run
 * stopped by SIGTERM leaves nothing behind. Its own file, so that the per-file time limit of
 * the runner covers it alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { bench } from './helpers/bench.js';

test('bench/observer-overhead in smoke size: every configuration runs every workload; the keys of issue 24', async () => {
  const j = await bench('observer-overhead', ['--rounds', '1', '--seconds', '1', '--sockperf-seconds', '3']) as Record<string, any>;
  assert.ok(j.bpfNsPerRunMedian > 0 && j.bpfNsPerRunEverySegmentMedian > 0, JSON.stringify(j));
  for (const k of ['p50', 'p99']) assert.equal(typeof j.sockperfAddedUs.sampling[k], 'number', `sockperfAddedUs.sampling.${k}`);
  // every configuration's sockperf session had windows on both sides, tied to sockperf's clock
  for (const [c, s] of Object.entries(j.sockperfSessions as Record<string, any>)) {
    assert.ok(s.windows >= 2 && s.samples.on > 1000 && s.samples.off > 1000, `${c}: ${JSON.stringify(s)}`);
    assert.ok(s.on.p50 > 0 && s.off.p50 > 0 && s.on.p99 >= s.on.p50, `${c}: ${JSON.stringify(s)}`);
  }
  // the floor's hooks cost the round trip something; sockperf's clock tied wrongly would mix the sides
  assert.ok(j.sockperfAddedUs.emptyHooks.p50 > 0.2, JSON.stringify(j.sockperfAddedUs));
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
    const limit = new Promise<string>((r) => setTimeout(() => r('still running 90 s after SIGTERM'), 90_000).unref());
    assert.equal(await Promise.race([exited, limit]), 1, err);
  } finally {
    child.kill('SIGKILL');
  }
  assert.match(err, /stopped \(SIGTERM/);
  assert.deepEqual(namespaces(), [], 'no namespace left');
  assert.equal(spawnSync('pgrep', ['-f', 'dist/bench/tcpbench']).status, 1, 'no traffic server left');
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), /\blt_|empty_/, 'no program of the benchmark left');
});
