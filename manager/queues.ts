/**
 * The manager's one place for BullMQ: a worker per feature queue (each feature exports its jobs
 * as FeatureJobs), the repeatable schedules, and what happens when a job fails. Every `failed`
 * job and every worker `error` is logged once per distinct message and counted, in this
 * process (counters) and in Redis (latscope:jobs, which `manager status` shows), so a failing
 * analysis or time-sync round is never invisible.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOBS_KEY, QUEUES, QUEUE_PREFIX } from '../protocol/redis.js';
import type { FeatureJobs } from '../lib/jobs.js';

export interface JobCounters {
  completed: Record<string, number>;
  failed: Record<string, number>;
  errors: Record<string, number>;
}

export class JobRunner {
  private readonly workers: Worker[] = [];
  private readonly features: FeatureJobs[] = [];
  private readonly lastMessage = new Map<string, string>();
  readonly counters: JobCounters = { completed: {}, failed: {}, errors: {} };

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly redis: Redis,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts a worker for a feature's queue. */
  start(f: FeatureJobs): void {
    const w = new Worker(f.queue, (job: Job) => f.run(job), { connection: this.connection, concurrency: f.concurrency, prefix: QUEUE_PREFIX });
    w.on('completed', (job) => {
      this.counters.completed[`${f.queue}:${job.name}`] = (this.counters.completed[`${f.queue}:${job.name}`] ?? 0) + 1;
    });
    w.on('failed', (job, err) => {
      const key = `${f.queue}:${job?.name ?? '?'}`;
      this.counters.failed[key] = (this.counters.failed[key] ?? 0) + 1;
      void this.redis.hincrby(JOBS_KEY, `failed:${key}`, 1).catch(() => {});
      const attempts = job?.opts.attempts ?? 1;
      const final = (job?.attemptsMade ?? 0) >= attempts;
      this.once(`failed:${key}`, `job ${job?.name ?? '?'} (${f.queue}) failed${final ? '' : `, attempt ${job?.attemptsMade} of ${attempts}, will retry`}: ${err.message}`);
    });
    w.on('error', (err) => {
      // a Redis outage: the worker reconnects by itself; said once, counted always
      this.counters.errors[f.queue] = (this.counters.errors[f.queue] ?? 0) + 1;
      void this.redis.hincrby(JOBS_KEY, `error:${f.queue}`, 1).catch(() => {});
      this.once(`error:${f.queue}`, `worker of ${f.queue}: ${err.message}`);
    });
    this.workers.push(w);
    this.features.push(f);
  }

  /** Logs a message unless the same key said the same thing last time. */
  private once(key: string, message: string): void {
    if (this.lastMessage.get(key) === message) return;
    this.lastMessage.set(key, message);
    this.log(message);
  }

  /** Creates or updates the repeatable schedules of these features (idempotent; no worker needed). */
  async schedule(features: FeatureJobs[]): Promise<void> {
    for (const f of features) {
      if (!f.schedules?.length) continue;
      const q = new Queue(f.queue, { connection: this.connection, prefix: QUEUE_PREFIX });
      try {
        for (const s of f.schedules) await q.upsertJobScheduler(s.id, { every: s.everyMs }, { name: s.name, opts: s.opts });
      } finally {
        await q.close();
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    for (const f of this.features) await f.close?.();
  }
}

/** Removes every job scheduler of every latscope queue (teardown: nothing repeats afterwards). */
export async function removeSchedules(connection: ConnectionOptions): Promise<string[]> {
  const removed: string[] = [];
  // and those under BullMQ's default prefix, from releases before QUEUE_PREFIX
  for (const prefix of [QUEUE_PREFIX, 'bull'])
    for (const name of Object.values(QUEUES)) {
      const q = new Queue(name, { connection, prefix });
      try {
        for (const s of await q.getJobSchedulers()) if (s.key && (await q.removeJobScheduler(s.key))) removed.push(`${name}/${s.key}`);
      } finally {
        await q.close();
      }
    }
  return removed;
}

/** Failure counts kept in Redis, for `manager status`. */
export async function jobFailures(redis: Redis): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await redis.hgetall(JOBS_KEY)).map(([k, v]) => [k, Number(v)]));
}
