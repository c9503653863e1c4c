/**
 * The one statistics helper of the project: quantiles of a set of values, exact or sketched.
 *
 * Definition (used everywhere, reports and benchmarks alike): the q-quantile of n values is the
 * value of rank ceil(q·n) in ascending order (1-based; rank 1 for q = 0), i.e. the smallest value
 * such that at least a fraction q of the values are at or below it ("nearest rank"). The median
 * is the 0.5-quantile, so for an even count it is the lower of the two middle values: always a
 * value that was measured, never an average of two.
 *
 * LogHistogram is the bounded-memory form for large or incremental sets: log-linear buckets
 * (2^SUB_BITS per power of two) give every quantile within ±RELATIVE_ERROR of the exact one
 * (the bucket's midpoint is reported, clamped to the exact min and max), merge by adding counts,
 * and cost a few integer operations per value.
 */

/** Index of the nearest-rank q-quantile in a sorted array of n values. */
export function quantileIndex(n: number, q: number): number {
  if (n <= 0) return -1;
  return Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
}

/** The q-quantile of values already sorted ascending (NaN when empty). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  return sorted.length ? sorted[quantileIndex(sorted.length, q)]! : NaN;
}

/** The q-quantile of values in any order (copies, then sorts). */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q);
}

/** The 0.5-quantile: the lower middle value for an even count. */
export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/** Several quantiles of values in any order, with one sort. */
export function quantiles(values: ArrayLike<number>, qs: readonly number[]): number[] {
  const s = Float64Array.from(values).sort();
  return qs.map((q) => quantileSorted(s, q));
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return values.length ? s / values.length : NaN;
}

/** Sub-buckets per power of two. */
export const SUB_BITS = 7;
/** Largest relative distance between a reported quantile and the exact one. */
export const RELATIVE_ERROR = 1 / (1 << (SUB_BITS + 1));

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word at index 1

/**
 * Bucket of a value: 0 for |v| < 1 (delays are whole nanoseconds), otherwise ±(1 + the value's
 * binary exponent and top SUB_BITS mantissa bits): monotonic in v, negative for negative values.
 */
export function bucketOf(v: number): number {
  const a = v < 0 ? -v : v;
  if (!(a >= 1)) return 0;
  f64[0] = a;
  const b = 1 + ((u32[HI]! >>> (20 - SUB_BITS)) - (1023 << SUB_BITS));
  return v < 0 ? -b : b;
}

/** The midpoint of a bucket. */
export function bucketMid(b: number): number {
  if (b === 0) return 0;
  const k = (b < 0 ? -b : b) - 1;
  const e = k >>> SUB_BITS;
  const m = k & ((1 << SUB_BITS) - 1);
  const v = 2 ** e * (1 + (m + 0.5) / (1 << SUB_BITS));
  return b < 0 ? -v : v;
}

/** Buckets per page of LogHistogram's counts: one power of two. */
const PAGE = 1 << SUB_BITS;
/**
 * Small zeroed Float64Arrays cut from shared slabs (sketch pages, tail rows): an ArrayBuffer of
 * its own costs ~750 ns to make (a view on a slab ~180), and the analysis makes tens of thousands
 * of them a step, for the sketches it fills and for those it reads back. A slab lives as long as
 * any of its arrays, so it is small (32 pages).
 */
const SLAB_BYTES = 32 * PAGE * 8;
let slab = new ArrayBuffer(0), slabUsed = SLAB_BYTES;
export function smallFloat64Array(length: number): Float64Array {
  const bytes = length * 8;
  if (bytes > SLAB_BYTES) return new Float64Array(length);
  if (slabUsed + bytes > SLAB_BYTES) (slab = new ArrayBuffer(SLAB_BYTES)), (slabUsed = 0);
  const a = new Float64Array(slab, slabUsed, length);
  slabUsed += bytes;
  return a;
}

/**
 * A log-linear histogram of values (see the file comment): quantiles within RELATIVE_ERROR.
 * Counts live in pages of one power of two each (a Float64Array of 2^SUB_BITS), over the range
 * of pages the values reached: an add is an index and an increment, no hashing, no allocation
 * once its page exists (the analysis adds tens of values per record).
 */
export class LogHistogram {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  /** The page of pages[0] (bucket b is in page floor(b / PAGE)). */
  private lo = 0;
  private pages: (Float64Array | undefined)[] = [];
  private sorted?: [number, number][];

