/**
 * `latscope manager [start] --conf DIR`: prepare MySQL and Redis, provision every server, keep
 * the deployment running (health, ingest, time sync) until Ctrl-C or `manager stop`.
 * `manager worker` shares the work from another process; `manager status` and `manager stop`
 * report on and tear down a deployment from anywhere that reaches its Redis and servers.
 */
import { confOption, durationMs, numberIn } from './options.js';
import { watching } from './watch.js';
import { forTerminal } from '../lib/terminal.js';
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { loadDeployment, type Deployment } from '../conf/deployment.js';
import { Manager } from '../manager/manager.js';
import { connectRedis, redisConnection } from '../manager/redis.js';
import { type ServerStatus } from '../manager/state.js';
import { deploymentStatus, statusLines } from '../manager/status.js';
import { stopDeployment } from '../manager/teardown.js';
import { CONTROL_CHANNEL, SERVERS_KEY } from '../protocol/redis.js';

interface Opts {
  conf: string;
  acceptNewHostKeys: boolean;
  concurrency: number;
}

function load(o: Opts): Deployment {
  const d = loadDeployment(o.conf);
  for (const w of d.warnings) console.error(`warning: ${w}`);
  return d;
}

/** Resolves on SIGINT, SIGTERM or a `manager stop` message. */
async function untilStopped(d: Deployment): Promise<string> {
  const sub = new Redis({ ...redisConnection(d) });
  sub.on('error', () => {});
  try {
    return await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
      void sub.subscribe(CONTROL_CHANNEL).then(() => sub.on('message', () => resolve('manager stop')));
    });
  } finally {
    sub.disconnect();
  }
}

const withConf = (c: Command) =>
  c
    .addOption(confOption('connect_info.yaml, redis_info.yaml, database_info.yaml, …'))
    .option('--accept-new-host-keys', 'record the host keys of servers not yet in known_hosts (a changed key is always refused)', false)
    .option('--concurrency <n>', 'servers this process provisions at once', numberIn('--concurrency', 1, 1024), 16);

export function managerCommand(): Command {
  const m = new Command('manager').description('provision observers on every server over SSH and collect their records into MySQL');

  withConf(m.command('start', { isDefault: true }).description('prepare MySQL and Redis, provision every server, run until Ctrl-C or `manager stop` (default)'))
    .option('--no-wait', 'exit once every server is provisioned (observers keep running)')
    .action(async (o: Opts & { wait: boolean }) => {
      const d = load(o);
      const mgr = await Manager.open(d, { acceptNewHostKeys: o.acceptNewHostKeys, concurrency: o.concurrency });
      try {
        await mgr.prepare();
        await mgr.startWorkers();
        const t0 = Date.now();
        const states = await mgr.provisionAll();
        const failed = [...states].filter(([n, s]) => d.servers.some((x) => x.hostname === n) && s.state !== 'running');
        const ok = d.servers.length - failed.length;
        console.log(`provisioned ${ok} of ${d.servers.length} servers in ${((Date.now() - t0) / 1000).toFixed(1)} s` + (failed.length ? `; failed: ${failed.map(([n, s]) => `${n} (${s.detail})`).join('; ')}` : ''));
        if (ok === 0) throw new Error('no server could be provisioned; see the errors above');
        await mgr.schedule();
        if (o.wait) await run(mgr, d);
      } finally {
        await mgr.close();
      }
      if (process.exitCode === undefined && (await stillFailing(d))) process.exitCode = 2;
    });

  withConf(m.command('worker').description('share the manager work (provisioning, ingest, time sync) from another process on the same Redis')).action(async (o: Opts) => {
    const d = load(o);
    const mgr = await Manager.open(d, { acceptNewHostKeys: o.acceptNewHostKeys, concurrency: o.concurrency });
    try {
      await mgr.startWorkers();
      console.log(`manager worker ${process.pid}: running`);
      const why = await untilStopped(d);
      console.log(`manager worker: stopping (${why}); ingested ${mgr.ingestCounters?.rows ?? 0} rows`);
    } finally {
      await mgr.close();
    }
  });

  withConf(m.command('status').description("each server's state and its observer's last heartbeat (records, drops by reason, publish rate); whether the ingest keeps up: records/s in and out, the backlog in records and seconds"))
    .option('--json', 'print the status as one JSON object (manager/status.ts DeploymentStatus; with --watch one per line)', false)
    .option('--watch <duration>', 'show it again every 5s, 1m, … until Ctrl-C', durationMs('--watch', 1000, 86_400_000))
    .addHelpText('after', '\nExamples:\n  latscope manager status --conf conf/\n  latscope manager status --conf conf/ --json | jq .ingest.backlogS\n  latscope manager status --conf conf/ >/dev/null || page-oncall   # a health check\n  latscope manager status --conf conf/ --watch 5s\n\nExit codes: 0 healthy, 3 degraded (a server not running or silent for 30 s, observers holding back, or forged heartbeats; the problems are listed), 1 the conf or Redis cannot be used, 64 a usage error. With --watch, Ctrl-C ends it with 0.\n')
    .action(async (o: Opts & { json: boolean; watch?: number }) => {
      const d = load(o);
      const redis = await connectRedis(d);
      try {
        await watching(o.watch, o.json, async () => {
          const s = await deploymentStatus(redis, d);
          if (!o.watch && !s.healthy) process.exitCode = 3;
          return o.json ? JSON.stringify(s) : forTerminal(statusLines(s).join('\n'));
        });
      } finally {
        redis.disconnect();
      }
    });

  withConf(m.command('stop').description('stop every observer (and running managers); leaves no process, BPF program or XDP attachment behind')).action(async (o: Opts) => {
    const d = load(o);
    const res = await stopDeployment(d, { acceptNewHostKeys: o.acceptNewHostKeys, log: (l) => console.log(forTerminal(l)) });
    const bad = [...res].filter(([, r]) => !r.ok);
    console.log(`stopped ${res.size - bad.length} of ${res.size} servers`);
    if (bad.length) throw new Error(`could not stop cleanly: ${bad.map(([n, r]) => `${n}: ${r.detail}`).join('; ')}`);
  });
  return m;
}

/** Runs until stopped, saying so. */
async function run(mgr: Manager, d: Deployment): Promise<void> {
  console.log(`manager running: ingest into ${d.database.db} on ${d.database.host}:${d.database.port}${d.ping ? `, time sync every ${d.timeSync.time_interval} s` : ''}; Ctrl-C stops the manager (observers keep running), "latscope manager stop" tears everything down`);
  const why = await untilStopped(d);
  console.log(`manager: stopping (${why}); ingested ${mgr.ingestCounters?.rows ?? 0} rows`);
}

/** True when a server of the deployment is not running (the exit code says so). */
async function stillFailing(d: Deployment): Promise<boolean> {
  const redis = await connectRedis(d).catch(() => undefined);
  if (!redis) return false;
  try {
    const h = await redis.hgetall(SERVERS_KEY);
    return d.servers.some((s) => !h[s.hostname] || !['running', 'stopped', 'stopping'].includes((JSON.parse(h[s.hostname]!) as ServerStatus).state));
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
