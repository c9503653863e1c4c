/**
 * The collection pipeline in one process, for tests that inject causes on purpose: an observer
 * per test host (its own namespace and interface, real hooks), the ingest into a fresh MariaDB
 * database, time-sync responders in the hosts and the prober in the manager's namespace, rounds
 * on demand, and the analyzer. What the manager does over SSH, without SSH, so a test can run a
 * clean phase and a slowed one quickly on one testbed.
 */
import { Redis } from 'ioredis';
import type { Testbed } from '../../local/testbed.js';
import { startRedis, startMariaDb, type RedisInfo, type MariaDbInfo } from '../../local/servers.js';
import { spawnResponder, writePingConf, type RunningResponder } from '../../local/responder.js';
import type { Pool } from '../../db/pool.js';
import { freshDatabase } from './database.js';
import { upsertServers } from '../../db/servers.js';
import { Observer } from '../../observer/observer.js';
import { Ingest } from '../../ingest/ingest.js';
import { Prober } from '../../timesync/prober.js';
import { runRound } from '../../timesync/jobs.js';
import { timeSync, samplingInfo } from '../../conf/schema.js';
import { newKey } from '../../protocol/timesync.js';
import { RECORD_STREAM, HISTOGRAM_STREAM, HEARTBEAT_STREAM, BAD_RECORD_STREAM } from '../../protocol/redis.js';
import { HOST_STREAM, type HostModuleName } from '../../protocol/host.js';
import { analyze, type AnalyzeResult } from '../../analyzer/analyze.js';
import { StreamStage } from '../../analyzer/stream/stage.js';
import { OBSERVER_PUBLISHING } from '../../observer/limits.js';
import { ROW_COLUMNS, ROW_FORMAT } from '../../protocol/records.js';
import { workDir } from '../../lib/paths.js';

export interface TestClock {
  offsetNs: bigint;
  driftPpb: bigint;
  epochNs: bigint;
}

export interface PipelineOptions {
  /** Its database is latscope_test_NAME (test/helpers/database.ts). */
  name: string;
  ports: number[];
  /** Bytes between samples. */
  size: number;
  /** A synthetic clock error per host index (observer and responder alike). */
  clocks?: Map<number, TestClock>;
  /** Host-jitter modules per host index (function_info.yaml jitter): the hosts share one kernel, so give them to one. */
  jitter?: Map<number, HostModuleName[]>;
}

const PING_PORT = 5105;

export class Pipeline {
  private constructor(
    readonly tb: Testbed,
    readonly redisInfo: RedisInfo,
    readonly db: MariaDbInfo,
    readonly pool: Pool,
    private readonly redis: Redis,
    private readonly observers: Observer[],
    private readonly ingest: Ingest,
    private readonly responders: RunningResponder[],
    private readonly prober: Prober,
    private readonly opts: PipelineOptions,
  ) {}

  static async start(tb: Testbed, o: PipelineOptions): Promise<Pipeline> {
    const redisInfo = await startRedis([tb.managerAddress]);
    const db = await startMariaDb();
    const pool = await freshDatabase(db, o.name);
    await upsertServers(pool, tb.hosts.map((h, i) => ({ hostname: `${tb.id}-${h.name}`, address: h.address, metadata_key: String(i + 1), kind: 'bare-metal' })));
    const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
    await redis.del(RECORD_STREAM, HISTOGRAM_STREAM, HEARTBEAT_STREAM, HOST_STREAM);
    const sampling = samplingInfo.parse({ ports: o.ports, size: o.size, interval: 0, filter_retrans: 1, histogram_interval: 1 });
    const observers: Observer[] = [];
    const responders: RunningResponder[] = [];
    let ingest: Ingest | undefined;
    let prober: Prober | undefined;
    try {
      for (const [i, h] of tb.hosts.entries()) {
        const ob = new Observer({
          node: `${tb.id}-${h.name}`, redis: { host: redisInfo.host, port: redisInfo.port, password: redisInfo.password }, sampling,
          interfaces: [h.iface], ownNetnsOnly: true, netns: h.netns, heartbeatMs: 1000, histogramMs: 1000, drainMs: 20,
          spoolDir: workDir('spool', `${tb.id}-${h.name}`), limits: { spoolBytes: 64 << 20 }, metrics: { host: '127.0.0.1', port: 0 }, bpfStats: false,
          testClock: o.clocks?.get(i),
          jitter: o.jitter?.get(i),
        });
        await ob.start();
        observers.push(ob);
      }
      ingest = new Ingest(redis, pool, { consumer: `test-${process.pid}`, entriesPerRead: 64, blockMs: 200, retryMs: 200 });
      await ingest.ensureGroup();
      ingest.start();
      const key = newKey();
      for (const [i, h] of tb.hosts.entries()) responders.push(await spawnResponder(h.netns, writePingConf(`${tb.id}-${h.name}`, { port: PING_PORT, eth: h.iface, key, probers: [tb.managerAddress] }), o.clocks?.get(i)));
      prober = await Prober.open({ ifaces: [...tb.hosts.map((h) => h.outerIface), ...(tb.router ? [`v${tb.id}ra`] : [])], port: PING_PORT, key });
      return new Pipeline(tb, redisInfo, db, pool, redis, observers, ingest, responders, prober, o);
    } catch (e) {
      for (const ob of observers) await ob.stop().catch(() => {});
      await ingest?.stop();
      for (const r of responders) await r.stop().catch(() => {});
      await prober?.close();
      redis.disconnect();
      await pool.end();
      throw e;
    }
  }

