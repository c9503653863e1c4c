/**
 * The manager: turns a conf/ folder into observers running on every server and rows arriving
 * in MySQL. Work runs as BullMQ jobs on the deployment's Redis, so a second worker process
 * (`latscope manager worker`) shares it:
 *   latscope-provision  `provision` per server (retried with backoff when the server cannot be
 *                       reached; refused host keys and failed logins are not retried), and the
 *                       `health` scheduler that provisions again a server whose observer went
 *                       silent (the supervisor on the server restarts a dead observer by itself)
 *   latscope-timesync   time-sync rounds (timesync/service.ts)
 *   latscope-ingest     the `reclaim` scheduler: record batches a dead ingest consumer left
 *                       pending are taken over (manager/ingest.ts; every worker also consumes)
 *   latscope-analysis   the `layer-delays` scheduler: per-layer delays of each server per
 *                       window into delay_results (analyzer/layers.ts)
 * Each server's state lives in the Redis hash latscope:servers (one JSON value per server,
 * changed only by setState), which `manager status` reads.
 */
import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import mysql, { type Pool } from 'mysql2/promise';
import type { Deployment, Server } from '../conf/deployment.js';
import { migrate, openPool, upsertServers } from './db.js';
import { buildBundle, type Bundle } from './bundle.js';
import { connectServer, RemoteServer } from './remote.js';
import { SshError } from './ssh.js';
import { Ingest } from './ingest.js';
import { analyzeLayerDelays, LAYER_ANALYSIS } from '../analyzer/layers.js';
import { HEARTBEAT_STREAM } from '../observer/observer.js';
import { Prober } from '../timesync/prober.js';
import { scheduleTimeSync, startTimeSyncWorker, unscheduleTimeSync } from '../timesync/service.js';

export const PROVISION_QUEUE = 'latscope-provision';
export const INGEST_QUEUE = 'latscope-ingest';
export const ANALYSIS_QUEUE = 'latscope-analysis';
export const SERVERS_KEY = 'latscope:servers';
export const CONF_KEY = 'latscope:conf';
export const CONTROL_CHANNEL = 'latscope:manager:control';

/** Batches pending this long at a consumer are taken over: it died (a live one acks within seconds). */
const RECLAIM_IDLE_MS = 15_000;
const RECLAIM_EVERY_MS = 5_000;
/** Per-layer delay windows: 10 s of each server's clock, the last minute recomputed every 10 s. */
const ANALYSIS_EVERY_MS = 10_000;
const LAYER_WINDOW_NS = 10_000_000_000n;
const LAYER_LOOKBACK_NS = 60_000_000_000n;
/** How long `manager` waits for all servers to be provisioned (retries included). */
const PROVISION_DEADLINE_MS = 180_000;

export type ServerState = 'queued' | 'connecting' | 'installing' | 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';

export interface ServerStatus {
  state: ServerState;
  detail: string;
  atMs: number;
  supervisorPid?: number;
}

export interface ManagerOptions {
  acceptNewHostKeys: boolean;
  /** Provisioning jobs run at once per worker process. */
  concurrency: number;
  /** Milliseconds to wait for a new observer's first heartbeat. */
  healthTimeoutMs: number;
  /** Milliseconds without a heartbeat after which the health job provisions a server again. */
  silentMs: number;
  log: (line: string) => void;
}

export const DEFAULT_MANAGER_OPTIONS: ManagerOptions = {
  acceptNewHostKeys: false,
  concurrency: 16,
  healthTimeoutMs: 30_000,
  silentMs: 20_000,
  log: (l) => console.log(l),
};

/** Connection options for BullMQ and ioredis from redis_info. */
export function redisConnection(d: Deployment): { host: string; port: number; password?: string; maxRetriesPerRequest: null } {
  return { host: d.redis.address, port: d.redis.port, password: d.redis.secret, maxRetriesPerRequest: null };
}

/**
 * A connected client of the deployment's Redis, or an error saying what is wrong (and no
 * client left retrying in the background). Once connected, it reconnects by itself.
 */
export async function connectRedis(d: Deployment): Promise<Redis> {
  const redis = new Redis({ ...redisConnection(d), lazyConnect: true });
  let last = '';
  redis.on('error', (e: Error) => (last = e.message));
  try {
    await redis.connect();
    return redis;
  } catch (e) {
    redis.disconnect();
    throw new Error(`redis at ${d.redis.address}:${d.redis.port} (redis_info.yaml): ${last || (e as Error).message}; check that it runs, that this machine can reach it, and the password`);
  }
}

