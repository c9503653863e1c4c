/**
 * The ingest's background job: `reclaim`, every 5 s, takes over record batches that a dead
 * consumer left pending for more than 15 s (a live one acknowledges within seconds). Every
 * worker process also consumes the streams continuously (Ingest.start).
 */
import type { FeatureJobs } from '../lib/jobs.js';
import { KEEP_JOBS } from '../lib/jobs.js';
import { QUEUES } from '../protocol/redis.js';
import type { Ingest } from './ingest.js';

const RECLAIM_IDLE_MS = 15_000;
const RECLAIM_EVERY_MS = 5_000;

/** `ingest` gives this process's consumer when a job runs (schedules need none). */
export function ingestJobs(ingest: () => Ingest): FeatureJobs {
  return {
    queue: QUEUES.ingest,
    concurrency: 1,
    run: () => ingest().reclaim(RECLAIM_IDLE_MS),
    schedules: [{ id: 'reclaim', everyMs: RECLAIM_EVERY_MS, name: 'reclaim', opts: KEEP_JOBS }],
  };
}
