/**
 * The shape in which a feature hands its background work to the manager: the jobs of one BullMQ
 * queue and the schedules that create them. The manager (manager/queues.ts) runs a worker per
 * queue, schedules the repeatable jobs, and logs and counts every failure; features never wire
 * queues themselves.
 */
import type { Job, JobsOptions } from 'bullmq';

export interface FeatureJobs {
  /** Queue name (protocol/redis.ts QUEUES). */
  queue: string;
  /** Jobs of this queue run at once in one worker process. */
  concurrency: number;
  /** Runs one job (dispatching on job.name); what it returns is kept as the job's result. */
  run(job: Job): Promise<unknown>;
  /** Repeatable jobs: one job scheduler each, created or updated idempotently. */
  schedules?: JobSchedule[];
  /** Releases what run() holds, when the worker closes. */
  close?(): Promise<void>;
}

export interface JobSchedule {
  /** Scheduler id, unique in its queue. */
  id: string;
  /** Milliseconds between jobs. */
  everyMs: number;
  /** Name of the jobs it makes. */
  name: string;
  opts?: JobsOptions;
}

/** Completed and failed jobs BullMQ keeps per queue (for `manager status` and debugging). */
export const KEEP_JOBS = { removeOnComplete: 100, removeOnFail: 100 } as const;
/** Retries of a job that may fail for a passing reason (a database restart): 3 attempts, 1 s, 2 s. */
export const RETRY = { attempts: 3, backoff: { type: 'exponential', delay: 1000 } } as const;