  private rounding = false;

  /** One time-sync round over every host (one at a time: they share the prober). */
  async round(): Promise<void> {
    while (this.rounding) await new Promise((r) => setTimeout(r, 50));
    this.rounding = true;
    try {
      await this.roundNow();
    } finally {
      this.rounding = false;
    }
  }

  private async roundNow(): Promise<void> {
    const targets = this.tb.hosts.map((h) => ({ name: `${this.tb.id}-${h.name}`, address: h.address }));
    const r = await runRound(this.redis, this.pool, this.prober, targets, timeSync.parse({ probes: 200, timeout_ms: 20 }));
    if (r.unreachable.length) throw new Error(`time sync: no reply from ${r.unreachable.join(', ')}`);
  }

  /**
   * Waits until every record of the traffic so far is a row: no event left in an observer's ring
   * (a reader behind its CPU budget on a busy machine), none still assembling (an incomplete one
   * goes out only when it times out, seconds after the traffic), and their queues, the stream and
   * the ingest all empty. A phase's analysis then sees all of it.
   */
  async drained(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      await new Promise((r) => setTimeout(r, 400));
      const [[c]] = (await this.pool.query('SELECT COUNT(*) AS n FROM packets')) as any;
      const made = this.observers.reduce((n, ob) => n + ob.counters.publisher.published, 0);
      const backlog = this.observers.reduce((n, ob) => n + ob.counters.backlog.memory, 0);
      const assembling = this.observers.reduce((n, ob) => n + ob.counters.assembler.assembling, 0);
      const unread = this.observers.reduce((n, ob) => n + ob.counters.ringUnreadBytes, 0);
      if (Number(c.n) === made && backlog === 0 && assembling === 0 && unread === 0 && Number(c.n) === last) return;
      last = Number(c.n);
      if (Date.now() > until) {
        const lag = await this.ingest.lag().catch((e: Error) => e.message);
        throw new Error(`records did not all reach MySQL within ${timeoutMs} ms: ${c.n} rows, ${made} published, ${backlog} waiting, ${assembling} assembling, ${unread} bytes unread in the rings; stream ${JSON.stringify(lag)}, ingest ${JSON.stringify(this.ingest.counters)}`);
      }
    }
  }

  /** Rounds around a phase of traffic, everything ingested, then one analysis run with nothing left waiting. */
  async phase(traffic: () => Promise<void>): Promise<AnalyzeResult> {
    await this.round();
    const tick = setInterval(() => void this.round().catch(() => {}), 2000);
    try {
      await traffic();
    } finally {
      clearInterval(tick);
    }
    await this.drained();
    await this.round();
    return analyze(this.pool, this.analysis);
  }

  private get analysis() {
    return { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: this.opts.size };
  }

  /** The pipeline's database. */
  get database(): string {
    return `latscope_test_${this.opts.name}`;
  }

  /** A database of its own beside the pipeline's, with these tables copied; the caller ends its pool. */
  private async copyOf(suffix: string, tables: string[]): Promise<Pool> {
    const pool = await freshDatabase(this.db, `${this.opts.name}_${suffix}`);
    try {
      for (const t of tables) await pool.query(`INSERT INTO ${t} SELECT * FROM ${this.database}.${t}`);
      return pool;
    } catch (e) {
      await pool.end();
      throw e;
    }
  }

  /**
   * The batch analyzer again over every packets row so far, in one run into a database of its
   * own, with the clock rounds as they are now: what the stream engine is compared with (a
   * phase's own analysis knew only the rounds up to its end, and the pairing of a retransmitted
   * sample's records and the windows of its paths follow the clocks' bounds then).
   */
  async batchEngine(): Promise<Pool> {
    const pool = await this.copyOf('batch', ['servers', 'server_addresses', 'clock_offsets', 'packets']);
    try {
      await pool.query(`INSERT INTO ingest_batches (id, records, committed_at, analyzed) SELECT id, records, committed_at, 0 FROM ${this.database}.ingest_batches`);
      await analyze(pool, this.analysis);
      return pool;
    } catch (e) {
      await pool.end();
      throw e;
    }
  }

  /**
   * The stream engine (analyzer/stream/stage.ts) over the same records: every packets row so far,
   * published as its observer published it (its row line, per server in entries of the observer's size),
   * to a stream of its own, analyzed by a stream stage into a database of its own (the servers,
   * their addresses and the clock rounds copied) with no row per path. Returns that database;
   * the caller ends its pool.
   */
  async streamEngine(): Promise<Pool> {
    const name = `${this.database}_stream`;
    const pool = await this.copyOf('stream', ['servers', 'server_addresses', 'clock_offsets']);
    const stream = `latscope:test:pipeline:${name}:${process.pid}`;
    await this.redis.del(stream);
    try {
      // the row line of each record, as encodeRow wrote it (NULL as backslash-N: CHAR(92), as '\\N' in SQL would be an escaped N)
      const [rows] = (await this.pool.query(
        `SELECT s.name, CONCAT_WS('\t', ${ROW_COLUMNS.map((c) => `IFNULL(p.${c}, CONCAT(CHAR(92), 'N'))`).join(', ')}) AS line FROM packets p JOIN servers s ON s.id = p.server_id ORDER BY p.server_id, p.observer_seq`,
      )) as any;
      const byNode = new Map<string, string[]>();
      for (const r of rows as { name: string; line: string }[]) (byNode.get(r.name) ?? byNode.set(r.name, []).get(r.name)!).push(r.line);
      // the observers publish side by side: an entry of each in turn (one server's whole backlog
      // before its peers' would wait beyond the stage's bound on waiting records, and be evicted)
      const size = OBSERVER_PUBLISHING.batchRecords;
      const most = Math.max(...[...byNode.values()].map((l) => l.length));
      for (let i = 0; i < most; i += size)
        for (const [node, lines] of byNode) {
          const part = lines.slice(i, i + size);
          if (part.length) await this.redis.xadd(stream, '*', 'format', ROW_FORMAT, 'node', node, 'n', String(part.length), 'rows', part.join('\n') + '\n');
        }
      const stage = new StreamStage(this.redis, pool, { windowNs: 10e9, graceMs: 3_600_000, spikeFactor: 10, filterRetrans: true, sampleSize: this.opts.size, stream, consumer: 'test' });
      if (!(await stage.acquire())) throw new Error(`${stream}: its lease is held`);
      try {
        const n = await stage.finish();
        if (stage.counters.evicted) throw new Error(`the stream stage evicted ${stage.counters.evicted} waiting records: ${JSON.stringify(stage.counters)}`);
        if (n !== (rows as unknown[]).length) {
          const bad = (await this.redis.xrevrange(BAD_RECORD_STREAM, '+', '-', 'COUNT', 1)) as [string, string[]][];
          throw new Error(`the stream stage analyzed ${n} of ${(rows as unknown[]).length} records: ${JSON.stringify(stage.counters)}; last set aside: ${bad[0]?.[1].slice(0, 6).join(' ').slice(0, 300)}`);
        }
      } finally {
        await stage.release();
      }
      return pool;
    } catch (e) {
      await pool.end();
      throw e;
    } finally {
      await this.redis.del(stream);
    }
  }

  async stop(): Promise<void> {
    for (const ob of this.observers) await ob.stop().catch(() => {});
    await this.ingest.stop();
    for (const r of this.responders) await r.stop().catch(() => {});
    await this.prober.close();
    this.redis.disconnect();
    await this.pool.end();
  }
}
