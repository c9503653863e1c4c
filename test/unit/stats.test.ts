/** lib/stats.ts: the one quantile definition, and the log-linear histogram's error bound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogHistogram, RELATIVE_ERROR, VarReader, VarWriter, bucketMid, bucketOf, log2Quantile, median, quantile, quantileIndex, quantiles } from '../../lib/stats.js';

test('nearest rank: the smallest value with at least q of the values at or below it', () => {
  const xs = [5, 1, 4, 2, 3];
  assert.equal(quantile(xs, 0), 1);
  assert.equal(quantile(xs, 0.2), 1);
  assert.equal(quantile(xs, 0.21), 2);
  assert.equal(quantile(xs, 0.5), 3);
  assert.equal(quantile(xs, 0.99), 5);
  assert.equal(quantile(xs, 1), 5);
  assert.equal(median([1, 2, 3, 4]), 2, 'the lower middle value, a measured one');
  assert.deepEqual(quantiles([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [0.5, 0.9, 0.99]), [50, 90, 100]);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.equal(quantileIndex(1000, 0.999), 998);
});

test('LogHistogram: every quantile within its relative error of the exact one; min and max exact; merging adds', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const values = Array.from({ length: 20000 }, () => Math.round(1000 * Math.exp(4 * rnd()))); // 1 us .. 55 us, skewed
  const a = new LogHistogram(), b = new LogHistogram();
  values.forEach((v, i) => (i % 2 ? a : b).add(v));
  a.merge(b);
  assert.equal(a.count, values.length);
  for (const q of [0.01, 0.5, 0.9, 0.99, 0.999]) {
    const exact = quantile(values, q);
    const approx = a.quantile(q);
    assert.ok(Math.abs(approx - exact) <= exact * RELATIVE_ERROR * 1.0001, `q ${q}: ${approx} vs ${exact}`);
  }
  assert.equal(a.quantile(0), Math.min(...values));
  assert.equal(a.quantile(1), Math.max(...values));
  assert.equal(a.sum, values.reduce((s, v) => s + v, 0));
});

test('buckets are monotonic, signed, and their midpoints lie inside them', () => {
  let last = -Infinity;
  for (const v of [-1e9, -1000, -1.5, 0, 0.4, 1, 1.5, 2, 3, 1000, 1001, 65536, 1e12]) {
    const b = bucketOf(v);
    assert.ok(b >= last, `bucket of ${v}`);
    last = b;
    if (Math.abs(v) >= 1) assert.ok(Math.abs(bucketMid(b) - v) <= Math.abs(v) * RELATIVE_ERROR * 2, `${v} in bucket ${b} (mid ${bucketMid(b)})`);
  }
  const h = new LogHistogram();
  for (const v of [-300, -200, 100]) h.add(v);
  assert.equal(h.quantile(0.5), bucketMid(bucketOf(-200)), 'negative delays (clock faults) keep their sign');
});

test('log2 histograms (the kernel\'s): the quantile as its bucket bounds', () => {
  const buckets = new Array(32).fill(0);
  buckets[10] = 90; // [1024, 2048)
  buckets[14] = 10; // [16384, 32768)
  assert.deepEqual(log2Quantile(buckets, 0.5), { low: 1024, high: 2048 });
  assert.deepEqual(log2Quantile(buckets, 0.95), { low: 16384, high: 32768 });
  assert.equal(log2Quantile(new Array(32).fill(0), 0.5), undefined);
});

test('stored sketches: the bytes stay as stored before (LEB128, zigzag buckets), counts past 2^31 round trip, and writers that overlap keep their own bytes', () => {
  const h = new LogHistogram();
  for (const v of [1, 2.5, 1000, 1001, -3000, 1e9, 5e15]) h.add(v);
  h.add(20_000, 3e9);
  h.add(-7, 2 ** 40);
  // written by the encoder before it shared one scratch buffer: stored sketches must read back alike
  const stored = '08f71601c1058080808080200201c20201f61302ba1c80bcc1960bde3b019e68011c062b4a0bf33143000000000070a7c00080e03779c33143';
  assert.equal(h.toBuffer().toString('hex'), stored);
  const back = LogHistogram.fromBuffer(Buffer.from(stored, 'hex'));
  assert.deepEqual([...back.buckets()], [...h.buckets()]);
  assert.deepEqual([back.count, back.sum, back.min, back.max], [h.count, h.sum, h.min, h.max]);
  assert.equal(back.countIn(bucketOf(-7)), 2 ** 40);
  // a writer opened while another is open (the shared scratch is taken) writes into its own buffer
  const outer = new VarWriter(), inner = new VarWriter();
  outer.uint(300);
  inner.uint(5);
  outer.int(-2);
  inner.uint(2 ** 35);
  assert.equal(inner.done().toString('hex'), '05808080808001');
  assert.equal(outer.done().toString('hex'), 'ac0203');
  const r = new VarReader(Buffer.from('ac0203', 'hex'));
  assert.deepEqual([r.uint(), r.int(), r.done], [300, -2, true]);
  assert.throws(() => new VarReader(Buffer.from('80', 'hex')).uint(), /truncated/);
  // every page of a histogram is its own (pages are cut from shared slabs)
  const many = Array.from({ length: 40 }, (_, i) => {
    const x = new LogHistogram();
    x.add(2 ** (i % 20) + 1, i + 1);
    return x;
  });
  many.forEach((x, i) => assert.equal(x.count, i + 1));
  many.forEach((x, i) => assert.deepEqual([...x.buckets()], [[bucketOf(2 ** (i % 20) + 1), i + 1]]));
});
