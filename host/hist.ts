/**
 * The host modules' in-kernel histograms in user space: decoded from map values, merged across
 * CPUs or keys, and read as quantiles. Two bucketings: log-linear (hist.h, four buckets per power
 * of two: a quantile within 12.5%) and log2 (the syscall module: a factor of two). Count, sum and
 * maximum are exact in both.
 */
import { HIST, HIST_SLOTS, HIST_SUB, HIST_SUB_BITS } from '../protocol/host.js';

export interface Histogram {
  count: number;
  sumNs: number;
  maxNs: number;
  /** Counts per bucket (bucketing: `log2` or `loglinear`). */
  slots: number[];
  bucketing: 'loglinear' | 'log2';
}

export const emptyHistogram = (bucketing: Histogram['bucketing'] = 'loglinear', slots = HIST_SLOTS): Histogram => ({ count: 0, sumNs: 0, maxNs: 0, slots: new Array(slots).fill(0), bucketing });

const H = HIST.offsets;

/** A struct hist at `offset` of `buf`. */
export function decodeHist(buf: Buffer, offset = 0): Histogram {
  const slots = new Array<number>(HIST_SLOTS);
  for (let i = 0; i < HIST_SLOTS; i++) slots[i] = Number(buf.readBigUInt64LE(offset + H.slot + 8 * i));
  return { count: Number(buf.readBigUInt64LE(offset + H.count)), sumNs: Number(buf.readBigUInt64LE(offset + H.sum_ns)), maxNs: Number(buf.readBigUInt64LE(offset + H.max_ns)), slots, bucketing: 'loglinear' };
}

/** a + b (same bucketing). */
export function mergeHist(a: Histogram, b: Histogram): Histogram {
  return { count: a.count + b.count, sumNs: a.sumNs + b.sumNs, maxNs: Math.max(a.maxNs, b.maxNs), slots: a.slots.map((v, i) => v + (b.slots[i] ?? 0)), bucketing: a.bucketing };
}

/** [low, high) of a bucket, in ns. */
export function slotBounds(slot: number, bucketing: Histogram['bucketing']): [number, number] {
  if (bucketing === 'log2') return slot === 0 ? [0, 2] : [2 ** slot, 2 ** (slot + 1)];
  if (slot < HIST_SUB) return [slot, slot + 1];
  const p = Math.floor((slot - HIST_SUB) / HIST_SUB) + HIST_SUB_BITS;
  const sub = (slot - HIST_SUB) % HIST_SUB;
  const unit = 2 ** (p - HIST_SUB_BITS);
  return [(HIST_SUB + sub) * unit, (HIST_SUB + sub + 1) * unit];
}

/** The q-quantile (0..1) by nearest rank: the middle of its bucket, never above the exact maximum; undefined when empty. */
export function histQuantile(h: Histogram, q: number): number | undefined {
  if (!h.count) return undefined;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (let i = 0; i < h.slots.length; i++) {
    seen += h.slots[i]!;
    if (seen >= rank) {
      const [lo, hi] = slotBounds(i, h.bucketing);
      return Math.min((lo + hi) / 2, h.maxNs);
    }
  }
  return h.maxNs;
}

export interface Percentiles {
  count: number;
  meanNs: number | null;
  p50Ns: number | null;
  p99Ns: number | null;
  p99999Ns: number | null;
  maxNs: number | null;
}

/** The figures every report shows for a histogram. */
export function percentiles(h: Histogram): Percentiles {
  const q = (x: number) => histQuantile(h, x) ?? null;
  return { count: h.count, meanNs: h.count ? h.sumNs / h.count : null, p50Ns: q(0.5), p99Ns: q(0.99), p99999Ns: q(0.99999), maxNs: h.count ? h.maxNs : null };
}