/** The configuration every worker may read: no secrets. */
function publicConf(d: Deployment): string {
  return JSON.stringify({
    dir: d.dir,
    servers: d.servers.map((s) => ({ hostname: s.hostname, address: s.address, kind: s.kind, hostKey: s.hostKey, installDir: s.installDir })),
    sampling: d.sampling,
    timeSync: d.ping ? d.timeSync : undefined,
  });
}

export class Manager {
  private readonly workers: Worker[] = [];
  /** Fingerprint of the conf: a worker only provisions for the conf it was started with. */
  readonly confId: string;
  private ingest?: Ingest;
  private prober?: Prober;
  private bundle?: Bundle;

  private constructor(
    readonly d: Deployment,
    readonly redis: Redis,
    readonly pool: Pool,
    readonly o: ManagerOptions,
  ) {
    this.confId = createHash('sha256').update(publicConf(d)).digest('hex').slice(0, 12);
  }

  static async open(d: Deployment, o: Partial<ManagerOptions> = {}): Promise<Manager> {
    const redis = await connectRedis(d);
    const db = d.database;
    const pool = openPool({ host: db.host, port: db.port, user: db.user, password: db.secret, database: db.db });
    try {
      await createDatabase(d);
      await pool.query('SELECT 1');
    } catch (e) {
      redis.disconnect();
      await pool.end().catch(() => {});
      throw new Error(`mysql at ${db.host}:${db.port} database ${db.db} (database_info.yaml): ${(e as Error).message}`);
    }
    return new Manager(d, redis, pool, { ...DEFAULT_MANAGER_OPTIONS, ...o });
  }

  /** Migrations, the servers table, the configuration in Redis. */
  async prepare(): Promise<void> {
    const applied = await migrate(this.pool);
    if (applied.length) this.o.log(`database: applied migrations ${applied.join(', ')}`);
    await upsertServers(this.pool, this.d.servers.map((s) => ({ hostname: s.hostname, address: s.address, metadata_key: s.metadata_key, kind: s.kind, hostKey: s.hostKey })));
    await this.redis.set(CONF_KEY, publicConf(this.d));
  }

  async setState(server: string, state: ServerState, detail = '', supervisorPid?: number): Promise<void> {
    const st: ServerStatus = { state, detail, atMs: Date.now(), supervisorPid };
    await this.redis.hset(SERVERS_KEY, server, JSON.stringify(st));
    this.o.log(`${server}: ${state}${detail ? ` (${detail})` : ''}`);
  }

  /** Starts this process's workers: provisioning and health, ingest, time-sync rounds. */
  async startWorkers(): Promise<void> {
    const connection = redisConnection(this.d);
    const provision = new Worker(PROVISION_QUEUE, (job: Job) => (job.name === 'health' ? this.health() : this.provisionJob(job)), {
      connection,
      concurrency: this.o.concurrency,
    });
    provision.on('error', () => {}); // a Redis outage: the worker reconnects by itself
    this.workers.push(provision);

    this.ingest = new Ingest(this.redis, this.pool, { consumer: `${hostname()}-${process.pid}`, entriesPerRead: 64, blockMs: 1000, retryMs: 500 });
    await this.ingest.ensureGroup();
    this.ingest.start();
    const reclaim = new Worker(INGEST_QUEUE, async () => this.ingest!.reclaim(RECLAIM_IDLE_MS), { connection, concurrency: 1 });
    reclaim.on('error', () => {});
    this.workers.push(reclaim);
    const analysis = new Worker(ANALYSIS_QUEUE, async () => (await analyzeLayerDelays(this.pool, { windowNs: LAYER_WINDOW_NS, lookbackNs: LAYER_LOOKBACK_NS })).length, { connection, concurrency: 1 });
    analysis.on('error', () => {});
    this.workers.push(analysis);

    if (this.d.ping && this.d.functions.timesync) {
      this.prober = await Prober.open({ ifaces: this.d.manager.eth, port: this.d.ping.port, key: this.d.pingKey! });
      const ts = startTimeSyncWorker({
        connection,
        pool: this.pool,
        prober: this.prober,
        targets: this.d.servers.map((s) => ({ name: s.hostname, address: this.d.ping!.address ?? s.address })),
        conf: this.d.timeSync,
      });
      ts.on('error', () => {});
      this.workers.push(ts);
    }
  }

