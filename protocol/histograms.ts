/**
 * Histogram snapshots between observers and the ingest ("hist1"): one line per non-empty log2
 * bucket of each in-kernel adjacent-layer histogram, cumulative since the observer started, in
 * the column order of the layer_histograms table after its server_id and taken_at.
 */
import type { Direction, Layer } from './layers.js';

export const HIST_FORMAT = 'hist1';
export const HIST_COLUMNS = ['port', 'dir', 'from_layer', 'to_layer', 'bucket', 'count'] as const;

export interface PairHistogram {
  port: number;
  dir: Direction;
  from: Layer;
  to: Layer;
  /** Counts per log2 bucket: buckets[b] counts delays in [2^b, 2^(b+1)) ns (b = 0 also holds 0). */
  buckets: bigint[];
}

export function encodeHistograms(hists: PairHistogram[]): string {
  let out = '';
  for (const h of hists) h.buckets.forEach((c, b) => c > 0n && (out += `${h.port}\t${h.dir}\t${h.from}\t${h.to}\t${b}\t${c}\n`));
  return out;
}

/** A snapshot's rows as encodeHistograms writes them (port, dir, two layers, bucket, count), and nothing else. */
const HIST_ROW = /^\d{1,5}\t(?:tx|rx)\t(?:sock|tcp|ip|dev)\t(?:sock|tcp|ip|dev)\t\d{1,2}\t\d{1,20}$/;
/** The largest rows body of one snapshot (a histogram per port, direction and layer pair, 64 buckets each). */
export const MAX_HIST_BODY = 1 << 20;

/**
 * Whether a snapshot's rows are exactly what an observer writes: ASCII lines of HIST_ROW, each
 * ending in a newline, within MAX_HIST_BODY. Anything else (a character that LOAD DATA's latin1
 * would turn into a line break, an extra column, a missing newline) is refused whole.
 */
export function validHistogramRows(body: string): boolean {
  if (!body.length || body.length > MAX_HIST_BODY || !body.endsWith('\n')) return false;
  const lines = body.slice(0, -1).split('\n');
  return lines.every((l) => HIST_ROW.test(l));
}
