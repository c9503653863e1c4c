/**
 * The stream stage (issue 22): the records stream analyzed as it arrives, without a row per
 * record in MySQL. Each step reads the entries that came since the last one (up to maxRecords
 * records), decodes their rows in memory, joins them with the records still waiting from earlier
 * steps, and merges the statistics, unmatched counts, flows and spikes into the stored windows
 * (analyzer/analyze.ts Run.process, the same code as the batch analysis, so the answers agree).
 *
 * Exactly once without a row per record: the step's results, the last entry id it covered and
 * the records still waiting commit in one MariaDB transaction (stream_checkpoints, and
 * stream_waiting in parts of a few MB, so no value nears max_allowed_packet). Entries are
 * acknowledged and deleted after that commit. A worker that dies before it is replayed from the
 * stored checkpoint: its entries are still pending in Redis, those up to last_id are already in
 * the results and are only acknowledged, and the waiting records come back from the checkpoint.
 * With a backlog, a few steps hold their results and commit together (commitSteps, HeldSteps):
 * their entries stay pending until then, so a worker that dies holding them loses nothing.
 *
 * One worker owns a stream at a time: the lease is a MariaDB named lock held on the worker's
 * own connection, so it ends with the worker (its connection closes) and another takes the
 * stream over, with the pending entries of the one that died.
 *
 * Raw rows are optional: `rawSampleRate` keeps a deterministic share of samples in packets
 * (both ends of a sample together, chosen by a hash of flow and sample), and the records of every
 * exemplar path (the spikes) are kept with it, so spike reports and host events still find them.
 */
import { Readable } from 'node:stream';
import type { Cluster, Redis } from 'ioredis';
import { connectionBeside, type Connection, type Pool } from '../../db/pool.js';
import { ensureServers } from '../../db/servers.js';
import { BAD_RECORD_MAXLEN, BAD_RECORD_STREAM, bufferField, bufferFields, readGroupBuffers, RECORD_STREAM, type BufferEntry } from '../../protocol/redis.js';
import { flowId, ROW, ROW_COLUMNS, ROW_FORMAT } from '../../protocol/records.js';
import { BINARY_FORMAT, entryFlows, MAX_ENTRY_BYTES, openBinary, type BinaryEntry } from '../../protocol/records-binary.js';
import type { EntryVerifier } from '../../protocol/entry-mac.js';
import { DEFAULT_ANALYSIS, Held, loadRunInputs, Run, type AnalyzeOptions, type AnalyzeResult, type FlowRow, type RunInputs } from '../analyze.js';
import { RecordColumns, type FlowEnds } from '../paths.js';
import * as store from '../store.js';

export const ANALYSIS_GROUP = 'latscope-analysis';
/**
 * Records per step by default (analysis_info.yaml step_records). Over 10 M records with 2
 * workers (bench/analyze), 250k-record steps ran as fast as 500k ones (772k-806k vs 760k
 * records/s) with a fifth less peak memory (841 vs 969-1041 MB). Smaller steps leave more records
 * waiting when one server's records come long before its peers' (a backlog replayed); the
 * checkpoint stores them in parts (stream_waiting).
 */
export const DEFAULT_STEP_RECORDS = 250_000;
/** Records that may wait for their other end by default (analysis_info.yaml max_waiting). */
export const DEFAULT_MAX_WAITING = 200_000;
/**
 * Steps per commit at most, by default (analysis_info.yaml commit_steps): with a backlog (a step
 * that reads its maxRecords), a step holds its results for the next one, and every commit_steps
 * steps they commit together. Over 6 M records (bench/analyze, 2 steps a round there), 832k-863k
 * records/s against 780k-785k with a commit every step; MariaDB's CPU 0.11 against 0.17 µs a record.
 */
export const DEFAULT_COMMIT_STEPS = 4;
/** How long a step's results may be held, at most: they show in MariaDB within about that. */
const MAX_HOLD_MS = 5_000;
/** The largest rows body an entry may carry (as large as a binary entry may be). */
const MAX_BODY = MAX_ENTRY_BYTES;

