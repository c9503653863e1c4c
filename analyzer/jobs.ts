/**
 * The analysis as a BullMQ job: `analyze` every analysis_info interval joins what the ingest
 * added since the last run (analyzer/analyze.ts); retried with backoff when MySQL is away, and
 * serialized by a MySQL lock, so several workers never analyze the same batch twice.
 */
import type { Pool } from '../db/pool.js';
import type { AnalysisInfo, SamplingInfo } from '../conf/schema.js';
import { KEEP_JOBS, RETRY, type FeatureJobs } from '../lib/jobs.js';
import { QUEUES } from '../protocol/redis.js';
import { analyze, type AnalyzeOptions } from './analyze.js';

export const ANALYSIS_SCHEDULER = 'analyze';

/** The analyzer's options from a deployment's conf. */
export function analysisOptions(a: AnalysisInfo, s: Pick<SamplingInfo, 'filter_retrans' | 'size'>): AnalyzeOptions {
  return { windowNs: Math.round(a.window * 1e9), graceMs: a.grace * 1000, spikeFactor: a.spike_factor, filterRetrans: s.filter_retrans, sampleSize: s.size };
}

export function analysisJobs(pool: Pool, a: AnalysisInfo, s: SamplingInfo): FeatureJobs {
  return {
    queue: QUEUES.analysis,
    concurrency: 1,
    run: () => analyze(pool, analysisOptions(a, s)),
    schedules: [{ id: ANALYSIS_SCHEDULER, everyMs: Math.round(a.interval * 1000), name: 'analyze', opts: { ...KEEP_JOBS, ...RETRY } }],
  };
}
