/**
 * Publishes per-packet records to a Redis stream in pipelined batches. While Redis cannot be
 * reached, refuses writes (maxmemory) or holds more than maxStreamEntries entries that nobody
 * has consumed yet (backpressure: the ingest is behind), records wait in a bounded spool: memory
 * first (maxMemoryBytes), then files on disk (maxSpoolBytes), sent oldest first when Redis takes
 * them again. What does not fit is dropped and counted (`overflow`), never silently. A stream
 * entry holds one batch (protocol/redis.ts RecordBatch: the records in the binary format of
 * protocol/records-binary.ts, each flow's addresses once per entry). With a Redis user of its own (observer_users), every entry
 * this observer adds is signed (protocol/entry-mac.ts), so the manager knows it is this node's.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { TlsFiles } from '../conf/tls.js';
import { HEARTBEAT_MAXLEN, RECORD_STREAM, recordStream, shardOf, toFields, type RecordBatch } from '../protocol/redis.js';
import { ROW_FORMAT, encodeRows, flowId, type PacketRecord } from '../protocol/records.js';
import { BINARY_FORMAT, encodeBinary, RecordFormatError } from '../protocol/records-binary.js';
import { entryKey, signFields } from '../protocol/entry-mac.js';

/** Where an observer publishes: `signEntries` when it has a Redis user of its own (redis_info observer_users). */
export interface ObserverRedis {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls?: TlsFiles;
  signEntries?: boolean;
}

export interface PublisherOptions {
  node: string;
  redis: ObserverRedis;
  stream?: string;
  /** Record streams the records are sharded into by flow (protocol/redis.ts recordStream); default 1. */
  shards?: number;
  /** Records per stream entry. */
  batchRecords: number;
  /** Stream entries per pipeline round trip. */
  pipelineEntries: number;
  /** Bytes of encoded records kept in memory while Redis is away before the oldest go to disk. */
  maxMemoryBytes: number;
  /** Directory of the disk spool. */
  spoolDir: string;
  /** Bytes the disk spool may use; records beyond it are dropped and counted. */
  maxSpoolBytes: number;
  /** Milliseconds between sends. */
  flushMs: number;
  /** Stream length (entries) beyond which nothing is added: the ingest must catch up first (0: no bound). */
  maxStreamEntries?: number;
}

export interface PublisherCounters {
  published: number;
  /** Records written to the disk spool (they are published later). */
  spooledToDisk: number;
  /** Records dropped because memory and disk spools were full. */
  overflow: number;
  redisErrors: number;
  /** Sends refused by Redis for memory (maxmemory reached): the records stayed spooled. */
  redisFull: number;
  /** Send rounds held back because the stream was at maxStreamEntries (the ingest is behind). */
  heldBack: number;
  /** Records written to the disk spool at stop (sent at the next start). */
  spooledAtStop: number;
  /** Spool file lines that did not parse (cut short by a crash or a full disk): skipped. */
  spoolCorrupt: number;
}

/**
 * A sealed entry, and its shard (absent in spool files of before shards: 0): its records in the
 * binary format (`records`), or as text rows (`rows`: spool files of before it, or a batch the
 * binary format cannot hold).
 */
type Batch = Omit<RecordBatch, 'format' | 'rows'> & { shard?: number; rows?: string; records?: Buffer };
/** A batch's size in the memory spool. */
const bytesOf = (b: Batch): number => b.records?.length ?? b.rows!.length;
/** Spool files hold a binary batch's records as base64. */
type SpooledBatch = Omit<Batch, 'records'> & { records64?: string };

export class RecordPublisher {
  private readonly redis: Redis;
  private memory: Batch[] = [];
  /** Records not yet sealed into an entry, per shard. */
  private open: PacketRecord[][];
  private openRecords = 0;
  private readonly shards: number;
  private memoryRecords = 0;
  private memoryBytes = 0;
  /** The stream was at its bound at the last look (backpressure). */
  private held = false;
  /** Records of the batches being sent right now (out of `memory` until they are sent or put back). */
  private inFlight = 0;
  private timer?: NodeJS.Timeout;
  private sending = false;
  private spoolBytes = 0;
  private spoolSeq = 0;
  private lastError = '';
  private readonly signKey?: Buffer;
  readonly counters: PublisherCounters = { published: 0, spooledToDisk: 0, overflow: 0, redisErrors: 0, redisFull: 0, heldBack: 0, spooledAtStop: 0, spoolCorrupt: 0 };