export interface StreamStageOptions extends Omit<AnalyzeOptions, 'maxRecords'> {
  /** The records stream (one shard); default latscope:records. */
  stream?: string;
  group?: string;
  /** This worker's name in the group. */
  consumer: string;
  /** Entries per read. */
  entriesPerRead?: number;
  /** Records per step at most (memory bound; a step is one transaction). */
  maxRecords?: number;
  /** Milliseconds the first read of a step waits for new entries. */
  blockMs?: number;
  /** Share of samples whose raw records are kept in packets (0: none, 1: all). */
  rawSampleRate?: number;
  /** Records that may wait for their other end between steps; beyond, the oldest are counted (evicted) and dropped. */
  maxWaiting?: number;
  /** Steps per commit at most while there is a backlog (1: every step commits). */
  commitSteps?: number;
  /** A line per step (what it read, joined and how long it took); `log` gets the events only (takeovers, errors). */
  stepLog?: (line: string) => void;
  /** With observer users: every entry must be signed by the node it names (else set aside, counted in forgedEntries). */
  verify?: EntryVerifier;
}

export interface StreamCounters {
  steps: number;
  entries: number;
  records: number;
  paths: number;
  unmatched: number;
  /** Records with no time at any layer: counted, kept out. */
  unusable: number;
  /** Entries that are not well-formed record batches: acknowledged, counted, copied to BAD_RECORD_STREAM. */
  badEntries: number;
  /** Entries delivered again that the stored checkpoint already covers: acknowledged, not counted again. */
  replayed: number;
  /** Waiting records pushed out by maxWaiting. */
  evicted: number;
  /** Entries not signed by the node they name (observer users): set aside in latscope:records:bad. */
  forgedEntries: number;
  rawRows: number;
  /** Records waiting for their other end now. */
  waiting: number;
  /** Records of steps that hold their results now (analyzed, not committed yet: see HeldSteps). */
  held: number;
}

export interface StepResult {
  entries: number;
  records: number;
  paths: number;
  ms: number;
}

/** How long a stage reuses the clock timelines and server addresses it read. */
const INPUTS_MAX_AGE_MS = 10_000;
/** The last step queued on each pool (steps of one pool run one after the other). */
const stepChain = new WeakMap<Pool, Promise<void>>();
interface Waiting {
  server: number;
  since: number;
  raw: string;
  /** Its slot in the step's columns (bounded() to carry()). */
  slot?: number;
}

/**
 * The waiting records as columns, in the order of StreamStage.waiting, each server's times
 * relative to its clock base then: the next step copies them in (a line each is written for the
 * checkpoint, but not read back and parsed again every step).
 */
interface Carried {
  records: RecordColumns;
  bases: Map<number, bigint>;
}

/**
 * Steps that did not commit (a backlog: see DEFAULT_COMMIT_STEPS): their results, the run they
 * share (one timeline base, one clock per server), and what they read, acknowledged only when
 * their results commit. Lost with the process or an error: the entries are still pending in
 * Redis, and run again from the stored checkpoint.
 */
interface HeldSteps {
  run: Run;
  results: Held;
  steps: number;
  since: number;
  /** The newest entry id read. */
  newest: string;
  acked: string[];
  bad: (string | Buffer)[][];
  /** What the counters add when they commit. */
  counts: Pick<StreamCounters, 'entries' | 'records' | 'paths' | 'unmatched' | 'unusable' | 'badEntries' | 'forgedEntries'>;
}

/** Stream ids compared as (ms, seq). */
export function idAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am > bm || (am === bm && as > bs);
}

/** Whether a sample's raw records are kept: a hash of flow and sample below the rate (both ends agree). */
export function keepRaw(flow: number, sampleSeq: number, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  let h = Math.imul((flow % 4294967296) ^ Math.imul(sampleSeq, 0x9e3779b1), 0x85ebca6b) ^ Math.floor(flow / 4294967296);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296 < rate;
}

