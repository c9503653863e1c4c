/**
 * Publishes per-packet records to a Redis stream in pipelined batches. While Redis cannot be
 * reached, records wait in a bounded spool: memory first, then files on disk, sent oldest first
 * when Redis answers again. What does not fit is dropped and counted (`overflow`), never
 * silently. A stream entry holds one batch (protocol/redis.ts RecordBatch: the records as lines
 * of protocol/records.ts's row format).
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { HEARTBEAT_MAXLEN, RECORD_STREAM, toFields, type RecordBatch } from '../protocol/redis.js';
import { ROW_FORMAT, encodeRows, type PacketRecord } from '../protocol/records.js';

export interface PublisherOptions {
  node: string;
  redis: { host: string; port: number; password?: string };
  stream?: string;
  /** Records per stream entry. */
  batchRecords: number;
  /** Stream entries per pipeline round trip. */
  pipelineEntries: number;
  /** Records kept in memory while Redis is away before the oldest go to disk. */
  maxMemoryRecords: number;
  /** Directory of the disk spool. */
  spoolDir: string;
  /** Bytes the disk spool may use; records beyond it are dropped and counted. */
  maxSpoolBytes: number;
  /** Milliseconds between sends. */
  flushMs: number;
}

export interface PublisherCounters {
  published: number;
  /** Records written to the disk spool (they are published later). */
  spooledToDisk: number;
  /** Records dropped because memory and disk spools were full. */
  overflow: number;
  redisErrors: number;
}

type Batch = Omit<RecordBatch, 'format'>;

export class RecordPublisher {
  private readonly redis: Redis;
  private memory: Batch[] = [];
  private open: PacketRecord[] = [];
  private memoryRecords = 0;
  /** Records of the batches being sent right now (out of `memory` until they are sent or put back). */
  private inFlight = 0;
  private timer?: NodeJS.Timeout;
  private sending = false;
  private spoolBytes = 0;
  private spoolSeq = 0;
  private lastError = '';
  readonly counters: PublisherCounters = { published: 0, spooledToDisk: 0, overflow: 0, redisErrors: 0 };

  constructor(private readonly o: PublisherOptions) {
    const { host, port, password } = o.redis;
    // No offline queue: a command while disconnected fails at once, and its records stay spooled.
    this.redis = new Redis({ host, port, password, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: (n) => Math.min(100 * n, 1000) });
    this.redis.on('error', (e: Error) => {
      this.lastError = e.message;
    });
    mkdirSync(o.spoolDir, { recursive: true, mode: 0o700 });
    for (const f of this.spoolFiles()) {
      this.spoolBytes += statSync(join(o.spoolDir, f)).size;
      this.spoolSeq = Math.max(this.spoolSeq, Number(f.slice(0, 12)));
    }
  }

  /** Connects; fails with a clear message when Redis cannot be reached. */
  async connect(): Promise<void> {
    const { host, port } = this.o.redis;
    await this.redis.connect().catch((e: Error) => {
      throw new Error(`connecting to redis at ${host}:${port}: ${e.message}; check that it runs and that this server can reach it`);
    });
    this.timer = setInterval(() => void this.send(), this.o.flushMs);
  }

  push(r: PacketRecord): void {
    this.open.push(r);
    if (this.open.length >= this.o.batchRecords) this.seal();
  }

  /** Records waiting to be published (memory and disk). */
  get backlog(): { memory: number; diskBytes: number } {
    return { memory: this.memoryRecords + this.inFlight + this.open.length, diskBytes: this.spoolBytes };
  }

  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  private seal(): void {
    if (!this.open.length) return;
    const recs = this.open;
    this.open = [];
    this.memory.push({ node: this.o.node, first: recs[0]!.observerSeq, last: recs[recs.length - 1]!.observerSeq, n: recs.length, rows: encodeRows(recs) });
    this.memoryRecords += recs.length;
    if (this.memoryRecords > this.o.maxMemoryRecords) this.spillToDisk();
  }