  /** Schedules the repeatable jobs (idempotent): health checks, ingest reclaim, time-sync rounds. */
  async schedule(): Promise<void> {
    const connection = redisConnection(this.d);
    const pq = new Queue(PROVISION_QUEUE, { connection });
    const iq = new Queue(INGEST_QUEUE, { connection });
    const aq = new Queue(ANALYSIS_QUEUE, { connection });
    const keep = { removeOnComplete: 100, removeOnFail: 100 };
    try {
      await pq.upsertJobScheduler('health', { every: 5000 }, { name: 'health', opts: keep });
      await iq.upsertJobScheduler('reclaim', { every: RECLAIM_EVERY_MS }, { name: 'reclaim', opts: keep });
      await aq.upsertJobScheduler(LAYER_ANALYSIS, { every: ANALYSIS_EVERY_MS }, { name: LAYER_ANALYSIS, opts: { ...keep, attempts: 3, backoff: { type: 'exponential', delay: 1000 } } });
    } finally {
      await Promise.all([pq.close(), iq.close(), aq.close()]);
    }
    if (this.d.ping && this.d.functions.timesync) await scheduleTimeSync(connection, this.d.timeSync);
  }

  /** Queues one provisioning job per server and waits for all of them; returns the final states. */
  async provisionAll(): Promise<Map<string, ServerStatus>> {
    const connection = redisConnection(this.d);
    const q = new Queue(PROVISION_QUEUE, { connection });
    const events = new QueueEvents(PROVISION_QUEUE, { connection });
    try {
      await events.waitUntilReady();
      const run = Date.now();
      for (const s of this.d.servers) await this.setState(s.hostname, 'queued');
      const jobs = await q.addBulk(
        this.d.servers.map((s) => ({
          name: 'provision',
          data: { server: s.hostname, conf: this.confId },
          opts: { jobId: `provision-${s.hostname}-${run}`, attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 1000, removeOnFail: 1000 },
        })),
      );
      // bounded: a job no worker takes (all of them busy or gone) must not hold the operator forever
      const deadlineMs = PROVISION_DEADLINE_MS;
      await Promise.all(jobs.map((j) => Promise.race([j.waitUntilFinished(events).catch(() => {}), new Promise((r) => setTimeout(r, deadlineMs).unref())])));
      const states = await this.states();
      for (const s of this.d.servers) {
        const st = states.get(s.hostname);
        if (st && !['running', 'failed'].includes(st.state)) {
          const detail = `provisioning did not finish within ${deadlineMs / 1000} s (last state ${st.state})`;
          await this.setState(s.hostname, 'failed', detail);
          states.set(s.hostname, { state: 'failed', detail, atMs: Date.now() });
        }
      }
      return states;
    } finally {
      await events.close();
      await q.close();
    }
  }

  async states(): Promise<Map<string, ServerStatus>> {
    const h = await this.redis.hgetall(SERVERS_KEY);
    return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as ServerStatus]));
  }

  private server(name: string): Server {
    const s = this.d.servers.find((x) => x.hostname === name);
    if (!s) throw new UnrecoverableError(`${name}: not in connect_info.yaml`);
    return s;
  }

  private provisionJob(job: Job): Promise<string> {
    if (job.data.conf !== this.confId)
      // retried: another worker, started with the same conf as the manager that queued it, takes it
      throw new Error(`${job.data.server}: this worker's conf (${this.d.dir}) differs from the one the job was queued with: run every manager worker with the same conf folder`);
    return this.provision(job.data.server as string);
  }

  /** Provisions one server: check, install, configure, start, wait for its first heartbeat. */
  async provision(name: string): Promise<string> {
    const s = this.server(name);
    this.bundle ??= buildBundle();
    await this.setState(name, 'connecting', `${s.username}@${s.address}:${s.port}`);
    let remote: RemoteServer | undefined;
    try {
      remote = new RemoteServer(await connectServer(this.d, s, this.o.acceptNewHostKeys), s);
      await this.setState(name, 'installing');
      await remote.check(this.bundle);
      const sent = await remote.install(this.bundle);
      await remote.configure(this.d);
      await this.setState(name, 'starting', sent ? `bundle ${this.bundle.hash} uploaded, ${(sent / 1e6).toFixed(1)} MB` : `bundle ${this.bundle.hash} already there`);
      const since = Date.now();
      const pid = await remote.start();
      const hb = await this.waitForHeartbeat(name, since, this.o.healthTimeoutMs);
      if (!hb) {
        const st = await remote.state().catch(() => undefined);
        throw new SshError(name, 'EXEC_FAILED', `the observer sent no heartbeat within ${this.o.healthTimeoutMs} ms (${st ? `restarts ${st.restarts}, last ${st.lastExit ?? 'none'}` : 'its supervisor is gone'}); see ${s.installDir}/observer.log on the server`);
      }
      await this.setState(name, 'running', `observer pid ${hb.pid}`, pid);
      return 'running';
    } catch (e) {
      const msg = (e as Error).message.replace(new RegExp(`^${name}: `), '');
      await this.setState(name, 'failed', msg);
      // A refused host key or login does not get better by trying again.
      if (e instanceof SshError && e.code !== 'UNREACHABLE') throw new UnrecoverableError(e.message);
      throw e;
    } finally {
      remote?.close();
    }
  }

  /** The newest heartbeat of `node` at or after sinceMs, within timeoutMs. */
  async waitForHeartbeat(node: string, sinceMs: number, timeoutMs: number): Promise<Record<string, string> | undefined> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const hb = (await latestHeartbeats(this.redis, sinceMs)).get(node);
      if (hb) return hb;
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  }

  /** The health job: a running server whose observer went silent is provisioned again. */
  private async health(): Promise<string[]> {
    const states = await this.states();
    const beats = await latestHeartbeats(this.redis, Date.now() - this.o.silentMs);
    const silent = [...states].filter(([n, st]) => st.state === 'running' && Date.now() - st.atMs > this.o.silentMs && !beats.has(n)).map(([n]) => n);
    if (!silent.length) return [];
    const q = new Queue(PROVISION_QUEUE, { connection: redisConnection(this.d) });
    try {
      for (const n of silent) {
        await this.setState(n, 'queued', `no heartbeat for ${this.o.silentMs / 1000} s: provisioning again`);
        await q.add('provision', { server: n, conf: this.confId }, { jobId: `provision-${n}-health-${Date.now()}`, attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 1000, removeOnFail: 1000 });
      }
    } finally {
      await q.close();
    }
    return silent;
  }

  /** Ingest counters of this process. */
  get ingestCounters() {
    return this.ingest?.counters;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await this.ingest?.stop();
    await this.prober?.close();
    await this.pool.end();
    this.redis.disconnect();
  }
}