export class StreamStage {
  readonly counters: StreamCounters = { steps: 0, entries: 0, records: 0, paths: 0, unmatched: 0, unusable: 0, badEntries: 0, replayed: 0, evicted: 0, forgedEntries: 0, rawRows: 0, waiting: 0, held: 0 };
  private readonly o: Required<Omit<StreamStageOptions, 'log' | 'verify'>> & { log: (l: string) => void; verify?: EntryVerifier };
  /** The lease: a connection of its own holding the stream's named lock. */
  private lease?: Connection;
  private lastId = '0-0';
  private waiting: Waiting[] = [];
  /** The waiting records as columns, when the last step of this process left them (not after a takeover). */
  private carried?: Carried;
  /** Results of steps not committed yet (dropped with the lease: they run again from the checkpoint). */
  private held?: HeldSteps;
  /** The last step failed: the next one starts from the stored checkpoint. */
  private failed = false;
  /** The records of a step, kept for the next one (see stepOn). */
  private columns?: RecordColumns;
  private readonly flowEnds = new Map<number, FlowEnds>();
  private inputs?: RunInputs & { at: number };
  private readonly serverIds = new Map<string, number>();
  /** Our own pending entries are read first (after a start or a takeover), then new ones. */
  private backlog = true;
  private stopping = false;
  private running?: Promise<void>;
  /**
   * The next step's entries, read while this step waits for its turn at the merge and for
   * MariaDB (the core is idle then). Entries read are pending for this consumer in Redis, so
   * one that is dropped here (a lease given back) is taken over like any other.
   */
  private ahead?: Promise<BufferEntry[]>;
  /** A connection of its own for the blocking reads of start() (a blocked connection delays every other command on it). */
  private reader?: Redis | Cluster;

  constructor(
    /** One Redis, or a Redis Cluster holding the shards. */
    private readonly redis: Redis | Cluster,
    private readonly pool: Pool,
    o: StreamStageOptions,
  ) {
    this.o = {
      ...DEFAULT_ANALYSIS, stream: RECORD_STREAM, group: ANALYSIS_GROUP, entriesPerRead: 64, maxRecords: DEFAULT_STEP_RECORDS, blockMs: 1000, rawSampleRate: 0, maxWaiting: DEFAULT_MAX_WAITING, commitSteps: DEFAULT_COMMIT_STEPS,
      log: () => {}, stepLog: () => {},
      ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
    } as unknown as StreamStage['o'];
  }

  get lockName(): string {
    return `latscope.stream:${this.o.stream}`.slice(0, 64);
  }

  get owns(): boolean {
    return this.lease !== undefined;
  }

  /**
   * Takes the stream's lease (waiting up to waitS seconds); then takes over what a worker that
   * held it before left pending, and loads the checkpoint. False: another worker holds it.
   */
  async acquire(waitS = 0): Promise<boolean> {
    if (this.lease) return true;
    const conn = await connectionBeside(this.pool);
    conn.on('error', () => {}); // a lost lease shows at the next step (its lock is gone with it)
    try {
      if (!(await store.getLock(conn, this.lockName, waitS))) {
        await conn.end().catch(() => {});
        return false;
      }
    } catch (e) {
      conn.destroy();
      throw e;
    }
    this.lease = conn;
    this.ahead = undefined; // read again from our pending entries below
    try {
      try {
        await this.redis.xgroup('CREATE', this.o.stream, this.o.group, '0', 'MKSTREAM');
      } catch (e) {
        if (!/BUSYGROUP/.test((e as Error).message)) throw e;
      }
      // the one that held the lease before is gone: its pending entries are ours now
      let cursor = '0-0';
      do {
        const [next] = (await this.redis.xautoclaim(this.o.stream, this.o.group, this.o.consumer, 0, cursor, 'COUNT', 1000, 'JUSTID')) as [string, string[]];
        cursor = next;
      } while (cursor !== '0-0');
      await this.restore();
      this.o.log(`stream ${this.o.stream}: taken by ${this.o.consumer} at ${this.lastId}, ${this.waiting.length} records waiting`);
      return true;
    } catch (e) {
      await this.release();
      throw e;
    }
  }

