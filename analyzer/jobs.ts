/**
 * The analysis as a BullMQ job: `layer-delays` every 10 s recomputes the per-layer delays of each
 * server over the last minute (analyzer/layers.ts); retried with backoff when MySQL is away.
 */
import type { Pool } from '../db/pool.js';
import { KEEP_JOBS, RETRY, type FeatureJobs } from '../lib/jobs.js';
import { QUEUES } from '../protocol/redis.js';
import { analyzeLayerDelays, LAYER_ANALYSIS } from './layers.js';

/** Per-layer delay windows: 10 s of each server's clock, the last minute recomputed every 10 s. */
const ANALYSIS_EVERY_MS = 10_000;
const LAYER_WINDOW_NS = 10_000_000_000n;
const LAYER_LOOKBACK_NS = 60_000_000_000n;

export function analysisJobs(pool: Pool): FeatureJobs {
  return {
    queue: QUEUES.analysis,
    concurrency: 1,
    run: async () => (await analyzeLayerDelays(pool, { windowNs: LAYER_WINDOW_NS, lookbackNs: LAYER_LOOKBACK_NS })).length,
    schedules: [{ id: LAYER_ANALYSIS, everyMs: ANALYSIS_EVERY_MS, name: LAYER_ANALYSIS, opts: { ...KEEP_JOBS, ...RETRY } }],
  };
}