  add(v: number, n = 1): void {
    this.addBucket(bucketOf(v), n);
    this.count += n;
    this.sum += v * n;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** n more in bucket b (count, sum, min and max are the caller's). */
  private addBucket(b: number, n: number): void {
    const p = b >> SUB_BITS;
    let i = p - this.lo;
    if (i < 0 || i >= this.pages.length) i = this.reach(p);
    const page = (this.pages[i] ??= smallFloat64Array(PAGE));
    page[b & (PAGE - 1)]! += n;
    this.sorted = undefined;
  }

  /** Grows the page range to hold page p; returns its index. */
  private reach(p: number): number {
    if (!this.pages.length) {
      this.lo = p;
      this.pages.push(undefined);
      return 0;
    }
    if (p < this.lo) {
      this.pages = [...new Array<undefined>(this.lo - p), ...this.pages];
      this.lo = p;
      return 0;
    }
    while (this.pages.length <= p - this.lo) this.pages.push(undefined);
    return p - this.lo;
  }

  /** Each non-empty bucket and its count, in ascending order. */
  *buckets(): Generator<[bucket: number, count: number]> {
    for (let i = 0; i < this.pages.length; i++) {
      const page = this.pages[i];
      if (!page) continue;
      const base = (this.lo + i) * PAGE;
      for (let k = 0; k < PAGE; k++) if (page[k]) yield [base + k, page[k]!];
    }
  }

  /** The count of values in bucket b. */
  countIn(b: number): number {
    const i = (b >> SUB_BITS) - this.lo;
    return this.pages[i]?.[b & (PAGE - 1)] ?? 0;
  }

  merge(o: LogHistogram): void {
    for (let i = 0; i < o.pages.length; i++) {
      const page = o.pages[i];
      if (!page) continue;
      const base = (o.lo + i) * PAGE;
      for (let k = 0; k < PAGE; k++) if (page[k]) this.addBucket(base + k, page[k]!);
    }
    this.count += o.count;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
  }

  /** Buckets in ascending order of value (kept until the next change). */
  sortedBuckets(): [bucket: number, count: number][] {
    return (this.sorted ??= [...this.buckets()]);
  }

  /** The nearest-rank q-quantile, within RELATIVE_ERROR (exact at q = 0 and q = 1). */
  quantile(q: number): number {
    return this.quantiles([q])[0]!;
  }

  quantiles(qs: readonly number[]): number[] {
    if (!this.count) return qs.map(() => NaN);
    const ranks = qs.map((q) => quantileIndex(this.count, q) + 1);
    const buckets = this.bucketsOfRanks(ranks);
    return ranks.map((rank, i) => {
      if (rank >= this.count) return this.max;
      if (rank <= 1) return this.min;
      const b = buckets[i]!;
      return b === Infinity ? this.max : Math.min(this.max, Math.max(this.min, bucketMid(b)));
    });
  }

  /** The bucket holding the value of rank `rank` (1-based; Infinity beyond the count). */
  private bucketOfRank(rank: number): number {
    return this.bucketsOfRanks([rank])[0]!;
  }

  /** bucketOfRank of each rank, in one pass over the buckets (a report asks for several quantiles of every sketch). */
  private bucketsOfRanks(ranks: readonly number[]): number[] {
    const order = ranks.map((_, i) => i).sort((a, b) => ranks[a]! - ranks[b]!);
    const out = ranks.map(() => Infinity);
    let j = 0, seen = 0;
    for (let i = 0; i < this.pages.length && j < order.length; i++) {
      const page = this.pages[i];
      if (!page) continue;
      for (let k = 0; k < PAGE; k++) {
        if (!page[k]) continue;
        seen += page[k]!;
        while (j < order.length && seen >= ranks[order[j]!]!) out[order[j++]!] = (this.lo + i) * PAGE + k;
        if (j === order.length) break;
      }
    }
    return out;
  }

  /** A compact binary form (bucket and count as varints, then sum, min, max), for storage. */
  toBuffer(): Buffer {
    const w = new VarWriter();
    let used = 0;
    for (const page of this.pages) if (page) for (let k = 0; k < PAGE; k++) if (page[k]) used++;
    w.uint(used);
    for (let i = 0; i < this.pages.length; i++) {
      const page = this.pages[i];
      if (!page) continue;
      for (let k = 0; k < PAGE; k++)
        if (page[k]) {
          w.int((this.lo + i) * PAGE + k);
          w.uint(page[k]!);
        }
    }
    w.double(this.sum);
    w.double(this.min);
    w.double(this.max);
    return w.done();
  }

  static fromBuffer(buf: Buffer): LogHistogram {
    const r = new VarReader(buf);
    const h = new LogHistogram();
    const n = r.uint();
    for (let i = 0; i < n; i++) {
      const b = r.int();
      const c = r.uint();
      h.addBucket(b, c);
      h.count += c;
    }
    h.sum = r.double();
    h.min = r.double();
    h.max = r.double();
    return h;
  }

  /** The lowest bucket holding the nearest-rank q-quantile. */
  bucketOfQuantile(q: number): number {
    return this.bucketOfRank(quantileIndex(this.count, q) + 1);
  }
}

/**
 * Histograms of log2 buckets (the kernel's: bucket b counts values in [2^b, 2^(b+1)), b = 0 also
 * holding 0): the nearest-rank quantile as its bucket's bounds, so a report can say "between 4
 * and 8 µs" rather than invent a value inside.
 */
export function log2Quantile(buckets: ArrayLike<number>, q: number): { low: number; high: number } | undefined {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i]!;
  if (!total) return undefined;
  const rank = quantileIndex(total, q) + 1;
  let seen = 0;
  for (let b = 0; b < buckets.length; b++) {
    seen += buckets[b]!;
    if (seen >= rank) return { low: b === 0 ? 0 : 2 ** b, high: 2 ** (b + 1) };
  }
  return undefined;
}

/**
 * Varint writer (LEB128; signed numbers zigzag-encoded) and doubles, for compact stored sketches.
 * It writes into one scratch buffer that every writer shares (a window's statistics encode
 * thousands of sketches a step: a buffer allocated, grown and copied for each was most of the
 * encoding's time), so a writer is used start to done() before the next one starts.
 */
export class VarWriter {
  private static scratch = Buffer.allocUnsafeSlow(1 << 16);
  private static inUse = false;
  private buf: Buffer;
  private n = 0;