  /**
   * The stored checkpoint as this worker's state (after a takeover, or a step that failed): its
   * position and waiting records, nothing held, and our pending entries read again from the first.
   */
  private async restore(): Promise<void> {
    // entries a read ahead takes become ours and pending: read with the others below
    await this.ahead;
    this.ahead = undefined;
    const cp = await store.checkpoint(this.pool, this.o.stream);
    this.lastId = cp?.last_id ?? '0-0';
    this.waiting = (await store.checkpointWaiting(this.pool, this.o.stream)).flatMap((part) => parseWaiting(part.toString('latin1')));
    this.carried = undefined;
    this.held = undefined;
    this.counters.waiting = this.waiting.length;
    this.counters.held = 0;
    this.backlog = true;
    this.failed = false;
  }

  /** Gives the lease back (the checkpoint stays; another worker continues from it). */
  async release(): Promise<void> {
    const c = this.lease;
    this.lease = undefined;
    this.ahead = undefined;
    this.held = undefined; // their entries are still pending: whoever takes the stream runs them again
    if (!c) return;
    await store.releaseLock(c, this.lockName).catch(() => {});
    await c.end().catch(() => c.destroy());
  }

  /** Reads up to maxRecords records' entries: our own pending ones first (paged by id), then new ones. */
  private async read(block: boolean): Promise<BufferEntry[]> {
    const out: BufferEntry[] = [];
    let records = 0;
    // (our pending entries that steps hold are not read again: they are still pending until their commit)
    let cursor = this.held?.newest ?? '0';
    for (;;) {
      const args: (string | number)[] = ['GROUP', this.o.group, this.o.consumer, 'COUNT', this.o.entriesPerRead];
      if (!this.backlog && block && out.length === 0) args.push('BLOCK', this.o.blockMs);
      const got = await readGroupBuffers((block && this.reader) || this.redis, args, this.o.stream, this.backlog ? cursor : '>');
      if (!got.length) {
        if (!this.backlog) return out;
        this.backlog = false;
        continue;
      }
      out.push(...got);
      if (this.backlog) cursor = got[got.length - 1]![0];
      for (const [, f] of got) records += Number(bufferField(f, 'n') ?? 0);
      if (records >= this.o.maxRecords) return out;
    }
  }

  /**
   * One step: what the stream holds now (waiting up to blockMs for the first entry when `block`)
   * is analyzed and committed with the checkpoint, then acknowledged.
   */
  async step(block = false, o: { final?: boolean } = {}): Promise<StepResult> {
    if (!this.lease) throw new Error(`stream ${this.o.stream}: this worker does not hold its lease (acquire first)`);
    // a step failed (its transaction rolled back, or what it held is half added to): what it
    // and the steps it held read is run again from the checkpoint
    if (this.failed) await this.restore();
    const t0 = Date.now();
    const ahead = this.ahead;
    this.ahead = undefined;
    let entries = ahead ? await ahead : [];
    try {
      if (!entries.length) entries = await this.read(block);
    } catch (e) {
      this.failed = true; // it may have taken entries: they are pending, read again from the first
      throw e;
    }
    const readMs = Date.now() - t0;
    // read on while this step waits (not our own pending ones: they are this step's until
    // acknowledged); a read that fails may have taken some entries: the next step reads our
    // pending ones first, and the error shows there if it lasts
    if (entries.length && !this.backlog && !this.stopping)
      this.ahead = this.read(false).catch(() => {
        this.backlog = true;
        return [];
      });
    // one step at a time per pool: a step holds a connection for its transaction and takes more
    // meanwhile, so steps of several shards at once could hold every connection and wait forever
    const before = stepChain.get(this.pool) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    stepChain.set(this.pool, before.then(() => mine));
    await before;
    try {
      return await this.stepOn(entries, o, readMs);
    } catch (e) {
      this.failed = true;
      throw e;
    } finally {
      this.columns?.clear(); // its records' entries need not stay in memory until the next step
      done();
    }
  }

