/**
 * The manager: turns a conf/ folder into observers running on every server and results in
 * MySQL. It only composes; each concern has its own file:
 *   provision.ts  provisioning and health (queue latscope-provision)
 *   queues.ts     BullMQ wiring: a worker per feature queue, schedules, failures logged and counted
 *   state.ts      each server's state in Redis, heartbeats
 *   teardown.ts   `manager stop`
 *   metrics.ts    the status endpoint (management_server_info port)
 * and the features bring their own jobs: ingest/jobs.ts (record streams into MySQL),
 * timesync/jobs.ts (clock rounds), analyzer/jobs.ts (analysis). Work runs as BullMQ jobs on the
 * deployment's Redis, so a second worker process (`latscope manager worker`) shares it.
 */
import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { Redis } from 'ioredis';
import type { Deployment } from '../conf/deployment.js';
import { createDatabase, openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { upsertServers } from '../db/servers.js';
import { ensurePartitions, retentionJobs } from '../db/retention.js';
import { CONF_KEY, recordStream } from '../protocol/redis.js';
import { Ingest } from '../ingest/ingest.js';
import { ingestJobs } from '../ingest/jobs.js';
import { analysisJobs, analysisOptions } from '../analyzer/jobs.js';
import { StreamStage, type StreamCounters } from '../analyzer/stream/stage.js';
import { meshJobs } from '../analyzer/mesh.js';
import { Prober } from '../timesync/prober.js';
import { startResponder, interfaceOf, type Responder } from '../timesync/responder.js';
import { timeSyncJobs } from '../timesync/jobs.js';
import { meshAnchors } from '../protocol/mesh.js';
import { connectRedis, publicConf, redisConnection } from './redis.js';
import { ensureObserverUsers, entryVerifier } from './observer-users.js';
import { JobRunner } from './queues.js';
import { Provisioner, type ProvisionOptions } from './provision.js';
import { ServerStates, type ServerStatus } from './state.js';
import { serveManagerMetrics } from './metrics.js';

export interface ManagerOptions extends ProvisionOptions {
  log: (line: string) => void;
}

export const DEFAULT_MANAGER_OPTIONS: ManagerOptions = {
  acceptNewHostKeys: false,
  concurrency: 16,
  healthTimeoutMs: 30_000,
  silentMs: 20_000,
  log: (l) => console.log(l),
};

export class Manager {
  readonly states: ServerStates;
  private readonly runner: JobRunner;
  private readonly provisioner: Provisioner;
  private ingest?: Ingest;
  /** The stream stage of each records shard (engine stream): each runs while this manager holds that shard's lease. */
  private streams: StreamStage[] = [];
  private prober?: Prober;
  /** The manager's own responder, for its mesh anchors' probes. */
  private responder?: Responder;
  private metricsServer?: HttpServer;

  private constructor(
    readonly d: Deployment,
    readonly redis: Redis,
    readonly pool: Pool,
    readonly o: ManagerOptions,
  ) {
    const confId = createHash('sha256').update(publicConf(d)).digest('hex').slice(0, 12);
    const connection = redisConnection(d);
    this.states = new ServerStates(redis, o.log);
    this.runner = new JobRunner(connection, redis, o.log);
    this.provisioner = new Provisioner(d, redis, this.states, connection, confId, o);
  }

  /** Connects to Redis and MySQL (creating the database if it may); a clear error if either fails. */
  static async open(d: Deployment, o: Partial<ManagerOptions> = {}): Promise<Manager> {
    const redis = await connectRedis(d);
    const db = d.database;
    const info = { host: db.host, port: db.port, user: db.user, password: db.secret, database: db.db, tls: db.tlsFiles };
    const pool = openPool(info);
    try {
      await createDatabase(info);
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
    await upsertServers(
      this.pool,
      this.d.servers.map((s) => ({ hostname: s.hostname, address: s.address, otherAddresses: s.other_address, metadata_key: s.metadata_key, kind: s.kind, hostKey: s.hostKey })),
    );
    const made = await ensurePartitions(this.pool);
    if (made.length) this.o.log(`database: made daily partitions ${made.join(', ')}`);
    await this.checkRedisMemory();
    if (this.d.redis.observer_users) await ensureObserverUsers(this.redis, this.d);
    await this.redis.set(CONF_KEY, publicConf(this.d));
  }

  /** Refuses a Redis that would evict queued records or jobs silently; warns when it has no memory bound. */
  private async checkRedisMemory(): Promise<void> {
    const get = async (key: string) => ((await this.redis.config('GET', key)) as string[])[1];
    let policy: string | undefined, max: string | undefined;
    try {
      [policy, max] = [await get('maxmemory-policy'), await get('maxmemory')];
    } catch (e) {
      this.o.log(`warning: redis: could not read its memory settings (${(e as Error).message}); make sure maxmemory-policy is noeviction`);
      return;
    }
    if (policy && policy !== 'noeviction')
      throw new Error(`redis at ${this.d.redis.address}:${this.d.redis.port}: maxmemory-policy is ${policy}, so a full Redis would silently evict queued records and jobs; set maxmemory-policy noeviction (latscope's observers hold back and spool instead)`);
    if (max === '0')
      this.o.log(`warning: redis at ${this.d.redis.address}:${this.d.redis.port} has no maxmemory: a stopped ingest lets it grow up to max_stream_entries (${this.d.redis.max_stream_entries}) entries of about 60 KB; set maxmemory above that`);
  }

  /** With the mesh, the servers the manager probes (and answers); undefined: every server, no mesh. */
  private get anchors(): string[] | undefined {
    const mesh = this.d.timeSync.mesh;
    return mesh.enabled ? meshAnchors(this.d.servers.map((s) => s.hostname), mesh.anchors) : undefined;
  }

  private get timeSync(): boolean {
    return !!this.d.ping && this.d.functions.timesync;
  }

  /** Every feature's jobs; their run() uses what startWorkers() opened. */
  private features() {
    const f = [this.provisioner.jobs(), ingestJobs(() => this.ingest!), retentionJobs(this.pool, this.d.database.retention)];
    if (this.d.analysis.engine === 'batch') f.push(analysisJobs(this.pool, this.d.analysis, this.d.sampling));
    if (this.timeSync) {
      const all = this.d.servers.map((s) => ({ name: s.hostname, address: this.d.ping!.address ?? s.address }));
      // with the mesh, the manager probes only its anchors: the observers probe each other
      const anchors = new Set(this.anchors ?? all.map((t) => t.name));
      const targets = all.filter((t) => anchors.has(t.name));
      f.push(timeSyncJobs({ redis: this.redis, pool: this.pool, prober: () => this.prober!, targets, conf: this.d.timeSync }));
      if (this.d.timeSync.mesh.enabled) f.push(meshJobs(this.pool));
    }
    return f;
  }

  /** Starts this process's workers: provisioning and health, ingest, analysis, time-sync rounds; and the status endpoint. */
  async startWorkers(): Promise<void> {
    const stream = this.d.analysis.engine === 'stream';
    const verify = entryVerifier(this.d);
    this.ingest = new Ingest(this.redis, this.pool, { consumer: `${hostname()}-${process.pid}`, entriesPerRead: 64, blockMs: 1000, retryMs: 500, records: !stream, verify });
    await this.ingest.ensureGroup();
    this.ingest.start();
    if (stream) {
      // one manager owns a shard's stream at a time (a lease); the others wait to take it over
      const shards = this.d.redis.record_shards;
      for (let k = 0; k < shards; k++) {
        const st = new StreamStage(this.redis, this.pool, {
          ...analysisOptions(this.d.analysis, this.d.sampling), stream: recordStream(k, shards), consumer: `${hostname()}-${process.pid}`, rawSampleRate: this.d.analysis.raw_sample, verify,
          maxRecords: this.d.analysis.step_records, maxWaiting: this.d.analysis.max_waiting, commitSteps: this.d.analysis.commit_steps,
          log: (l) => this.o.log(l),
        });
        st.start();
        this.streams.push(st);
      }
    }
    if (this.timeSync) {
      // with the mesh, the anchors probe the manager too (both ways, so the probes' common
      // stamping bias cancels against its clock as it does between servers): a responder on the
      // interface holding the manager's address; the prober then takes t4 at tc where they share one
      const mesh = this.d.timeSync.mesh;
      const at = mesh.enabled ? interfaceOf(this.d.manager.address) : undefined;
      if (mesh.enabled && !at) this.o.log(`warning: management_server_info.yaml address ${this.d.manager.address} is on no interface of this machine: the anchors cannot probe the manager (they are probed one way only)`);
      if (at) {
        const anchors = new Set(this.anchors);
        const probers = this.d.servers.filter((s) => anchors.has(s.hostname)).map((s) => this.d.ping!.address ?? s.address);
        this.responder = await startResponder({ iface: at, port: this.d.ping!.port, key: this.d.pingKey!, probers, rateLimit: this.d.ping!.rate_limit });
      }
      this.prober = await Prober.open({ ifaces: this.d.manager.eth, port: this.d.ping!.port, key: this.d.pingKey!, replyAt: at && this.d.manager.eth.includes(at) ? 'tc' : 'auto' });
    }
    for (const f of this.features()) this.runner.start(f);
    if (this.d.manager.port)
      this.metricsServer = await serveManagerMetrics(this.d.manager.address, this.d.manager.port, {
        jobs: () => this.runner.counters,
        ingest: () => this.ingest?.counters,
        stream: () => this.streamCounters,
        states: () => this.states.all(),
        pool: this.pool,
        redis: this.redis,
        recordStreams: Array.from({ length: this.d.redis.record_shards }, (_, k) => recordStream(k, this.d.redis.record_shards)),
      });
  }

  /** Schedules the repeatable jobs (idempotent): health checks, ingest reclaim, analysis, time-sync rounds. */
  async schedule(): Promise<void> {
    await this.runner.schedule(this.features());
  }

  /** Provisions every server of the deployment; resolves with each one's final state. */
  provisionAll(): Promise<Map<string, ServerStatus>> {
    return this.provisioner.provisionAll();
  }

  /**
   * Engine stream: settles every record still waiting now, as if the grace period had passed (the
   * end of a run: the demo, a fleet that stopped collecting), in every shard. Returns the records
   * analyzed meanwhile.
   */
  async settleStream(): Promise<number> {
    if (!this.streams.length) throw new Error('settleStream: analysis_info.yaml engine is not stream');
    let n = 0;
    for (const s of this.streams) {
      await s.stop();
      if (!(await s.acquire(30))) throw new Error('settleStream: another manager holds a records shard');
      try {
        n += await s.finish();
      } finally {
        await s.release();
        s.start();
      }
    }
    return n;
  }

  /** The stream stages' counters, summed over the shards (engine stream). */
  get streamCounters(): StreamCounters | undefined {
    if (!this.streams.length) return undefined;
    const sum = { ...this.streams[0]!.counters };
    for (const s of this.streams.slice(1)) for (const k of Object.keys(sum) as (keyof StreamCounters)[]) sum[k] += s.counters[k];
    return sum;
  }

  /** Ingest counters of this process. */
  get ingestCounters() {
    return this.ingest?.counters;
  }

  get jobCounters() {
    return this.runner.counters;
  }

  async close(): Promise<void> {
    this.metricsServer?.close();
    await this.runner.close();
    await this.ingest?.stop();
    await Promise.all(this.streams.map((st) => st.stop()));
    await this.prober?.close();
    await this.responder?.close();
    await this.pool.end();
    this.redis.disconnect();
  }
}