  /** Moves the older half of the memory spool to a disk file, or counts it lost if the disk spool is full. */
  private spillToDisk(): void {
    const k = Math.max(1, Math.floor(this.memory.length / 2));
    const old = this.memory.splice(0, k);
    const n = old.reduce((s, b) => s + b.n, 0);
    this.memoryRecords -= n;
    const text = old.map((b) => JSON.stringify(b)).join('\n') + '\n';
    if (this.spoolBytes + text.length > this.o.maxSpoolBytes) {
      this.counters.overflow += n;
      return;
    }
    const file = join(this.o.spoolDir, `${String(++this.spoolSeq).padStart(12, '0')}.jsonl`);
    appendFileSync(file, text, { mode: 0o600 });
    this.spoolBytes += text.length;
    this.counters.spooledToDisk += n;
  }

  private spoolFiles(): string[] {
    return existsSync(this.o.spoolDir) ? readdirSync(this.o.spoolDir).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort() : [];
  }

  /** XADDs batches in one pipeline; returns how many went in (in order) before the first failure. */
  private async xadd(batches: Batch[]): Promise<number> {
    const p = this.redis.pipeline();
    const stream = this.o.stream ?? RECORD_STREAM;
    for (const b of batches) p.xadd(stream, '*', ...toFields({ node: b.node, first: b.first, last: b.last, n: b.n, format: ROW_FORMAT, rows: b.rows } satisfies RecordBatch));
    const res = (await p.exec()) ?? [];
    let ok = 0;
    while (ok < batches.length && res[ok] && !res[ok]![0]) ok++;
    if (ok < batches.length) throw Object.assign(new Error(String(res[ok]?.[0] ?? 'pipeline aborted')), { sent: ok });
    return ok;
  }

  /** One send round: the disk spool first (oldest), then memory. */
  async send(final = false): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      if (final || this.open.length) this.seal();
      if (this.redis.status !== 'ready') return;
      for (const f of this.spoolFiles()) {
        const path = join(this.o.spoolDir, f);
        const batches = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Batch);
        await this.xadd(batches);
        this.counters.published += batches.reduce((s, b) => s + b.n, 0);
        this.spoolBytes -= statSync(path).size;
        unlinkSync(path);
      }
      while (this.memory.length) {
        // taken out of the memory spool while in flight: a spill to disk meanwhile must not take them too
        const chunk = this.memory.splice(0, this.o.pipelineEntries);
        const chunkRecords = chunk.reduce((s, b) => s + b.n, 0);
        this.memoryRecords -= chunkRecords;
        this.inFlight = chunkRecords;
        let sent = 0;
        try {
          sent = await this.xadd(chunk);
        } catch (e) {
          sent = (e as { sent?: number }).sent ?? 0;
          throw e;
        } finally {
          this.inFlight = 0;
          const rest = chunk.slice(sent);
          const n = chunkRecords - rest.reduce((s, b) => s + b.n, 0);
          this.counters.published += n;
          // what did not go out goes back in front, in order
          this.memory.unshift(...rest);
          this.memoryRecords += chunkRecords - n;
        }
      }
    } catch (e) {
      this.counters.redisErrors++;
      this.lastError = (e as Error).message;
    } finally {
      this.sending = false;
    }
  }

  /** A liveness entry on a capped stream; skipped (not spooled) while Redis is away. */
  async heartbeat(stream: string, fields: string[]): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.xadd(stream, 'MAXLEN', '~', String(HEARTBEAT_MAXLEN), '*', ...fields);
  }

  get error(): string {
    return this.lastError;
  }

  /** Sends what it can within `waitMs`, spools the rest to disk, disconnects. */
  async close(waitMs = 2000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const until = Date.now() + waitMs;
    do {
      while (this.sending) await new Promise((r) => setTimeout(r, 10));
      await this.send(true);
      if (!this.memory.length && !this.spoolFiles().length) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < until);
    while (this.memory.length) this.spillToDisk(); // kept for the next run
    this.redis.disconnect();
  }
}