  private async stepOn(entries: BufferEntry[], o: { final?: boolean }, readMs: number): Promise<StepResult> {
    const t0 = Date.now();
    const tRead = t0;
    // records waiting are joined again when one's grace has passed, and when the clock rounds are
    // read again: a pair that waits for a round after it is made once that round is in, not only
    // when the next entries come (a quiet fleet) or its grace is over
    const held = this.held;
    const inputsStale = !this.inputs || t0 - this.inputs.at > INPUTS_MAX_AGE_MS;
    const due = o.final || inputsStale ? this.waiting.length > 0 : this.waiting.some((w) => t0 - w.since >= this.o.graceMs);
    if (!entries.length && !due && !held) return { entries: 0, records: 0, paths: 0, ms: Date.now() - t0 };
    // clock rounds come every time_interval (a minute): read them at most every 10 s, not every
    // step; held steps share their run (its timeline base numbers the windows they hold)
    if (inputsStale && !held) this.inputs = { at: t0, ...(await loadRunInputs(this.pool)) };
    const run = held?.run ?? (await Run.open(this.pool, this.o, this.o.stepLog, this.flowEnds, this.inputs));
    // carried lines were checked when they came; one that no longer reads is counted, not kept
    // room for what came (the entries say how many records each holds), in the columns every step
    // uses: a step of a million records no longer allocates and zero-fills twenty arrays of a
    // million for the collector to free after it (cleared at the end of the step)
    let coming = this.waiting.length;
    for (const [, f] of entries) coming += Math.max(0, Number(bufferField(f, 'n') ?? 0) || 0);
    const need = Math.max(1024, Math.min(coming, this.waiting.length + 2 * this.o.maxRecords));
    if (!this.columns || this.columns.capacity < need) this.columns = new RecordColumns(need);
    const c = this.columns; // empty: the step before cleared it
    const from = this.carried, asColumns = from !== undefined && from.records.n === this.waiting.length;
    if (asColumns)
      for (let i = 0; i < from.records.n; i++) run.pushCarried(c, from.records, i, from.bases.get(from.records.server[i]!)!);
    else for (const w of this.waiting) if (!run.pushRow(c, w.server, c.addText(w.raw), w.raw, 0, w.raw.length, w.since)) this.counters.evicted++;
    const carried = c.n;
    const flowRows = new Map<number, FlowRow>();
    const bad: (string | Buffer)[][] = [];
    let forgedN = 0;
    const acked: string[] = [];
    let newest = held?.newest ?? this.lastId;
    const nodes = new Set<string>();
    const good: [node: string, body: string | BinaryEntry, fields: Buffer[], n: number][] = [];
    for (const [id, f] of entries) {
      acked.push(id);
      if (!idAfter(id, this.lastId)) {
        this.counters.replayed++;
        continue;
      }
      if (idAfter(id, newest)) newest = id;
      if (!f) continue; // deleted under us
      const forged = this.o.verify?.check(f);
      if (forged) {
        bad.push(['lane', 'records', 'refused', `not signed by its node: ${forged}`, ...f]);
        forgedN++;
        continue;
      }
      const body = entryBody(f);
      if (typeof body === 'string') {
        bad.push(['lane', 'records', 'refused', body, ...f]);
        continue;
      }
      nodes.add(body.node);
      good.push([body.node, body.rows ?? body.binary!, f, body.n]);
    }
    const ids = await this.ids([...nodes]);
    for (const [node, body, f, n] of good) {
      // a whole entry or none of it: a malformed line (or a wrong count) sets the entry aside
      const sid = ids.get(node)!;
      const from = c.n;
      if (typeof body !== 'string') {
        // each flow's addresses come once per entry: its id is computed once, not per record
        const flows = entryFlows(body);
        const flowIds = flows.map(flowId);
        run.pushBinary(c, sid, c.addBinary(body), body, flowIds);
        flows.forEach((fl, k) => {
          if (!flowRows.has(flowIds[k]!) && !this.flowEnds.has(flowIds[k]!)) flowRows.set(flowIds[k]!, [fl.family, fl.src, fl.sport, fl.dst, fl.dport]);
        });
        continue;
      }
      const t = c.addText(body);
      let ok = true, line = 0;
      for (let at = 0; at < body.length; line++) {
        const nl = body.indexOf('\n', at);
        ok = run.pushRow(c, sid, t, body, at, nl);
        at = nl + 1;
        if (!ok) break;
      }
      if (!ok || c.n - from !== n) {
        c.n = from;
        bad.push(['lane', 'records', 'refused', ok ? `${line} rows, ${n} counted` : `row ${line + 1} is not a record row`, ...f]);
        continue;
      }
      for (let i = from; i < c.n; i++) {
        const flow = c.flow[i]!;
        if (!flowRows.has(flow) && !this.flowEnds.has(flow)) {
          const cols = c.rawOf(i)!.split('\t', ROW.dport + 1);
          flowRows.set(flow, [+cols[ROW.family]!, cols[ROW.src]!, +cols[ROW.sport]!, cols[ROW.dst]!, +cols[ROW.dport]!]);
        }
      }
    }
    const freshN = c.n - carried;
    const tDecoded = Date.now();
    const result = emptyResult();
    // a backlog (the step read its fill): its results wait for the next step's, up to commitSteps
    // steps and MAX_HOLD_MS (a step that holds when another worker is merging, rather than wait
    // for its turn, measured no faster in bench/analyze)
    const hold = !o.final && !this.stopping && freshN >= this.o.maxRecords && (held?.steps ?? 0) + 1 < this.o.commitSteps && t0 - (held?.since ?? t0) < MAX_HOLD_MS;
    const results = held?.results ?? (hold ? new Held({ windowNs: this.o.windowNs, filterRetrans: this.o.filterRetrans }) : undefined);
    let pendingOut: Waiting[] = [];
    const done = await run.process(
      {
        records: c, fresh: carried, last: true, graceMs: o.final ? 0 : undefined, flowRows, keepPaths: 'exemplars', ownsFlows: true,
        held: results,
        hold: hold ? (pending) => void (pendingOut = this.bounded(c, pending)) : undefined,
        beforeCommit: (kept) => this.writeRaw(c, carried, kept),
        commitWith: async (conn, pending) => {
          pendingOut = this.bounded(c, pending);
          const lines = pendingOut.map((w) => `${w.server}\t${w.since}\t${w.raw}\n`);
          await store.saveCheckpoint(conn, this.o.stream, newest, lines, freshN + (held?.counts.records ?? 0));
        },
      },
      result,
    );
    this.waiting = pendingOut;
    this.carried = carry(c, pendingOut, run);
    const counts: HeldSteps['counts'] = { entries: entries.length, records: freshN, paths: done.paths, unmatched: done.unmatched, unusable: result.unusable, badEntries: bad.length - forgedN, forgedEntries: forgedN };
    const k = this.counters;
    k.steps++;
    k.waiting = this.waiting.length;
    const log = (what: string) => this.o.stepLog(`stream ${this.o.stream}: ${entries.length} entries, ${freshN} records (+${carried} waiting, carried as ${asColumns ? 'columns' : 'lines'}): read ${readMs} ms, decode ${tDecoded - tRead} ms, the rest ${Date.now() - tDecoded} ms; ${what}`);
    if (hold) {
      const h = (this.held ??= { run, results: results!, steps: 0, since: t0, newest, acked: [], bad: [], counts: { entries: 0, records: 0, paths: 0, unmatched: 0, unusable: 0, badEntries: 0, forgedEntries: 0 } });
      h.steps++;
      h.newest = newest;
      h.acked.push(...acked);
      h.bad.push(...bad);
      for (const key of Object.keys(counts) as (keyof typeof counts)[]) h.counts[key] += counts[key];
      k.held = h.counts.records;
      log(`held (${h.steps} step${h.steps > 1 ? 's' : ''} since the last commit)`);
      return { entries: entries.length, records: freshN, paths: done.paths, ms: Date.now() - t0 };
    }
    // committed (with the steps held): now their entries may go
    this.held = undefined;
    k.held = 0;
    this.lastId = newest;
    const allAcked = held ? [...held.acked, ...acked] : acked;
    // set aside first, then acknowledged: on a Redis Cluster the two streams live on different
    // nodes, so they cannot share a transaction (a crash between only sets one aside twice)
    for (const f of held ? [...held.bad, ...bad] : bad) await this.redis.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', ...f);
    if (allAcked.length) {
      const tx = this.redis.multi();
      for (let i = 0; i < allAcked.length; i += 1000) {
        const part = allAcked.slice(i, i + 1000);
        tx.xack(this.o.stream, this.o.group, ...part).xdel(this.o.stream, ...part);
      }
      await tx.exec();
    }
    log(held ? `committed with ${held.steps} step${held.steps > 1 ? 's' : ''} held` : 'committed');
    for (const key of Object.keys(counts) as (keyof typeof counts)[]) k[key] += counts[key] + (held?.counts[key] ?? 0);
    return { entries: entries.length, records: freshN, paths: done.paths, ms: Date.now() - t0 };
  }

