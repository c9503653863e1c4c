/**
 * Time-sync rounds as BullMQ jobs: a job scheduler makes one `round` job every time_interval;
 * whichever manager worker takes it probes every server, estimates each offset (with the drift
 * of the server's previous rounds, read back from MySQL, so workers keep no state) and stores
 * the round. A failed round is retried with backoff; rows are keyed by (server, round), so a
 * retry never duplicates one.
 */
import type { Redis } from 'ioredis';
import type { Pool } from '../db/pool.js';
import type { TimeSync } from '../conf/schema.js';
import { QUEUES, TIMESYNC_ROUND_KEY } from '../protocol/redis.js';
import { KEEP_JOBS, type FeatureJobs } from '../lib/jobs.js';
import { unixMsAt, type Prober } from './prober.js';
import { estimateRound, fitClock } from './estimator.js';
import { recentRounds, storeRound } from './store.js';

export const TIMESYNC_SCHEDULER = 'timesync-rounds';

export interface TimeSyncTarget {
  name: string;
  address: string;
}

export interface RoundSummary {
  round: number;
  stored: { server: string; offsetNs: string; boundNs: number; driftPpb: number; samples: number }[];
  unreachable: string[];
}

/** One round over all targets; stores what it measured. */
export async function runRound(redis: Redis, pool: Pool, prober: Prober, targets: TimeSyncTarget[], conf: TimeSync): Promise<RoundSummary> {
  const round = await redis.incr(TIMESYNC_ROUND_KEY);
  const res = await prober.round(targets.map((t) => t.address), conf.probes, round, conf.timeout_ms);
  const summary: RoundSummary = { round, stored: [], unreachable: [] };
  for (const t of targets) {
    const samples = res.samples.get(t.address)!;
    if (samples.length === 0) {
      summary.unreachable.push(t.name);
      continue;
    }
    const prev = await recentRounds(pool, t.name, conf.window - 1);
    const prevFit = prev.length >= 2 ? fitClock(prev) : undefined;
    const est = estimateRound(samples, { keepFraction: conf.keep_fraction, driftPpb: prevFit?.driftPpb, driftBoundPpb: prevFit?.driftBoundPpb });
    const fit = fitClock([...prev, est]);
    await storeRound(pool, t.name, { ...est, driftPpb: fit.driftPpb, driftBoundPpb: fit.driftBoundPpb, lost: res.lost.get(t.address)!, atUnixMs: unixMsAt(est.atNs) });
    summary.stored.push({ server: t.name, offsetNs: est.offsetNs.toString(), boundNs: est.boundNs, driftPpb: fit.driftPpb, samples: samples.length });
  }
  return summary;
}

/**
 * Rounds as jobs: one prober, so one round at a time per worker; several workers may share the
 * queue. `prober` gives this process's prober when a job runs (schedules need none).
 */
export function timeSyncJobs(o: { redis: Redis; pool: Pool; prober: () => Prober; targets: TimeSyncTarget[]; conf: TimeSync }): FeatureJobs {
  return {
    queue: QUEUES.timesync,
    concurrency: 1,
    run: () => runRound(o.redis, o.pool, o.prober(), o.targets, o.conf),
    schedules: [
      {
        id: TIMESYNC_SCHEDULER,
        everyMs: Math.round(o.conf.time_interval * 1000),
        name: 'round',
        opts: { attempts: 3, backoff: { type: 'exponential', delay: 500 }, ...KEEP_JOBS },
      },
    ],
  };
}
