/**
 * The sample test of latency.bpf.c divides by no register: sample_div multiplies the offset by
 * sampleReciprocal(size) (observer/probe.ts), shifts, and corrects the quotient by one step.
 * Here its arithmetic, in the kernel's u32/u64 widths, against the division over every size
 * class and the offsets where an error would show (each multiple of the size and either side of
 * it, both ends of the u32 range) and random ones. The kernel tests (test/latency.test.ts) check
 * that the probe samples the bytes the rule names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleReciprocal } from '../../observer/probe.js';
import { uniform } from '../../timesync/simulate.js';

const random = uniform(22);

/** latency.bpf.c's sample_div, in its widths. */
function sampleDiv(off: number, size: number): number {
  const recip = sampleReciprocal(size);
  let q = Number((BigInt(off) * recip) >> 32n) >>> 0;
  if ((off - Math.imul(q, size)) >>> 0 >= size) q = (q + 1) >>> 0;
  return q;
}

test('sample_div: the quotient of every offset by every size, as the division gives it', () => {
  const sizes = [1, 2, 3, 7, 100, 1448, 4096, 65535, 65536, 72400, 1_000_003, 2 ** 24 + 1, 2 ** 31 - 1, 2 ** 31];
  for (let i = 0; i < 200; i++) sizes.push(1 + Math.floor(random() * 2 ** 31));
  let checked = 0;
  for (const size of sizes) {
    const offs = [0, 1, 2 ** 32 - 1, 2 ** 32 - 2, 2 ** 31, size - 1, size, size + 1];
    for (const k of [1, 2, 3, 1000, Math.floor((2 ** 32 - 1) / size)]) offs.push(k * size - 1, k * size, k * size + 1);
    for (let i = 0; i < 200; i++) offs.push(Math.floor(random() * 2 ** 32));
    for (const off of offs.filter((o) => o >= 0 && o < 2 ** 32)) {
      assert.equal(sampleDiv(off, size), Math.floor(off / size), `${off} / ${size}`);
      checked++;
    }
  }
  assert.ok(checked > 40_000, `${checked} offsets checked`);
  assert.equal(sampleReciprocal(0), 0n, 'no size rule: no reciprocal (the kernel never divides then)');
  assert.equal(sampleReciprocal(1), 1n << 32n, 'a size of 1 needs all 33 bits: a u64 setting');
});
