/** How the syscall module times calls (host/syscall.ts timingPlan): pure logic, no kernel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timingPlan } from '../../host/syscall.js';

const TICK = 4_000_000; // HZ=250

test('sampling with a tick: untimed calls of at least floor(slow / tick) ticks may be slow (none slower is missed)', () => {
  assert.deepEqual(timingPlan(10_000_000, 32, TICK), { every: 32, tickNs: TICK, slowTicks: 2 });
  assert.deepEqual(timingPlan(12_000_000, 8, TICK), { every: 8, tickNs: TICK, slowTicks: 3 });
  // a call of D ns crosses at least floor(D / tick) tick boundaries: for every D >= slow, that is >= slowTicks
  for (const slow of [8e6, 9e6, 10e6, 12e6, 15.5e6, 100e6]) {
    const { slowTicks } = timingPlan(slow, 32, TICK);
    for (let d = slow; d < slow + 3 * TICK; d += 250_000) assert.ok(Math.floor(d / TICK) >= slowTicks, `slow ${slow}, call ${d}`);
  }
});

test('every call timed when the threshold is finer than two ticks or the tick is unknown', () => {
  assert.equal(timingPlan(1_000_000, 32, TICK).every, 1);
  assert.equal(timingPlan(7_999_999, 32, TICK).every, 1);
  assert.equal(timingPlan(8_000_000, 32, TICK).every, 32);
  assert.equal(timingPlan(10_000_000, 32, undefined).every, 1);
});

test('a sampling period that is not a whole number from 1 to 2^20 is refused, naming it', () => {
  for (const bad of [0, -1, 1.5, NaN, 2 ** 20 + 1]) assert.throws(() => timingPlan(10e6, bad, TICK), /one call in .* is not a whole number from 1 to 1048576/);
  assert.equal(timingPlan(10e6, 1, TICK).every, 1);
});
