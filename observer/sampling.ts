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