/** Creates database_info's database if it is missing and the user may (else the pool says what is wrong). */
async function createDatabase(d: Deployment): Promise<void> {
  const db = d.database;
  const c = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.secret });
  try {
    await c.query(`CREATE DATABASE IF NOT EXISTS \`${db.db}\``).catch(() => {});
  } finally {
    await c.end();
  }
}

/** The newest heartbeat per node among those sent at or after sinceMs. */
export async function latestHeartbeats(redis: Redis, sinceMs: number): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  const entries = await redis.xrevrange(HEARTBEAT_STREAM, '+', String(sinceMs), 'COUNT', 5000);
  for (const [id, f] of entries) {
    const m: Record<string, string> = { atMs: id.split('-')[0]! };
    for (let i = 0; i + 1 < f.length; i += 2) m[f[i]!] = f[i + 1]!;
    if (m.node && !out.has(m.node)) out.set(m.node, m);
  }
  return out;
}

/**
 * Tears the deployment down: running managers are told to exit, the schedulers are removed,
 * and every server's observer is stopped over SSH; returns what each server still had left.
 */
export async function stopDeployment(d: Deployment, o: { acceptNewHostKeys: boolean; log: (l: string) => void }): Promise<Map<string, { ok: boolean; detail: string }>> {
  const connection = redisConnection(d);
  const redis = await connectRedis(d).catch((e: Error) => {
    o.log(`warning: ${e.message}: stopping the servers without telling running managers`);
    return undefined;
  });
  if (redis) {
    await redis.publish(CONTROL_CHANNEL, 'stop');
    for (const [queue, id] of [[PROVISION_QUEUE, 'health'], [INGEST_QUEUE, 'reclaim'], [ANALYSIS_QUEUE, LAYER_ANALYSIS]] as const) {
      const q = new Queue(queue, { connection });
      await q.removeJobScheduler(id).catch(() => {});
      await q.close();
    }
    await unscheduleTimeSync(connection).catch(() => {});
  }
  const results = new Map<string, { ok: boolean; detail: string }>();
  const set = async (s: Server, state: ServerState, detail: string) => {
    o.log(`${s.hostname}: ${state}${detail ? ` (${detail})` : ''}`);
    await redis?.hset(SERVERS_KEY, s.hostname, JSON.stringify({ state, detail, atMs: Date.now() } satisfies ServerStatus));
  };
  await Promise.all(
    d.servers.map(async (s) => {
      let remote: RemoteServer | undefined;
      try {
        await set(s, 'stopping', '');
        remote = new RemoteServer(await connectServer(d, s, o.acceptNewHostKeys), s);
        const left = await remote.stop(d.ping?.eth);
        if (left.length) throw new Error(`still there after stopping: ${left.join('; ')}`);
        await set(s, 'stopped', 'no observer process, no XDP attachment left');
        results.set(s.hostname, { ok: true, detail: 'stopped' });
      } catch (e) {
        const msg = (e as Error).message.replace(new RegExp(`^${s.hostname}: `), '');
        await set(s, 'failed', `stop: ${msg}`);
        results.set(s.hostname, { ok: false, detail: msg });
      } finally {
        remote?.close();
      }
    }),
  );
  redis?.disconnect();
  return results;
}
