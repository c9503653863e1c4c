/**
 * The stream stage's join: on a synthetic fleet whose every delay is known, records arriving out
 * of order pair up exactly (a retransmission with its own arrival), the sketches' quantiles are
 * within the stated relative error of the exact ones, what never meets its other end is counted
 * by reason once the watermark passes, and the waiting is bounded (the oldest evicted, counted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamJoin, type JoinRecord } from '../../analyzer/stream/join.js';
import { RELATIVE_ERROR, quantile } from '../../lib/stats.js';

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('out-of-order records join exactly; sketches within their error; unmatched counted by reason', () => {
  const rand = rng(7);
  const servers = 4;
  const records: JoinRecord[] = [];
  const truth = new Map<string, { oneWay: number[]; e2e: number[] }>();
  let droppedRx = 0, droppedTx = 0, paths = 0;
  for (let i = 0; i < 40_000; i++) {
    const src = i % servers, dst = (i + 1 + (i % 3)) % servers;
    if (src === dst) continue;
    const flow = 1_000_000_000_000 + src * 100 + dst * 10 + (i % 5); // 52-bit-ish ids, several flows per pair
    const sample = (i * 8192) >>> 0;
    const t = 1e12 + i * 10_000;
    const txDev = 2_000 + rand() * 3_000;
    const wire = 10_000 * (1 + dst) + rand() * 50_000 * rand() * rand();
    const rxSock = 3_000 + rand() * 20_000;
    const retrans = i % 50 === 0;
    const lost = i % 97 === 0, noSender = i % 89 === 0 && !lost && !retrans; // a lone retransmitted copy would pair (rightly) with the first
    const tx0: JoinRecord = { server: src, flow, sample, tx: true, sock: t, edge: t + txDev };
    // a retransmission 200 µs later: the receiver's record belongs to it, the first copy never arrived
    const tx = retrans ? { ...tx0, sock: t + 200_000, edge: t + 200_000 + txDev } : tx0;
    const rx: JoinRecord = { server: dst, flow, sample, tx: false, sock: tx.edge + wire + rxSock, edge: tx.edge + wire };
    if (retrans) records.push(tx0);
    if (!noSender) records.push(tx);
    else droppedTx++;
    if (!lost) records.push(rx);
    else droppedRx++;
    if (retrans) droppedRx++; // the first copy's receiver record never comes
    if (!lost && !noSender) {
      paths++;
      const k = `${src}>${dst}`;
      const tr = truth.get(k) ?? { oneWay: [], e2e: [] };
      tr.oneWay.push(rx.edge - tx.edge);
      tr.e2e.push(rx.sock - tx.sock);
      truth.set(k, tr);
    }
  }
  // arrival out of order within 64 records (ingest batches of different servers interleave)
  const arrival = records.map((r, i) => ({ r, at: i + rand() * 64 }));
  arrival.sort((a, b) => a.at - b.at);
  records.splice(0, records.length, ...arrival.map((a) => a.r));
  // streams lag each other by less than the wait: 64 records are 640 µs of this traffic
  const join = new StreamJoin({ capacity: 1 << 14, waitNs: 2e6 });
  let watermark = 0;
  for (const [i, r] of records.entries()) {
    join.add(r);
    watermark = Math.max(watermark, r.tx ? r.sock : r.edge);
    if (i % 1000 === 999) join.advance(watermark);
  }
  assert.ok(join.waiting < 1 << 14, 'waiting stays bounded by the wait, not the stream');
  join.advance(Infinity);
  assert.deepEqual([join.counters.paths, join.counters.noReceiver, join.counters.noSender, join.counters.evicted], [paths, droppedRx, droppedTx, 0]);
  assert.equal(join.counters.noReceiver, droppedRx, 'tx records without an rx');
  assert.equal(join.counters.noSender, droppedTx, 'rx records without a tx');
  assert.equal(join.counters.evicted, 0);
  assert.equal(join.waiting, 0);
  for (const p of join.pairs.values()) {
    const tr = truth.get(`${p.src}>${p.dst}`)!;
    for (const [name, sketch, values] of [['one-way', p.oneWay, tr.oneWay], ['e2e', p.e2e, tr.e2e]] as const) {
      const h = sketch;
      assert.equal(h.count, values.length);
      for (const q of [0.5, 0.9, 0.99, 0.999]) {
        const exact = quantile(values, q);
        assert.ok(Math.abs(h.quantile(q) - exact) <= exact * RELATIVE_ERROR + 1, `${p.src}>${p.dst} ${name} q${q}: ${h.quantile(q)} vs ${exact}`);
      }
      assert.equal(h.max, Math.max(...values));
    }
  }
});

test('waiting is bounded: beyond capacity the oldest goes, counted; the watermark settles the rest', () => {
  const join = new StreamJoin({ capacity: 12, waitNs: 1000 });
  for (let i = 0; i < 25; i++) join.add({ server: 1, flow: 42, sample: i, tx: true, sock: i * 100, edge: i * 100 + 10 });
  assert.equal(join.waiting, 12);
  assert.equal(join.counters.evicted, 13);
  join.add({ server: 2, flow: 42, sample: 24, tx: false, sock: 3000, edge: 2500 });
  assert.equal(join.counters.evicted, 14, 'the oldest made room');
  join.advance(2500 + 1001); // everything has waited its 1000 ns: the receiver takes its sender, the rest are counted
  assert.equal(join.counters.paths, 1);
  assert.equal(join.counters.noReceiver, 10);
  assert.equal(join.waiting, 0);
  const p = [...join.pairs.values()][0]!;
  assert.deepEqual([p.src, p.dst, p.oneWay.count, p.oneWay.max, p.e2e.max], [1, 2, 1, 2500 - 2410, 3000 - 2400]);
  // a receiver record whose sender left after it arrived is not its partner
  join.add({ server: 2, flow: 7, sample: 1, tx: false, sock: 600, edge: 500 });
  join.add({ server: 1, flow: 7, sample: 1, tx: true, sock: 900, edge: 950 });
  // same low 21 bits of the flow id and the same sample: two flows, no mix-up
  join.add({ server: 1, flow: 5, sample: 9, tx: true, sock: 100, edge: 110 });
  join.add({ server: 2, flow: 5 + 2097152, sample: 9, tx: false, sock: 300, edge: 200 });
  join.advance(Infinity);
  assert.equal(join.counters.paths, 1, 'no path backwards in time, none across flows');
  assert.deepEqual([join.counters.noSender, join.counters.noReceiver], [2, 12]);
});
