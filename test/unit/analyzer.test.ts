/**
 * The analyzer's pure parts with hand-made records: pairing by time (retransmissions, a 32-bit
 * wrap), waiting and unmatched reasons, segments adding up to the end-to-end delay, tail shares
 * adding up to 1, clock interpolation with its bound, windows and sketches. No database, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClockTimeline } from '../../analyzer/clock.js';
import { RecordColumns, buildPath, eachHopDelay, joinRecords, type Clock, type Rec } from '../../analyzer/paths.js';
import { F_PATH_COMPLETE, F_PATH_FAULT, F_PATH_RETRANS } from '../../protocol/paths.js';
import { Group, WindowStats, statRows } from '../../analyzer/windows.js';
import { SEGMENTS } from '../../protocol/layers.js';
import { LogHistogram } from '../../lib/stats.js';

const exact: Clock = { globalNs: (ns) => ns, lastBound: 0, beyondLastRound: () => false, synced: true };
/** Server 2's clock runs 1 ms ahead of the manager's, known within 100 ns. */
const ahead: Clock = { globalNs: (ns) => ns - 1_000_000, lastBound: 100, beyondLastRound: () => false, synced: true };
const clocks = (s: number) => (s === 2 ? ahead : exact);
const ends = () => ({ src: 1, dst: 2 });

let seq = 0;
function tx(t: number, o: Partial<Rec> = {}): Rec {
  return { server: 1, seq: ++seq, tx: true, flow: 7, sampleSeq: 99, offset: 99, attempt: 0, flags: 4, sock: t, tcp: t + 1000, ip: t + 2000, dev: t + 2500, last: t + 3000, hops: null, ...o };
}
/** A receiver record whose first device crossing is at manager time t (its clock is 1 ms ahead). */
function rx(t: number, o: Partial<Rec> = {}): Rec {
  const d = t + 1_000_000;
  return { server: 2, seq: ++seq, tx: false, flow: 7, sampleSeq: 99, offset: 99, attempt: 0, flags: 4, dev: d, last: d + 500, ip: d + 1500, tcp: d + 2000, sock: d + 10_000, hops: null, ...o };
}

test('a path: every segment, the wire across two clocks with its bound, and segments that add up to the end-to-end delay', () => {
  const p = buildPath(tx(0), rx(23_000), { clock: clocks, ends });
  assert.deepEqual(p.seg, [1000, 1000, 500, 500, 20_000, 500, 1000, 500, 8000]);
  assert.equal(p.bound, 100);
  assert.equal(p.oneWay, 20_500);
  assert.equal(p.e2e, p.seg.reduce((a, b) => a + b, 0));
  assert.equal(p.e2e, 33_000);
  assert.ok(p.flags & F_PATH_COMPLETE && !(p.flags & F_PATH_FAULT));
  const fault = buildPath(tx(0), rx(2_000), { clock: clocks, ends });
  assert.equal(fault.seg[4], -1000, 'a negative delay is kept as it is, never made positive');
  assert.ok(fault.flags & F_PATH_FAULT);
});

test('pairing by time: a retransmission is its own path; the same sample_seq 4 GiB later (a wrap) is another', () => {
  const lost = tx(0);
  const again = tx(200e6, { attempt: 1, flags: 5, sock: NaN });
  const arrival = rx(200e6 + 23_000, { flags: 5 });
  const wrapTx = tx(5e9), wrapRx = rx(5e9 + 23_000);
  const r = joinRecords([wrapRx, arrival, lost, wrapTx, again], { clock: clocks, ends, nowMs: 1000, graceMs: 0 });
  assert.equal(r.paths.length, 2);
  const [a, b] = r.paths.sort((x, y) => x.tNs - y.tNs) as [typeof r.paths[0], typeof r.paths[0]];
  assert.equal(a.tx, again, 'the arrival pairs with the retransmission that caused it');
  assert.ok(a.flags & F_PATH_RETRANS);
  assert.equal(b.tx, wrapTx);
  assert.equal(b.rx, wrapRx);
  assert.deepEqual(r.unmatched.map((u) => [u.rec, u.reason]), [[lost, 'no_receiver_record']]);
});

test('waiting: a record without its other end waits for the grace period, then counts as unmatched; an unobserved peer counts at once', () => {
  const alone = tx(0);
  const wait = joinRecords([alone], { clock: clocks, ends, nowMs: 10_000, graceMs: 60_000 });
  assert.deepEqual(wait.pending, [alone]);
  assert.equal(alone.pendingSinceMs, 10_000);
  const later = joinRecords([alone, rx(23_000)], { clock: clocks, ends, nowMs: 20_000, graceMs: 60_000 });
  assert.equal(later.paths.length, 1, 'the other end arrived in a later batch');
  const expired = joinRecords([tx(0, { pendingSinceMs: 0 })], { clock: clocks, ends, nowMs: 61_000, graceMs: 60_000 });
  assert.equal(expired.unmatched[0]!.reason, 'no_receiver_record');
  const outside = joinRecords([tx(0)], { clock: clocks, ends: () => ({ src: 1, dst: 0 }), nowMs: 0, graceMs: 60_000 });
  assert.equal(outside.unmatched[0]!.reason, 'peer_not_observed');
});

