/**
 * The time-sync estimator with synthetic probes of a known clock (offset and drift) over paths
 * with random, asymmetric delays: every estimate lies within its own bound of the truth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateRound, fitClock, offsetAt, probeOffset, toManagerTime } from '../../timesync/estimator.js';
import type { Sample } from '../../protocol/timesync.js';

let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

/** The server's clock: manager time t -> t + offset + drift·(t − epoch). */
const truth = { offsetNs: 123_456_789_000n, driftPpb: 20_000, epochNs: 1_000_000_000_000n };
const serverClock = (t: bigint) => t + truth.offsetNs + BigInt(Math.round((Number(t - truth.epochNs) * truth.driftPpb) / 1e9));
const trueOffset = (t: bigint) => Number(serverClock(t) - t);

function round(startNs: bigint, n: number, r: number): Sample[] {
  const out: Sample[] = [];
  let t = startNs;
  for (let i = 0; i < n; i++) {
    const up = 4000 + Math.round(rnd() ** 3 * 60000); // asymmetric and heavy-tailed
    const down = 3000 + Math.round(rnd() ** 3 * 90000);
    const t1 = t;
    const t2 = serverClock(t1 + BigInt(up));
    const t3 = t2 + 500n;
    const t4 = t1 + BigInt(up) + 500n + BigInt(down);
    out.push({ t1, t2, t3, t4, round: r, seq: i, server: 's1' });
    t = t4 + 20_000n;
  }
  return out;
}

test('one round: the offset lies within the estimate\'s bound, whatever the asymmetry', () => {
  for (let r = 0; r < 20; r++) {
    const e = estimateRound(round(truth.epochNs + BigInt(r) * 64_000_000_000n, 200, r));
    const err = Math.abs(Number(e.offsetNs) - trueOffset(e.atNs));
    assert.ok(err <= e.boundNs, `round ${r}: error ${err} > bound ${e.boundNs}`);
    assert.ok(e.boundNs < 10_000, `a tight bound from the fastest probes (${e.boundNs})`);
    assert.equal(e.kept, 50);
  }
});

test('the causality interval of each probe holds the truth', () => {
  for (const s of round(truth.epochNs, 100, 1)) {
    const p = probeOffset(s);
    assert.ok(Math.abs(p.offsetNs - trueOffset(p.midNs)) <= p.delayNs / 2 + 1);
  }
});

test('a window of rounds: drift within its bound; a timestamp maps to manager time within its bound', () => {
  const rounds = Array.from({ length: 16 }, (_, r) => estimateRound(round(truth.epochNs + BigInt(r) * 64_000_000_000n, 200, r)));
  const fit = fitClock(rounds);
  assert.ok(Math.abs(fit.driftPpb - truth.driftPpb) <= fit.driftBoundPpb, `drift ${fit.driftPpb} vs ${truth.driftPpb} ± ${fit.driftBoundPpb}`);
  for (const dt of [0n, 100_000_000_000n, 500_000_000_000n, 960_000_000_000n, 1_100_000_000_000n]) {
    const t = truth.epochNs + dt;
    const o = offsetAt(fit, t);
    assert.ok(Math.abs(Number(o.offsetNs) - trueOffset(t)) <= o.boundNs, `offset at +${dt}: ${o.offsetNs} vs ${trueOffset(t)} ± ${o.boundNs}`);
    const m = toManagerTime(fit, serverClock(t));
    assert.ok(Math.abs(Number(m.tNs - t)) <= m.boundNs, `manager time of +${dt}: off by ${m.tNs - t}, bound ${m.boundNs}`);
  }
});

test('bad rounds are refused clearly', () => {
  assert.throws(() => estimateRound([]), /no completed probes/);
  assert.throws(() => fitClock([]), /no rounds/);
});
