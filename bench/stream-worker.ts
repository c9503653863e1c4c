/**
 * A stream-stage worker of bench/analyze in a process of its own: the scale-out the stage is
 * built for, each shard of the records streams owned by one worker (as several managers would
 * share them). Usage: LATSCOPE_WORKER_ARGS='{"redis":{...},"db":{...},"stream":"...","shards":N,"mine":[k,...],"options":{...}}' node stream-worker.js
 * (in the environment, not argv: the passwords in it would show in ps to every user).
 * It takes the leases of its shards, then answers commands on stdin, one per line, with a JSON
 * line on stdout: "drain" (analyze what its shards hold now) and "finish" (and settle what still
 * waits) answer {records, paths, steps, peakRssMb}; "warmup" analyzes the warm-up shards (of
 * `warmupStream`, into the same database) to the end with stages of their own, thrown away after (a
 * stage is a service that runs for days: its code is compiled and its heap grown once, not per
 * record), and answers the same; "stop" gives the leases back and exits.
 */
import { createInterface } from 'node:readline';
import { PerformanceObserver } from 'node:perf_hooks';
import { Redis, type RedisOptions } from 'ioredis';
import { openPool, type DbInfo } from '../db/pool.js';
import { StreamStage, type StreamStageOptions } from '../analyzer/stream/stage.js';
import { recordStream } from '../protocol/redis.js';

interface WorkerArgs {
  redis: RedisOptions;
  db: DbInfo;
  stream: string;
  shards: number;
  mine: number[];
  options: Omit<StreamStageOptions, 'stream' | 'consumer'>;
  /** Where the "warmup" command's records are: a stream of the same shards. */
  warmupStream?: string;
}

const a = JSON.parse(process.env.LATSCOPE_WORKER_ARGS!) as WorkerArgs;
const redis = new Redis(a.redis);
const pool = openPool(a.db);
const stagesOf = (stream: string) => a.mine.map((k) => new StreamStage(redis, pool, { ...a.options, stream: recordStream(k, a.shards, stream), consumer: `bench-${process.pid}`, log: (l) => process.stderr.write(`${l}\n`), stepLog: process.env.LATSCOPE_BENCH_VERBOSE ? (l) => process.stderr.write(`${l}\n`) : undefined }));
const stages = stagesOf(a.stream);

/** Drains (or finishes) each stage; what they analyzed. */
async function analyze(ss: StreamStage[], finish: boolean): Promise<{ records: number; paths: number; steps: number }> {
  let records = 0;
  for (const s of ss) records += finish ? await s.finish() : await s.drain();
  return { records, paths: ss.reduce((n, s) => n + s.counters.paths, 0), steps: ss.reduce((n, s) => n + s.counters.steps, 0) };
}
let peakRss = 0;
const sample = () => {
  const m = process.memoryUsage();
  // a new peak, and what it holds (LATSCOPE_BENCH_VERBOSE)
  if (m.rss > peakRss && process.env.LATSCOPE_BENCH_VERBOSE) process.stderr.write(`bench/stream-worker ${process.pid}: resident ${m.rss >> 20} MB: JavaScript heap ${m.heapUsed >> 20} of ${m.heapTotal >> 20} MB, array buffers ${m.arrayBuffers >> 20} MB\n`);
  peakRss = Math.max(peakRss, m.rss);
};
setInterval(sample, 100).unref();
// garbage collection's pauses on this thread (ms), for the verbose log (observed only for it)
let gcMs = 0, gcs = 0;
if (process.env.LATSCOPE_BENCH_VERBOSE)
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) (gcMs += e.duration), gcs++;
  }).observe({ entryTypes: ['gc'] });

async function stop(code: number): Promise<never> {
  for (const s of stages) await s.release().catch(() => {});
  redis.disconnect();
  await pool.end().catch(() => {});
  process.exit(code);
}
process.once('SIGTERM', () => void stop(143));

async function main(): Promise<void> {
  for (const s of stages) if (!(await s.acquire(10))) throw new Error(`stream ${s.lockName}: held by another worker`);
  process.stdout.write('ready\n');
  for await (const cmd of createInterface({ input: process.stdin })) {
    if (cmd === 'stop') break;
    const cpu0 = process.cpuUsage(), gc0 = gcMs, gcs0 = gcs, faults0 = process.resourceUsage().minorPageFault;
    let done: { records: number; paths: number; steps: number };
    if (cmd === 'warmup') {
      if (!a.warmupStream) throw new Error('"warmup" without warm-up shards in LATSCOPE_WORKER_ARGS');
      const warm = stagesOf(a.warmupStream);
      try {
        for (const s of warm) if (!(await s.acquire(10))) throw new Error(`stream ${s.lockName}: held by another worker`);
        done = await analyze(warm, true);
      } finally {
        for (const s of warm) await s.release().catch(() => {});
      }
      // (their garbage is left to the collector: a full collection here would also shrink the heap
      // that the timed records then grow again, the first million's cost up by a sixth)
    } else done = await analyze(stages, cmd === 'finish');
    const { records, paths, steps } = done;
    sample();
    const cpu = process.cpuUsage(cpu0);
    if (process.env.LATSCOPE_BENCH_VERBOSE) process.stderr.write(`bench/stream-worker ${process.pid}: ${cmd}: ${records} records, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (${(cpu.system / 1000).toFixed(0)} in the kernel), ${gcs - gcs0} collections pausing ${(gcMs - gc0).toFixed(0)} ms, ${process.resourceUsage().minorPageFault - faults0} page faults\n`);
    process.stdout.write(`${JSON.stringify({ records, paths, steps, peakRssMb: Math.round(peakRss / 1048576), cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000 })}\n`);
  }
  await stop(0);
}

main().catch((e) => {
  process.stderr.write(`bench/stream-worker: ${(e as Error).message}\n`);
  void stop(1);
});
