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
