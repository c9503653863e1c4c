/**
 * Time-sync rounds as BullMQ jobs: a job scheduler makes one `round` job every time_interval;
 * whichever manager worker takes it probes every server, estimates each offset (with the drift
 * of the server's previous rounds, read back from MySQL, so workers keep no state) and stores
 * the round. A failed round is retried with backoff; rows are keyed by (server, round), so a
 * retry never duplicates one.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import type { TimeSync } from '../conf/schema.js';
import type { Prober } from './prober.js';
import { estimateRound, fitClock } from './estimator.js';
import { recentRounds, storeRound } from './store.js';

export const TIMESYNC_QUEUE = 'latscope-timesync';
const SCHEDULER_ID = 'timesync-rounds';
const ROUND_COUNTER = 'latscope:timesync:round';

export interface TimeSyncTarget {
  name: string;
  address: string;
}

export interface RoundSummary {
  round: number;
  stored: { server: string; offsetNs: string; boundNs: number; driftPpb: number; samples: number }[];
  unreachable: string[];
}

/** Creates or updates the repeatable round job (idempotent: one scheduler per deployment). */
export async function scheduleTimeSync(connection: ConnectionOptions, conf: Pick<TimeSync, 'time_interval'>): Promise<void> {
  const q = new Queue(TIMESYNC_QUEUE, { connection });
  try {
    await q.upsertJobScheduler(
      SCHEDULER_ID,
      { every: Math.round(conf.time_interval * 1000) },
      { name: 'round', data: {}, opts: { attempts: 3, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: 1000, removeOnFail: 1000 } },
    );
  } finally {
    await q.close();
  }
}

export async function unscheduleTimeSync(connection: ConnectionOptions): Promise<void> {
  const q = new Queue(TIMESYNC_QUEUE, { connection });
  try {
    await q.removeJobScheduler(SCHEDULER_ID);
  } finally {
    await q.close();
  }
}

/** One round over all targets; stores what it measured. */
export async function runRound(redis: Redis, pool: Pool, prober: Prober, targets: TimeSyncTarget[], conf: TimeSync): Promise<RoundSummary> {
  const round = await redis.incr(ROUND_COUNTER);
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
    await storeRound(pool, t.name, { ...est, driftPpb: fit.driftPpb, driftBoundPpb: fit.driftBoundPpb, lost: res.lost.get(t.address)! });
    summary.stored.push({ server: t.name, offsetNs: est.offsetNs.toString(), boundNs: est.boundNs, driftPpb: fit.driftPpb, samples: samples.length });
  }
  return summary;
}

/** A manager worker for time-sync rounds; several may share one Redis (one takes each round). */
export function startTimeSyncWorker(o: { connection: ConnectionOptions; pool: Pool; prober: Prober; targets: TimeSyncTarget[]; conf: TimeSync }): Worker {
  const redis = new Redis({ ...(o.connection as object), maxRetriesPerRequest: null });
  const worker = new Worker(TIMESYNC_QUEUE, async (_job: Job) => runRound(redis, o.pool, o.prober, o.targets, o.conf), {
    connection: o.connection,
    concurrency: 1, // one prober, one round at a time
  });
  worker.on('closed', () => redis.disconnect());
  return worker;
}
