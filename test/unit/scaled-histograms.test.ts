/**
 * The scaled histograms' estimator (observer/sampling.ts, the rule of latency.bpf.c's
 * hist_weight): over many simulated streams of segments of mixed sizes, the counts and the
 * distributions it estimates fall within the documented error of the histograms of every
 * segment. The kernel test (test/latency.test.ts) checks that the probe implements the rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaledHistogramError, scaledWeight } from '../../observer/sampling.js';
import { uniform as random } from '../../timesync/simulate.js';

const BUCKETS = 32;
const bucket = (ns: number) => Math.min(BUCKETS - 1, Math.floor(Math.log2(Math.max(1, ns))));

test('scaledWeight: the segments holding a histogram byte, weighted by bytes / length (at least 1)', () => {
  assert.equal(scaledWeight(0, 100, 4096), 0);
  assert.equal(scaledWeight(3996, 100, 4096), 40.96, 'holds byte 4095');
  assert.equal(scaledWeight(3995, 100, 4096), 0, 'ends at byte 4094');
  assert.equal(scaledWeight(4095, 1, 4096), 4096);
  assert.equal(scaledWeight(10_000, 65536, 4096), 1, 'a segment longer than the spacing is always picked, once');
  // constant 100-byte messages: one in 40.96 picked, and the weights sum to the count
  let sum = 0;
  for (let i = 0; i < 100_000; i++) sum += scaledWeight(i * 100, 100, 4096);
  assert.ok(Math.abs(sum / 100_000 - 1) < 0.001, `weights sum to ${sum}`);
});

test('scaled histograms over 300 simulated streams of mixed segments: count and distribution within 4 documented standard errors in at least 99% of them, and never far off', () => {
  const H = 4096;
  const trials = 300;
  let countOk = 0, shareOk = 0, worstCount = 0, worstShare = 0;
  for (let t = 0; t < trials; t++) {
    const r = random(1000 + t);
    const n = 5000 + Math.floor(r() * 20000);
    const all = new Float64Array(BUCKETS);
    const est = new Float64Array(BUCKETS);
    let offset = Math.floor(r() * 1e6);
    let inverseSum = 0;
    for (let i = 0; i < n; i++) {
      // small messages, full segments, anything in between, and big GSO/GRO segments
      const u = r();
      const len = u < 0.4 ? 100 : u < 0.7 ? 1448 : u < 0.9 ? 1 + Math.floor(r() * 4096) : 16384;
      // delays that depend on the size (bigger waits longer), spread over decades
      const ns = Math.exp(Math.log(500 + len) + 1.5 * Math.sqrt(-2 * Math.log(r())) * Math.cos(2 * Math.PI * r()));
      all[bucket(ns)]! += 1;
      est[bucket(ns)]! += scaledWeight(offset, len, H);
      inverseSum += 1 / Math.min(len, H);
      offset += len;
    }
    const m = est.reduce((a, b) => a + b, 0);
    const e = scaledHistogramError(n, n / inverseSum, H);
    const countErr = Math.abs(m / n - 1) / e.count;
    let ca = 0, cb = 0, share = 0;
    for (let b = 0; b < BUCKETS; b++) {
      ca += all[b]!;
      cb += est[b]!;
      share = Math.max(share, Math.abs(ca / n - cb / m));
    }
    const shareErr = share / e.share;
    if (countErr <= 4) countOk++;
    if (shareErr <= 4) shareOk++;
    worstCount = Math.max(worstCount, countErr);
    worstShare = Math.max(worstShare, shareErr);
  }
  assert.ok(countOk >= 0.99 * trials, `counts within 4 errors: ${countOk}/${trials} (worst ${worstCount.toFixed(2)})`);
  assert.ok(shareOk >= 0.99 * trials, `distributions within 4 errors: ${shareOk}/${trials} (worst ${worstShare.toFixed(2)})`);
  assert.ok(worstCount < 6 && worstShare < 6, `worst: count ${worstCount.toFixed(2)}, share ${worstShare.toFixed(2)} errors`);
});

test('scaledHistogramError: documented figures for the default spacing', () => {
  // 10,000 messages of 100 bytes, one per 4 KiB: a count within ±6.3% (one error), a quantile's rank within ±3.2 points
  const e = scaledHistogramError(10_000, 100, 4096);
  assert.ok(Math.abs(e.count - 0.0632) < 0.001 && Math.abs(e.share - 0.032) < 0.001, JSON.stringify(e));
  assert.deepEqual(scaledHistogramError(10_000, 65536, 4096), { count: 0, share: 0.005 }, 'segments of at least the spacing: every one counted exactly');
});
