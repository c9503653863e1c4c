/**
 * The analysis results as Prometheus gauges (the manager's /metrics): per server pair, the newest
 * window's delay percentiles and clock faults; per server, the newest clock offset and its bound;
 * unmatched samples by reason over the last hour of windows; per direction between servers, the
 * probe mesh's one-way delay, its bound and loss over its last minute of rounds. Read from MySQL through the primary
 * keys only (the newest window first, then the hour before it), so a scrape costs the same
 * however long the history.
 */
import type { Pool } from '../db/pool.js';
import * as store from './store.js';
import { loadMeshReport, type MeshDirection } from './mesh.js';

export interface PairGauge {
  src: string;
  dst: string;
  segment: string;
  p50Ns: number;
  p99Ns: number;
  samples: number;
  faults: number;
  boundNs: number;
}

export interface ResultGauges {
  pairs: PairGauge[];
  clocks: { server: string; offsetNs: number; boundNs: number }[];
  unmatched: { reason: string; samples: number }[];
  /** The probe mesh's directions over its last MESH_GAUGE_MS of rounds. */
  mesh: MeshDirection[];
}

/** The probe mesh's gauges cover its rounds of the last minute (a few rounds, read through mesh_edges' time key). */
export const MESH_GAUGE_MS = 60_000;

/** Segments exported per pair: the totals and the wire (the rest are in MySQL and the graphs). */
export const GAUGE_SEGMENTS = ['one_way', 'end_to_end', 'wire'] as const;
const HOUR_NS = 3_600_000_000_000;

export async function resultGauges(pool: Pool): Promise<ResultGauges> {
  const newest = await store.newestWindow(pool);
  const since = newest === null ? null : String(BigInt(newest) - BigInt(HOUR_NS));
  let pairs: PairGauge[] = [];
  let unmatched: ResultGauges['unmatched'] = [];
  if (since !== null) {
    // each pair's newest window within the hour
    pairs = (await store.newestPairStats(pool, since, GAUGE_SEGMENTS)).map((r) => ({ src: r.src, dst: r.dst, segment: r.segment, p50Ns: Number(r.p50_ns), p99Ns: Number(r.p99_ns), samples: Number(r.samples), faults: Number(r.faults), boundNs: Number(r.bound_ns) }));
    unmatched = (await store.unmatchedSince(pool, since)).map((r) => ({ reason: r.reason, samples: Number(r.n) }));
  }
  const clocks = (await store.latestClocks(pool)).map((r) => ({ server: r.server, offsetNs: Number(r.offset_ns), boundNs: Number(r.bound_ns) }));
  // the settling is the mesh job's (analyzer/mesh.ts meshJobs): a scrape only reads
  const mesh = (await loadMeshReport(pool, { sinceUnixMs: Date.now() - MESH_GAUGE_MS, settle: false })).directions;
  return { pairs, clocks, unmatched, mesh };
}