  constructor(private readonly o: PublisherOptions) {
    this.shards = Math.max(1, o.shards ?? 1);
    this.open = Array.from({ length: this.shards }, () => []);
    const { host, port, username, password, tls, signEntries } = o.redis;
    if (signEntries && !password) throw new Error('redis_info.yaml: observer_users: 1 needs this observer\'s password (the manager writes it)');
    this.signKey = signEntries ? entryKey(password!) : undefined;
    // No offline queue: a command while disconnected fails at once, and its records stay spooled.
    // No INFO ready check nor CLIENT SETINFO: an observer's own user may only add entries.
    this.redis = new Redis({
      host, port, ...(username ? { username } : {}), password, ...(tls ? { tls } : {}),
      lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: (n) => Math.min(100 * n, 1000), enableReadyCheck: false, disableClientInfo: true,
    });
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
    const k = this.shards > 1 ? shardOf(flowId(r.flow), this.shards) : 0;
    const open = this.open[k]!;
    open.push(r);
    this.openRecords++;
    if (open.length >= this.o.batchRecords) this.seal(k);
  }

  /** Records waiting to be published (memory and disk). */
  get backlog(): { memory: number; memoryBytes: number; diskBytes: number; heldBack: boolean } {
    return { memory: this.memoryRecords + this.inFlight + this.openRecords, memoryBytes: this.memoryBytes, diskBytes: this.spoolBytes, heldBack: this.held };
  }

  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /** Seals a shard's open records into an entry (every shard's: no argument). */
  private seal(shard?: number): void {
    if (shard === undefined) {
      for (let k = 0; k < this.shards; k++) this.seal(k);
      return;
    }
    const recs = this.open[shard]!;
    if (!recs.length) return;
    this.open[shard] = [];
    this.openRecords -= recs.length;
    const b: Batch = { node: this.o.node, first: recs[0]!.observerSeq, last: recs[recs.length - 1]!.observerSeq, n: recs.length, shard };
    try {
      b.records = encodeBinary(recs);
    } catch (e) {
      // a record the binary layout cannot hold (over 255 device hops): the batch goes as text rows, which every reader takes
      if (!(e instanceof RecordFormatError)) throw e;
      b.rows = encodeRows(recs);
    }
    this.memory.push(b);
    this.memoryRecords += b.n;
    this.memoryBytes += bytesOf(b);
    if (this.memoryBytes > this.o.maxMemoryBytes) this.spillToDisk();
  }

