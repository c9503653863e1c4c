/**
 * The sampling rule, as latency.bpf.c applies it: byte k*size-1 of a TCP stream (k >= 1) is a
 * sample, counted from the stream's first byte. Both ends of a connection pick the same bytes
 * without talking, and a stream of N bytes holds floor(N / size) of them. Offsets are modulo
 * 2^32, like TCP sequence numbers.
 */

/** Stream offsets (mod 2^32) of the sample bytes in [startOffset, startOffset + length), at most `max`. */
export function sampleOffsets(startOffset: number, length: number, size: number, max: number): number[] {
  if (size <= 0 || length <= 0) return [];
  const out: number[] = [];
  let o = Math.floor(startOffset / size) * size + size - 1; // first sample offset >= startOffset
  for (; o < startOffset + length && out.length < max; o += size) out.push(o >>> 0);
  return out;
}

/** How many samples the rule predicts for a stream of `bytes` bytes. */
export function predictedSamples(bytes: number, size: number): number {
  return size > 0 ? Math.floor(bytes / size) : 0;
}

/** Distance from `from` to `to` in sequence space (mod 2^32). */
export function seqDiff(to: number, from: number): number {
  return (to - from) >>> 0;
}

/**
 * The scaled histograms' rule (latency.bpf.c, hist_weight): what a segment at stream offset
 * `offset` of `length` bytes adds to its bucket, in segments: 0 when it holds no histogram byte
 * (offset o with (o + 1) % bytes == 0), else bytes / length, at least 1. A segment shorter than
 * `bytes` is picked with probability length / bytes, so the weights sum to the segments' count
 * in expectation.
 */
export function scaledWeight(offset: number, length: number, bytes: number): number {
  if (Math.floor((offset + length) / bytes) === Math.floor(offset / bytes)) return 0;
  return length >= bytes ? 1 : bytes / length;
}

/**
 * The documented error of a scaled histogram over `n` segments picked one per `bytes`, where
 * `length` is the harmonic mean of the segments' lengths (each capped at `bytes`; the small
 * ones dominate): the relative standard error of a count, sqrt((bytes/length - 1) / n), and
 * the standard error of a share of the segments (a point of the cumulative distribution, a
 * quantile's rank), at most sqrt(0.25 * (bytes/length) / n). Four of them bound the error of
 * nearly every histogram (the unit test checks at least 99% of trials).
 */
export function scaledHistogramError(n: number, length: number, bytes: number): { count: number; share: number } {
  const k = Math.max(1, bytes / Math.min(length, bytes));
  return { count: Math.sqrt((k - 1) / n), share: Math.sqrt((0.25 * k) / n) };
}