test('tail attribution: over the paths at or above the end-to-end p99, the segment means add up to the tail mean', () => {
  const stats = new WindowStats({ windowNs: 10e9, filterRetrans: true });
  for (let i = 0; i < 1000; i++) {
    const slow = i % 50 === 0 ? 500_000 : 0; // 2% of paths: half a millisecond more on the wire
    stats.addPath(buildPath(tx(i * 1e6), rx(i * 1e6 + 23_000 + slow), { clock: clocks, ends }));
  }
  const g = [...stats.groups.entries()].find(([k]) => k.includes('|pair|'))![1];
  const t = g.tailMeans()!;
  assert.equal(t.count, 20, 'the 2% of slow paths are the tail');
  assert.ok(Math.abs(t.means.reduce((a, b) => a + b, 0) - t.total) < 1e-6);
  const rows = statRows(g, 'pair');
  const shares = rows.filter((r) => SEGMENTS.includes(r.segment as never)).reduce((s, r) => s + r.tailShare!, 0);
  assert.ok(Math.abs(shares - 1) < 1e-9, `shares add up to ${shares}`);
  const wire = rows.find((r) => r.segment === 'wire')!;
  assert.ok(wire.tailShare! > 0.9, `wire holds the tail: ${wire.tailShare}`);
  assert.equal(rows.find((r) => r.segment === 'end_to_end')!.samples, 1000);
});

test('groups merge: stored sketches and tails plus new ones equal one group over everything', () => {
  const all = new Group(), a = new Group(), b = new Group();
  for (let i = 0; i < 500; i++) {
    const p = buildPath(tx(0), rx(23_000 + i * 10), { clock: clocks, ends });
    for (const g of [all, i % 3 ? a : b]) {
      g.add('end_to_end', p.e2e);
      g.addTail([p.e2e], p.seg, 0);
    }
  }
  const stored = new Group();
  stored.hist.set('end_to_end', LogHistogram.fromBuffer(a.hist.get('end_to_end')!.toBuffer()));
  stored.tailFromBuffer(a.tailToBuffer()!);
  stored.merge(b);
  assert.deepEqual(stored.hist.get('end_to_end')!.quantiles([0.5, 0.99]), all.hist.get('end_to_end')!.quantiles([0.5, 0.99]));
  assert.deepEqual([...stored.tailMeans()!.means], [...all.tailMeans()!.means]);
});

test('a clock timeline: offsets interpolated between rounds within their bound, extrapolated with a growing bound', () => {
  // true offset 1 s + 20 ppm of manager time; rounds every 64 s, each known within 300 ns
  const truth = (t: number) => 1e9 + 20e-6 * t;
  const rounds = Array.from({ length: 10 }, (_, k) => ({ atNs: BigInt(k * 64e9), offsetNs: BigInt(Math.round(truth(k * 64e9))), boundNs: 300 }));
  const c = new ClockTimeline(rounds);
  for (const t of [0, 1e9, 100e9, 575e9]) {
    const o = c.offsetAt(t);
    assert.ok(Math.abs(o.ns + 1e9 - truth(t)) <= o.boundNs, `offset at ${t}`);
    assert.ok(c.bracketed(t));
    const serverRel = t + truth(t) - 1e9; // the server's clock relative to its base
    const m = c.toManager(serverRel);
    assert.ok(Math.abs(m.ns - t) <= m.boundNs + 1, `manager time of ${t}: ${m.ns}`);
  }
  const far = c.offsetAt(700e9);
  assert.ok(!c.bracketed(700e9) && far.boundNs > 300 && Math.abs(far.ns + 1e9 - truth(700e9)) <= far.boundNs);
});

test('device hops: each crossing after the first with its delay, exact past 2^53 ns of uptime, read in place', () => {
  const got: number[][] = [];
  const each = (text: string, from?: number, to?: number) => {
    got.length = 0;
    eachHopDelay(text, (ifindex, netns, ns) => got.push([ifindex, netns, ns]), from, to);
    return got;
  };
  assert.deepEqual(each('3:4026531840:0:1000,7:4026532000:0:1250,2:4026531840:0:1900'), [[7, 4026532000, 250], [2, 4026531840, 650]]);
  assert.deepEqual(each('3:1:0:90071992547409930,4:1:0:90071992547410007'), [[4, 1, 77]], 'digits beyond a double\'s exact range');
  assert.deepEqual(each('3:1:0:18446744073709551000,4:1:1:18446744073709551615'), [[4, 1, 615]], 'up to u64');
  assert.deepEqual(each('3:1:0:999999999,4:1:1:1000000001'), [[4, 1, 2]], 'across the nine-digit split');
  assert.deepEqual(each('3:1:0:1000'), [], 'one crossing: no hop');
  assert.deepEqual(each('x\t3:1:0:10,4:2:0:15\ty', 2, 19), [[4, 2, 5]], 'within a longer text');
});

test('records carried from one step to the next as columns: every field, the crossings and the row line, the times moved onto another clock base', () => {
  const src = new RecordColumns(4);
  src.push(tx(5_000, { raw: 'line of the sender', pendingSinceMs: 1234 }));
  const r = src.push(rx(9_000, { hops: '2:4026531840:1:100,5:4026531841:1:400', raw: 'line of the receiver' }));
  const dst = new RecordColumns(1); // grows as records come
  dst.push(tx(1, { flow: 3 })); // another flow first: flows are numbered anew in each set
  const j = dst.copyFrom(src, r, -1000);
  const k = dst.copyFrom(src, 0, 0, 'the line given');
  assert.deepEqual([j, k, dst.n], [1, 2, 3]);
  const want = src.rec(r);
  assert.deepEqual(dst.rec(j), { ...want, dev: want.dev - 1000, last: want.last - 1000, ip: want.ip - 1000, tcp: want.tcp - 1000, sock: want.sock - 1000 });
  assert.equal(dst.flowIds[dst.fx[j]!], 7);
  assert.deepEqual([dst.hopCount[j], dst.hopDelay[dst.hopFirst[j]!]], [1, 300], 'the second crossing, 300 ns after the first');
  assert.deepEqual([dst.rawOf(k), dst.since[k]], ['the line given', 1234]);
});