  /** Moves the older half of the memory spool (all of it: `all`) to a disk file, or counts it lost if the disk spool is full. */
  private spillToDisk(all = false): number {
    const k = all ? this.memory.length : Math.max(1, Math.floor(this.memory.length / 2));
    const old = this.memory.splice(0, k);
    const n = old.reduce((s, b) => s + b.n, 0);
    this.memoryRecords -= n;
    this.memoryBytes -= old.reduce((s, b) => s + bytesOf(b), 0);
    if (!n) return 0;
    // a line per batch, written as it is made: a spill of the whole memory spool (32 MB at a
    // stop) never has its text in memory at once (as one string it tripled the spool in RSS)
    const file = join(this.o.spoolDir, `${String(++this.spoolSeq).padStart(12, '0')}.jsonl`);
    let fd: number | undefined;
    let written = 0;
    try {
      for (const { records, ...b } of old) {
        const line = `${JSON.stringify(records ? ({ ...b, records64: records.toString('base64') } satisfies SpooledBatch) : b)}\n`;
        if (this.spoolBytes + line.length > this.o.maxSpoolBytes) break; // the disk spool is full: the rest is lost, counted below
        fd ??= openSync(file, 'a', 0o600);
        writeSync(fd, line);
        this.spoolBytes += line.length;
        written += b.n;
      }
    } catch (e) {
      // a full or read-only disk: what was not written is lost, counted, said
      this.lastError = `spool ${file}: ${(e as Error).message}`;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.counters.overflow += n - written;
    this.counters.spooledToDisk += written;
    return written;
  }

  private spoolFiles(): string[] {
    return existsSync(this.o.spoolDir) ? readdirSync(this.o.spoolDir).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort() : [];
  }

  /** An entry's fields as added: signed when this observer has a user of its own. */
  private signed<F extends string | Buffer = string>(fields: F[]): (F | string)[] {
    return this.signKey ? signFields(this.signKey, fields) : fields;
  }

  /** XADDs batches in one pipeline; returns how many went in (in order) before the first failure. */
  private async xadd(batches: Batch[]): Promise<number> {
    const p = this.redis.pipeline();
    const base = this.o.stream ?? RECORD_STREAM;
    for (const b of batches) {
      const head = toFields({ node: b.node, first: b.first, last: b.last, n: b.n, format: b.records ? BINARY_FORMAT : ROW_FORMAT });
      p.xadd(recordStream(Math.min(b.shard ?? 0, this.shards - 1), this.shards, base), '*', ...this.signed<string | Buffer>([...head, ...(b.records ? ['records', b.records] : ['rows', b.rows!])]));
    }
    const res = (await p.exec()) ?? [];
    let ok = 0;
    while (ok < batches.length && res[ok] && !res[ok]![0]) ok++;
    if (ok < batches.length) throw Object.assign(new Error(String(res[ok]?.[0] ?? 'pipeline aborted')), { sent: ok });
    return ok;
  }

  /** Whether the stream may grow (backpressure); counts the rounds held back. */
  private async roomInStream(): Promise<boolean> {
    if (!this.o.maxStreamEntries) return true;
    // the fullest shard decides: its consumer is the one behind
    const base = this.o.stream ?? RECORD_STREAM;
    let most = 0;
    for (let k = 0; k < this.shards; k++) most = Math.max(most, await this.redis.xlen(recordStream(k, this.shards, base)));
    this.held = most >= this.o.maxStreamEntries;
    if (this.held) this.counters.heldBack++;
    return !this.held;
  }

  /** One send round: the disk spool first (oldest), then memory, while the stream has room. */
  async send(final = false): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      if (final || this.openRecords) this.seal();
      if (this.redis.status !== 'ready') return;
      for (const f of this.spoolFiles()) {
        if (!(await this.roomInStream())) return;
        const path = join(this.o.spoolDir, f);
        const batches: Batch[] = [];
        for (const line of readFileSync(path, 'utf8').split('\n'))
          if (line)
            try {
              const { records64, ...b } = JSON.parse(line) as SpooledBatch;
              batches.push(records64 === undefined ? b : { ...b, records: Buffer.from(records64, 'base64') });
            } catch {
              this.counters.spoolCorrupt++; // a line cut short by a crash or a full disk
            }
        if (batches.length) await this.xadd(batches);
        this.counters.published += batches.reduce((s, b) => s + b.n, 0);
        this.spoolBytes -= statSync(path).size;
        unlinkSync(path);
      }
      while (this.memory.length && (await this.roomInStream())) {
        // taken out of the memory spool while in flight: a spill to disk meanwhile must not take them too
        const chunk = this.memory.splice(0, this.o.pipelineEntries);
        const chunkRecords = chunk.reduce((s, b) => s + b.n, 0);
        const chunkBytes = chunk.reduce((s, b) => s + bytesOf(b), 0);
        this.memoryRecords -= chunkRecords;
        this.memoryBytes -= chunkBytes;
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
          this.memoryBytes += rest.reduce((s, b) => s + bytesOf(b), 0);
        }
      }
    } catch (e) {
      this.lastError = (e as Error).message;
      // maxmemory with noeviction: Redis keeps what it has and refuses more; ours wait spooled
      if (/\bOOM\b/.test(this.lastError)) this.counters.redisFull++;
      else this.counters.redisErrors++;
    } finally {
      this.sending = false;
    }
  }

  /** An entry on a capped stream (not the records); false, and nothing sent, while Redis is away or refuses it. */
  async sendCapped(stream: string, maxLen: number, fields: string[]): Promise<boolean> {
    if (this.redis.status !== 'ready') return false;
    try {
      await this.redis.xadd(stream, 'MAXLEN', '~', String(maxLen), '*', ...this.signed(fields));
      return true;
    } catch (e) {
      this.lastError = (e as Error).message;
      return false;
    }
  }

  /** A liveness entry on a capped stream; skipped (not spooled) while Redis is away. */
  async heartbeat(stream: string, fields: string[]): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.xadd(stream, 'MAXLEN', '~', String(HEARTBEAT_MAXLEN), '*', ...this.signed(fields));
  }

  get error(): string {
    return this.lastError;
  }

  /**
   * Sends what it can within `waitMs`, spools the rest to disk for the next start, disconnects.
   * Returns the records spooled. A Redis that does not answer holds it no longer than waitMs.
   */
  async close(waitMs = 2000): Promise<number> {
    if (this.timer) clearInterval(this.timer);
    const until = Date.now() + waitMs;
    const left = () => Math.max(0, until - Date.now());
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    this.seal();
    while (left() > 0 && (this.memory.length || this.spoolFiles().length || this.sending)) {
      if (!this.sending) await Promise.race([this.send(true), sleep(left())]);
      else await sleep(Math.min(10, left()));
      if (this.memory.length && this.redis.status !== 'ready') await sleep(Math.min(50, left()));
    }
    // a send still hanging fails now and puts its batches back, so they are spooled, not lost
    this.redis.disconnect();
    for (let i = 0; this.sending && i < 100; i++) await sleep(10);
    const spooled = this.spillToDisk(true);
    this.counters.spooledAtStop += spooled;
    return spooled;
  }
}