  /** Steps until a step finds nothing new (for tests and benchmarks); returns the records analyzed. */
  async drain(): Promise<number> {
    let n = 0;
    for (;;) {
      const r = await this.step(false);
      n += r.records;
      if (!r.entries) return n;
    }
  }

  /**
   * Drains, then settles every record still waiting (as if the grace period had passed): the
   * end of a data set (tests, benchmarks, a fleet that stopped collecting).
   */
  async finish(): Promise<number> {
    this.inputs = undefined; // the end of the data: settle with the newest clock rounds
    const n = await this.drain();
    if (this.waiting.length) await this.step(false, { final: true });
    return n;
  }

  /** Runs steps until stop(): takes the lease when it is free, and keeps trying while another worker holds it. */
  start(): void {
    this.stopping = false;
    this.running ??= (async () => {
      this.reader = this.redis.duplicate();
      let wait = 500;
      while (!this.stopping) {
        try {
          if (!this.lease && !(await this.acquire(1))) continue;
          await this.step(true);
          wait = 500;
        } catch (e) {
          this.o.log(`stream ${this.o.stream}: ${(e as Error).message}; retrying in ${wait} ms`);
          await this.release();
          await new Promise((r) => setTimeout(r, wait));
          wait = Math.min(wait * 2, 10_000);
        }
      }
      // steps held commit before the lease goes (else the next owner runs them again)
      if (this.held && this.lease) await this.step(false).catch((e) => this.o.log(`stream ${this.o.stream}: ${(e as Error).message}; what was held runs again from the checkpoint`));
      await this.release();
      this.reader.disconnect();
      this.reader = undefined;
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
  }

  /** Waiting records (slots of c) beyond maxWaiting: the oldest go, counted. */
  private bounded(c: RecordColumns, pending: number[]): Waiting[] {
    const now = Date.now();
    // a copy of each line: a slice would keep its whole stream entry alive as long as it waits
    let list: Waiting[] = [];
    for (const i of pending) {
      const raw = c.rawOf(i);
      if (raw !== undefined) list.push({ server: c.server[i]!, since: Number.isNaN(c.since[i]!) ? now : c.since[i]!, raw: Buffer.from(raw, 'latin1').toString('latin1'), slot: i });
    }
    if (list.length > this.o.maxWaiting) {
      list.sort((a, b) => a.since - b.since);
      this.counters.evicted += list.length - this.o.maxWaiting;
      list = list.slice(list.length - this.o.maxWaiting);
    }
    return list;
  }

  /**
   * The sampled share of the new records (slots from `fresh` on) and both records of every
   * exemplar path (`kept` slots), into packets (idempotent: IGNORE).
   */
  private async writeRaw(c: RecordColumns, fresh: number, kept: number[]): Promise<void> {
    const lines: string[] = [];
    if (this.o.rawSampleRate > 0)
      for (let i = fresh; i < c.n; i++) if (keepRaw(c.flow[i]!, c.sampleSeq[i]!, this.o.rawSampleRate)) this.rawLine(lines, c, i);
    for (const i of kept) this.rawLine(lines, c, i);
    if (!lines.length) return;
    this.counters.rawRows += await store.loadRawRecords(this.pool, ROW_COLUMNS, () => Readable.from([Buffer.from(lines.join(''), 'latin1')]));
  }

  private rawLine(lines: string[], c: RecordColumns, i: number): void {
    const raw = c.rawOf(i);
    if (raw !== undefined) lines.push(`${c.server[i]}\t${raw}\n`);
  }

  private async ids(nodes: string[]): Promise<Map<string, number>> {
    const missing = nodes.filter((n) => !this.serverIds.has(n));
    if (missing.length) for (const [name, id] of await ensureServers(this.pool, missing)) this.serverIds.set(name, id);
    return this.serverIds;
  }
}

/**
 * A records entry's node, count and body: rows of the text format, or a checked binary entry;
 * else why it is refused (a string).
 */
function entryBody(f: Buffer[]): { node: string; n: number; rows?: string; binary?: BinaryEntry } | string {
  const m = bufferFields(f, ['node', 'n', 'format']);
  const node = m.get('node') ?? '', n = Number(m.get('n')), format = m.get('format');
  if (!/^[\w.-]{1,64}$/.test(node)) return 'no valid node';
  if (!(n >= 1)) return 'no record count';
  if (format === BINARY_FORMAT) {
    const b = bufferField(f, 'records');
    if (!b) return 'binary entry without records';
    try {
      const binary = openBinary(b);
      return binary.records === n ? { node, n, binary } : `${binary.records} records, ${n} counted`;
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (format !== ROW_FORMAT) return `format ${JSON.stringify(format)}; this latscope reads ${ROW_FORMAT} and ${BINARY_FORMAT}`;
  const rows = bufferField(f, 'rows');
  if (!rows || rows.length > MAX_BODY || rows[rows.length - 1] !== 10) return 'rows missing, too large or not ending with a newline';
  return { node, n, rows: rows.toString('latin1') };
}

/** The waiting records (slots of c) as columns for the next step, with their servers' clock bases in `run`. */
function carry(c: RecordColumns, waiting: Waiting[], run: Run): Carried | undefined {
  const records = new RecordColumns(Math.max(16, waiting.length));
  const bases = new Map<number, bigint>();
  for (const w of waiting) {
    const server = c.server[w.slot!]!, base = run.clockBase(server);
    if (base === undefined) return undefined; // not expected (its record came in this run): lines then
    bases.set(server, base);
    records.since[records.copyFrom(c, w.slot!, 0, w.raw)] = w.since;
    w.slot = undefined;
  }
  return { records, bases };
}

function parseWaiting(text: string): Waiting[] {
  const out: Waiting[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf('\t'), b = line.indexOf('\t', a + 1);
    out.push({ server: Number(line.slice(0, a)), since: Number(line.slice(a + 1, b)), raw: line.slice(b + 1) });
  }
  return out;
}

function emptyResult(): AnalyzeResult {
  return {
    batches: 0, records: 0, paths: 0, pending: 0, faults: 0, unusable: 0, spikes: 0, windows: 0, chunks: 0, elapsedMs: 0,
    unmatched: { peer_not_observed: 0, no_receiver_record: 0, no_sender_record: 0, no_clock_fit: 0 },
  };
}
