/**
 * bench/sockperf.ts, the toggled sockperf session's arithmetic: its full log read, the pause that
 * ties sockperf's clock to ours found, round trips put in the window of the hooks' state they
 * were sent in (none during a change and its guard), and the percentiles of each side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockOffset, parseFullLog, toggledFigures, windowsOf, type RoundTrip, type Toggle } from '../../bench/sockperf.js';

const LOG = `------------------------------
test was performed using the following parameters: --mps=600000 --burst=1 --reply-every=1 --msg-size=100 --time=1 --full-rtt
------------------------------
sockperf: [Total Run] RunTime=1.001 sec; Warm up time=400 msec; SentMessages=63478; ReceivedMessages=63477
sockperf: ---> percentile 99.000 =   19.809
------------------------------
packet, txTime(sec), rxTime(sec), rtt(usec)
0, 2.422044304, 2.422062011, 17.707
1, 2.422062041, 2.422079046, 17.005
2, 2.422079086, 2.422130000, 50.914
------------------------------
`;

test('the full log: every round trip row (send time in s, round trip in µs), no header or summary line', () => {
  assert.deepEqual(parseFullLog(LOG), [
    { tx: 2.422044304, rtt: 17.707 },
    { tx: 2.422062041, rtt: 17.005 },
    { tx: 2.422079086, rtt: 50.914 },
  ]);
  assert.deepEqual(parseFullLog('sockperf: No valid observations found.\n'), []);
});

test('the pause: the longest round trip was sent when it began; none long enough is a clear error', () => {
  const rows: RoundTrip[] = [{ tx: 3, rtt: 17 }, { tx: 3.1, rtt: 40_012 }, { tx: 3.2, rtt: 2_900 }];
  assert.equal(clockOffset(rows, 5100, 40), 2000); // ours 5100 ms = sockperf's 3100 ms
  assert.throws(() => clockOffset([{ tx: 3, rtt: 17 }, { tx: 3.2, rtt: 2_900 }], 5100, 40), /no round trip spanning the 40 ms pause \(the longest is 2900 µs\).*more seconds/);
  assert.throws(() => clockOffset([], 5100, 40), /the longest is none/);
});

/** Round trips every ms from `from` to `to` (sockperf's clock, ms), each `rtt(t)`. */
function trips(from: number, to: number, rtt: (t: number) => number): RoundTrip[] {
  const rows: RoundTrip[] = [];
  for (let t = from; t < to; t++) rows.push({ tx: t / 1000, rtt: rtt(t) });
  return rows;
}

test('windows: a round trip belongs to the state it was sent in, none before the first change, during one or within its guard', () => {
  const offset = 1000; // ours = sockperf's + 1000 ms
  const toggles: Toggle[] = [
    { start: 2000, end: 2050, on: true },
    { start: 2500, end: 2520, on: false },
    { start: 3000, end: 3040, on: true },
  ];
  const w = windowsOf(trips(500, 2500, () => 20), offset, toggles, 100);
  // sockperf's 1150..1499 -> ours 2150..2499 (on); 1620..1999 -> 2620..2999 (off); 2140..2499 -> 3140..3499 (on)
  assert.deepEqual(w.map((x) => [x.on, x.rtts.length]), [[true, 350], [false, 380], [true, 360]]);
  // a toggle whose window got no round trip is left out
  assert.deepEqual(windowsOf(trips(0, 1100, () => 20), offset, toggles, 100), []);
});

test('figures: each side pooled over its windows, added = on - off, per group of whole pairs of windows, and their median', () => {
  const offset = 0;
  const toggles: Toggle[] = [];
  for (let i = 0; i < 8; i++) toggles.push({ start: i * 500, end: i * 500 + 30, on: i % 2 === 0 });
  const on = (t: number) => Math.floor(t / 500) % 2 === 0;
  // hooks on add 1.5 µs; the second half of the run is 2 µs slower on both sides (a VM's drift)
  const rtt = (t: number) => 17 + (on(t) ? 1.5 : 0) + (t >= 2000 ? 2 : 0) + (t % 100 === 0 ? 10 : 0);
  const f = toggledFigures(windowsOf(trips(0, 4000, rtt), offset, toggles, 100));
  assert.equal(f.windows, 8);
  assert.deepEqual(f.samples, { on: 4 * 370, off: 4 * 370 });
  // 8 windows: 3 groups (an odd count), each with both sides
  assert.equal(f.groups.length, 3);
  assert.ok(f.groups.every((g) => Math.abs(g.p50 - 1.5) < 1e-9), JSON.stringify(f.groups));
  assert.ok(Math.abs(f.added.p50 - 1.5) < 1e-9 && Math.abs(f.pooled.p50 - 1.5) < 1e-9, JSON.stringify(f));
  // 1 in 100 round trips is 10 µs slower: p99 (nearest rank) is the slowest of the ordinary ones
  assert.ok(Math.abs(f.on.p99 - 20.5) < 1e-9 && Math.abs(f.off.p99 - 19) < 1e-9, JSON.stringify(f));
  // with the clocks tied wrongly (400 ms), a window holds mostly the other state's round trips
  const wrong = toggledFigures(windowsOf(trips(0, 4000, (t) => 17 + (on(t) ? 1.5 : 0)), 400, toggles, 100));
  assert.ok(Math.abs(wrong.pooled.p50 + 1.5) < 1e-9, JSON.stringify(wrong.pooled));
});

test('figures: a burst in one group of windows moves the pooled p99, not the median of the groups', () => {
  const toggles: Toggle[] = [];
  for (let i = 0; i < 20; i++) toggles.push({ start: i * 500, end: i * 500 + 30, on: i % 2 === 0 });
  const on = (t: number) => Math.floor(t / 500) % 2 === 0;
  // hooks on add 1 µs everywhere and 2 µs to the slow round trip in 100; 50 ms of 60 µs round trips in one on window
  const rtt = (t: number) => (t >= 4200 && t < 4250 ? 60 : 17 + (on(t) ? 1 : 0) + (t % 100 === 0 ? 10 + (on(t) ? 2 : 0) : 0));
  const f = toggledFigures(windowsOf(trips(0, 10_000, rtt), 0, toggles, 100));
  assert.equal(f.groups.length, 5);
  assert.ok(Math.abs(f.added.p50 - 1) < 1e-9, JSON.stringify(f.added));
  // p99 (nearest rank) of each side is its 99th slowest in 100 ordinary round trips: 18 on, 17 off, 1 µs added...
  assert.ok(Math.abs(f.added.p99 - 1) < 1e-9, JSON.stringify(f.groups));
  // ...but pooled, the burst's 50 round trips push the on side's p99 into its 10 µs slow ones
  assert.ok(f.pooled.p99 > 5, JSON.stringify(f.pooled));
});

test('figures: a side without round trips is an error that says what to do', () => {
  assert.throws(() => toggledFigures([{ on: true, rtts: [18, 19] }]), /no round trip with the hooks off: give it more seconds/);
  assert.throws(() => toggledFigures([{ on: false, rtts: [18] }]), /no round trip with the hooks on/);
});