  constructor() {
    // a second writer while one is open (not the usual case) writes into a buffer of its own
    this.buf = VarWriter.inUse ? Buffer.allocUnsafe(256) : VarWriter.scratch;
    VarWriter.inUse = true;
  }

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(b, 0, 0, this.n);
    if (this.buf === VarWriter.scratch) VarWriter.scratch = b;
    this.buf = b;
  }

  uint(v: number): void {
    this.room(10);
    const buf = this.buf;
    let n = this.n;
    // below 2^31 in integer operations (nearly every count and bucket), beyond in doubles
    while (v >= 0x80000000) {
      buf[n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    while (v >= 0x80) {
      buf[n++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[n++] = v;
    this.n = n;
  }

  int(v: number): void {
    this.uint(v < 0 ? -2 * v - 1 : 2 * v);
  }

  double(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.n);
    this.n += 8;
  }

  /** The bytes written, in a buffer of their own (the scratch is free for the next writer). */
  done(): Buffer {
    const out = Buffer.allocUnsafe(this.n);
    this.buf.copy(out, 0, 0, this.n);
    if (this.buf === VarWriter.scratch) VarWriter.inUse = false;
    return out;
  }
}

export class VarReader {
  private n = 0;
  constructor(private readonly buf: Buffer) {}

  uint(): number {
    const buf = this.buf;
    let n = this.n;
    if (n >= buf.length) throw new RangeError('stored sketch: truncated');
    let b = buf[n++]!;
    let v = b & 0x7f, mul = 0x80;
    while (b & 0x80) {
      if (n >= buf.length) throw new RangeError('stored sketch: truncated');
      b = buf[n++]!;
      v += (b & 0x7f) * mul;
      mul *= 0x80;
    }
    this.n = n;
    return v;
  }

  int(): number {
    const u = this.uint();
    return u % 2 ? -(u + 1) / 2 : u / 2;
  }

  double(): number {
    if (this.n + 8 > this.buf.length) throw new RangeError('stored sketch: truncated');
    const v = this.buf.readDoubleLE(this.n);
    this.n += 8;
    return v;
  }

  get done(): boolean {
    return this.n >= this.buf.length;
  }
}
