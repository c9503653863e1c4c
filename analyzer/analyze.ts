/**
 * One analysis run: the ingest batches not analyzed yet (and the records still waiting from
 * earlier runs) become paths, statistics, unmatched counts and spikes in MySQL.
 *
 * Incremental and exactly once: a batch is marked analyzed in the same transaction that writes
 * what it produced, so a retried or crashed run redoes exactly the batches that did not commit.
 * Runs are serialized by a MySQL lock, so two workers running the analysis at once produce the
 * same rows as one. Statistics are merged into the stored sketches of the windows they touch,
 * so late records land in their own window. Work goes in chunks of at most maxRecords records,
 * which bounds memory whatever the backlog.
 */
import { Readable } from 'node:stream';
import type { Pool, PoolConnection } from '../db/pool.js';
import { big } from '../db/pool.js';
import { LogHistogram } from '../lib/stats.js';
import { scannedRow, scanRow } from '../protocol/records.js';
import { HOP_BYTES, LAYER_AT, LAYER_BIT, REC, RECORD_BYTES, type BinaryEntry } from '../protocol/records-binary.js';
import { ClockTimeline, loadTimelines } from './clock.js';
import { joinColumns, PathColumns, RecordColumns, type Clock, type FlowEnds, type Rec, type UnmatchedAt, type UnmatchedReason } from './paths.js';
import { Group, WindowStats, parseGroupKey, statRows, groupKey, topSegment, type FlowWindow, type StatsOptions } from './windows.js';
import { SEGMENTS } from '../protocol/layers.js';
import { F_PATH_FAULT, F_PATH_RETRANS } from '../protocol/paths.js';
import * as store from './store.js';

export interface AnalyzeOptions {
  /** Window length, ns of the manager timeline (analysis.yaml window, default 10 s). */
  windowNs: number;
  /** How long a record waits for its other end before it counts as unmatched (ms). */
  graceMs: number;
  /** A path is a spike when its end-to-end delay exceeds this many times its window's median. */
  spikeFactor: number;
  /** Keep retransmissions out of the statistics (sampling_info filter_retrans). */
  filterRetrans: boolean;
  /** sampling_info size, for throughput (bytes per size-rule sample). */
  sampleSize: number;
  /** Records per chunk (memory bound). */
  maxRecords?: number;
  /** Spikes kept per window and pair (the largest). */
  maxSpikes?: number;
  /** A path whose clock bound exceeds this (ns) while a later time-sync round could narrow it waits for that round (within the grace period). */
  deferBoundNs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export const DEFAULT_ANALYSIS = { windowNs: 10e9, graceMs: 60_000, spikeFactor: 10, maxRecords: 1_000_000, maxSpikes: 20, deferBoundNs: 100_000 } as const;

export interface AnalyzeResult {
  batches: number;
  records: number;
  paths: number;
  unmatched: Record<UnmatchedReason, number>;
  pending: number;
  faults: number;
  /** Records with no time at any layer (they cannot be placed in time): counted, and kept out of paths and statistics. */
  unusable: number;
  spikes: number;
  windows: number;
  chunks: number;
  elapsedMs: number;
}

const LOCK = 'latscope.analyze';
/** A connection that failed under a statement (reset, closed, its protocol out of step), not the statement itself. */
const connectionLost = (e: unknown): boolean => {
  const x = e as { fatal?: boolean; code?: string };
  return x.fatal === true || ['ECONNRESET', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_PACKETS_OUT_OF_ORDER'].includes(x.code ?? '');
};

/** Held while a chunk merges into the windows workers share (pair and host; all of them when its flows are not its own) and commits (workers of several shards take turns). */
const MERGE_LOCK = 'latscope.analyze.merge';
/** Per pool: whether its server can log READ COMMITTED transactions (asked once; again after an error). */
const readCommitted = new WeakMap<Pool, Promise<boolean>>();
async function readCommittedLogged(pool: Pool): Promise<void> {
  let ok = readCommitted.get(pool);
  if (!ok) readCommitted.set(pool, (ok = store.readCommittedLogged(pool).catch((e) => (readCommitted.delete(pool), Promise.reject(e)))));
  if (!(await ok))
    throw new Error("analysis: MariaDB writes its binary log in STATEMENT format, which cannot log the analysis's READ COMMITTED transactions: set binlog_format to MIXED (its default) or ROW");
}
/** MariaDB's "Deadlock found when trying to get lock". */
const ER_LOCK_DEADLOCK = 1213;
/** Flows whose stored rows a merge lists by id (beyond, it reads every row of its windows). */
const MAX_FLOWS_LISTED = 5000;
/** `groups` split into the flow-scope ones and the rest (the same Group objects). */
function splitFlowGroups(groups: Map<string, Group>): { own: Map<string, Group>; shared: Map<string, Group> } {
  const own = new Map<string, Group>(), shared = new Map<string, Group>();
  for (const [key, g] of groups) (parseGroupKey(key).scope === 'flow' ? own : shared).set(key, g);
  return { own, shared };
}
/** Columns of paths in the order analyze() writes them. */
const PATH_COLUMNS = [
  'rx_server_id', 'rx_seq', 'tx_server_id', 'tx_seq', 'src_server_id', 'dst_server_id', 'flow_id', 'sample_seq', 'attempt', 'flags', 'window_ns', 't_ns',
  'tx_sock_tcp', 'tx_tcp_ip', 'tx_ip_dev', 'tx_hops', 'wire', 'rx_hops', 'rx_dev_ip', 'rx_ip_tcp', 'rx_tcp_sock', 'one_way', 'end_to_end', 'bound_ns',
];

/** A server's clock base and its mapping onto the run's global timeline. */
interface ServerClock extends Clock {
  base: bigint;
  baseNum: number;
}

/** A server with clock rounds: its timeline, moved onto the run's base (manager time). */
class SyncedClock implements ServerClock {
  readonly synced = true;
  readonly base: bigint;
  readonly baseNum: number;
  private readonly shift: number;
  private readonly last: number;

  constructor(private readonly t: ClockTimeline, runBaseNs: bigint) {
    this.base = t.serverBaseNs;
    this.baseNum = Number(t.serverBaseNs);
    this.shift = Number(t.baseNs - runBaseNs);
    this.last = t.lastRoundNs + this.shift;
  }

  globalNs(rel: number): number {
    return this.t.managerNs(rel) + this.shift;
  }

  get lastBound(): number {
    return this.t.lastBound;
  }

  beyondLastRound(g: number): boolean {
    return g > this.last;
  }
}

/** A server with no round yet: its own clock from its first timestamp, the bound unknown (cross-server values stay empty). */
class UnsyncedClock implements ServerClock {
  readonly synced = false;
  readonly lastBound = Infinity;
  readonly baseNum: number;
  private readonly shift: number;

  constructor(readonly base: bigint, runBaseNs: bigint) {
    this.baseNum = Number(base);
    this.shift = Number(base - runBaseNs);
  }

  globalNs(rel: number): number {
    return rel + this.shift;
  }

  beyondLastRound(): boolean {
    return true;
  }
}

export async function analyze(pool: Pool, o: AnalyzeOptions): Promise<AnalyzeResult> {
  const started = Date.now();
  const opt = { ...DEFAULT_ANALYSIS, ...o };
  const log = o.log ?? (() => {});
  const result: AnalyzeResult = {
    batches: 0, records: 0, paths: 0, pending: 0, faults: 0, unusable: 0, spikes: 0, windows: 0, chunks: 0, elapsedMs: 0,
    unmatched: { peer_not_observed: 0, no_receiver_record: 0, no_sender_record: 0, no_clock_fit: 0 },
  };
  const lockConn = await pool.getConnection();
  try {
    if (!(await store.getLock(lockConn, LOCK, 300))) throw new Error('analysis: another run has held the analysis lock for more than 300 s');
    try {
      const run = await Run.open(pool, opt, log);
      let pending = await run.loadPending();
      let batches = await run.nextBatches(opt.maxRecords, 0);
      for (;;) {
        if (!batches.length && !pending.length) break;
        // a record's other end may be in the next chunk of this run: the grace period counts only at the last
        const next = batches.length ? await run.nextBatches(opt.maxRecords, batches[batches.length - 1]!) : [];
        const chunk = await run.chunk(batches, pending, result, next.length === 0);
        pending = chunk.pending;
        result.chunks++;
        if (!next.length) break;
        batches = next;
      }
      result.pending = pending.length;
    } finally {
      await store.releaseLock(lockConn, LOCK);
    }
  } finally {
    lockConn.release();
  }
  result.elapsedMs = Date.now() - started;
  return result;
}

/** A timestamp from MySQL (a number when it is a safe integer, else a string) relative to its server's clock base. */
function rel(v: number | string | null, c: ServerClock): number {
  if (v === null) return NaN;
  return typeof v === 'number' && Number.isSafeInteger(c.baseNum) ? v - c.baseNum : Number(big(v) - c.base);
}

/** What a run reads before it starts: each server's clock timeline (by server id) and the servers' addresses. */
export interface RunInputs {
  timelines: Map<number, ClockTimeline>;
  addresses: Map<string, number>;
}

/** Reads a run's inputs (every clock round: the stream stage keeps them a while rather than reading them every step). */
export async function loadRunInputs(pool: Pool): Promise<RunInputs> {
  const byName = await loadTimelines(pool);
  const timelines = new Map<number, ClockTimeline>();
  for (const s of await store.servers(pool)) {
    const t = byName.get(s.name);
    if (t) timelines.set(Number(s.id), t);
  }
  return { timelines, addresses: new Map<string, number>((await store.serverAddresses(pool)).map((r) => [r.address, Number(r.server_id)])) };
}

/** A flow's addresses, as path_flows keeps them. */
export type FlowRow = [family: number, src: string, sport: number, dst: string, dport: number];

/** What one chunk's transaction records besides its results, and where its records came from. */
export interface ChunkInput {
  /** The records: those carried over from earlier chunks first, then the new ones from `fresh` on. */
  records: RecordColumns;
  fresh: number;
  /** The grace period applies (else records wait for the next chunk of the same run). */
  last: boolean;
  /** Overrides the grace period (0: settle everything now, the end of a stream's data). */
  graceMs?: number;
  /** The addresses of the new records' flows, when the records carried them (the stream); else read from packets. */
  flowRows?: Map<number, FlowRow>;
  /** Which joined paths become rows of `paths`: all of them, or the exemplars (the spikes). */
  keepPaths: 'all' | 'exemplars';
  /** Before the commit, outside its transaction (idempotent writes): e.g. the raw rows of the kept paths' records (their slots). */
  beforeCommit?: (keptRecords: number[]) => Promise<void>;
  /** Inside the transaction: what marks the input done (batches analyzed, a stream checkpoint), with the slots of the records still waiting. */
  commitWith: (conn: PoolConnection, pending: number[]) => Promise<void>;
  /** Results of earlier chunks not committed yet (a stream stage's held steps), committed with this one's. */
  held?: Held;
  /**
   * This chunk commits nothing but the flows it learned: its results go into `held` (spikes
   * found against the medians held, without reading the stored windows), and `hold` gets the
   * slots of the records still waiting instead of commitWith.
   */
  hold?: (pending: number[]) => void;
  /**
   * No other worker writes this input's flows (the stream stage: a flow's records all go to one
   * shard, which one worker owns under its lease). Their statistics, flow windows and the input's
   * mark are then merged and written before the merge lock is taken, so that workers' merges
   * overlap except for the pair and host windows they share.
   */
  ownsFlows?: boolean;
}

/**
 * What chunks that did not commit hold for the one that does: their statistics (one WindowStats
 * every chunk adds to), unmatched records and spikes. A stream stage with a backlog commits every
 * few steps rather than every step: each window's rows are merged with the stored ones and written
 * back once for several steps, not once for each (a quarter of the stage's CPU when every step
 * committed). A chunk that fails leaves it half added to: it is then dropped with the chunks it
 * held, which run again from the last commit.
 */
export class Held {
  readonly stats: WindowStats;
  readonly unmatched: UnmatchedAt[] = [];
  readonly spikes: store.SpikeValues[] = [];
  constructor(o: StatsOptions) {
    this.stats = new WindowStats(o);
  }
}

/** A spike: path `k` of a chunk's paths, over `factor` times its window's median. */
interface Spike {
  window: number;
  k: number;
  median: number;
  top: string;
}

const NSEG = SEGMENTS.length;

export class Run {
  private readonly clocks = new Map<number, ServerClock>();

  private constructor(
    private readonly pool: Pool,
    private readonly o: Required<Omit<AnalyzeOptions, 'log'>>,
    private readonly log: (line: string) => void,
    private readonly timelines: Map<number, ClockTimeline>,
    private readonly addresses: Map<string, number>,
    /** Global base of the run: manager time, a multiple of the window. */
    readonly baseNs: bigint,
    /** Flow id -> its servers; may outlive the run (the stream stage keeps one). */
    private readonly flowEnds: Map<number, FlowEnds>,
  ) {}

  /**
   * A run over the current clock rounds and servers. `flowEnds`, when given and already filled,
   * is used as it is (the stream stage keeps it across runs); else path_flows is read into it.
   */
  static async open(pool: Pool, o: Required<Omit<AnalyzeOptions, 'log'>>, log: (l: string) => void, flowEnds = new Map<number, FlowEnds>(), inputs?: RunInputs): Promise<Run> {
    await readCommittedLogged(pool);
    const { timelines, addresses } = inputs ?? (await loadRunInputs(pool));
    // the global base: near the newest round, so every double on the timeline stays exact
    const w = BigInt(o.windowNs);
    let newest = 0n;
    for (const t of timelines.values()) {
      const last = t.baseNs + BigInt(Math.round(t.lastRoundNs));
      if (last > newest) newest = last;
    }
    const run = new Run(pool, o, log, timelines, addresses, (newest / w) * w, flowEnds);
    if (!flowEnds.size) {
      for (const f of await store.pathFlowEnds(pool)) flowEnds.set(Number(f.flow_id), { src: Number(f.src_server_id ?? 0), dst: Number(f.dst_server_id ?? 0) });
    }
    return run;
  }

  /** The clock of a server, made on first sight from its timeline (or its own first timestamp). */
  private clockOf(server: number, firstRaw: number | string | null): ServerClock {
    let c = this.clocks.get(server);
    if (c) return c;
    const t = this.timelines.get(server);
    if (t) c = new SyncedClock(t, this.baseNs);
    else c = new UnsyncedClock(firstRaw === null ? 0n : big(firstRaw), this.baseNs);
    this.clocks.set(server, c);
    return c;
  }

  /**
   * A record from a line of the observers' row format (protocol/records.ts, without server_id),
   * as the stream brings it, into `c`: the line from `from` to `to` of text `t` (c.addText; the
   * line stays its raw form, for carrying and exemplar rows); false when the line is not one.
   */
  pushRow(c: RecordColumns, server: number, t: number, text: string, from: number, to: number, pendingSinceMs = NaN): boolean {
    const f = this.scanned;
    if (!scanRow(text, f, from, to)) return false;
    const k = this.clockOf(server, f.dev ?? f.sock ?? f.tcp ?? f.ip);
    const i = c.slot();
    const dev = rel(f.dev, k);
    c.server[i] = server;
    c.seq[i] = f.seq;
    c.tx[i] = f.tx ? 1 : 0;
    c.flow[i] = f.flow;
    c.fx[i] = c.numberFlow(f.flow);
    c.sampleSeq[i] = f.sampleSeq;
    c.offset[i] = f.offset;
    c.attempt[i] = f.attempt;
    c.flags[i] = f.flags;
    c.sock[i] = rel(f.sock, k);
    c.tcp[i] = rel(f.tcp, k);
    c.ip[i] = rel(f.ip, k);
    c.dev[i] = dev;
    c.last[i] = f.last === null ? dev : rel(f.last, k);
    c.since[i] = pendingSinceMs;
    c.hops[i] = f.hops;
    c.hopCount[i] = 0;
    if (f.hops !== null) c.hopsFromText(i, f.hops);
    c.setRaw(i, t, from, to);
    c.n++;
    return true;
  }
  private readonly scanned = scannedRow();

  /**
   * Record i of `from`, a record carried from an earlier step whose times are relative to clock
   * base `base`, into `c` (relative to this run's clock of its server).
   */
  pushCarried(c: RecordColumns, from: RecordColumns, i: number, base: bigint): void {
    const k = this.clockOf(from.server[i]!, base.toString());
    c.copyFrom(from, i, k.base === base ? 0 : Number(base - k.base));
  }

  /** The clock base of a server's records in this run (undefined: none of its records came). */
  clockBase(server: number): bigint | undefined {
    return this.clocks.get(server)?.base;
  }

  /**
   * The records of a checked binary entry (protocol/records-binary.ts) into `c`, each read with
   * a few typed reads; `flowIds` holds the flow id of each of the entry's flows, and `t` is the
   * entry's index in c (c.addBinary), from which a record's row line is made when one is needed.
   */
  pushBinary(c: RecordColumns, server: number, t: number, e: BinaryEntry, flowIds: readonly number[]): void {
    if (!e.records) return;
    const { buf, view } = e;
    // the entry is one server's: its clock once (made from the first record's first time if new)
    const at0 = e.recordsAt, mask0 = buf[at0 + REC.layerMask]!;
    const first = (['dev', 'sock', 'tcp', 'ip'] as const).find((l) => mask0 & LAYER_BIT[l]);
    const k = this.clockOf(server, first ? view.getBigUint64(at0 + LAYER_AT[first], true).toString() : null);
    // a u64 time relative to the clock's base: in doubles while both are below 2^53 (exact), else in bigints
    const base = k.baseNum, exact = Number.isSafeInteger(base);
    const time = (o: number): number => {
      const hi = view.getUint32(o + 4, true);
      return exact && hi < 0x200000 ? hi * 4294967296 + view.getUint32(o, true) - base : Number(view.getBigUint64(o, true) - k.base);
    };
    let hopAt = e.hopsAt;
    const fxs = flowIds.map((id) => c.numberFlow(id));
    for (let r = 0, at = at0; r < e.records; r++, at += RECORD_BYTES) {
      const mask = buf[at + REC.layerMask]!, hops = buf[at + REC.hops]!;
      const i = c.slot();
      const dev = mask & LAYER_BIT.dev ? time(at + LAYER_AT.dev) : NaN;
      c.server[i] = server;
      c.seq[i] = view.getUint32(at + REC.seqHi, true) * 4294967296 + view.getUint32(at + REC.seqLo, true);
      c.tx[i] = buf[at + REC.dir] ? 0 : 1;
      const flow = view.getUint32(at + REC.flow, true);
      c.flow[i] = flowIds[flow]!;
      c.fx[i] = fxs[flow]!;
      c.sampleSeq[i] = view.getUint32(at + REC.sampleSeq, true);
      c.offset[i] = view.getUint32(at + REC.streamOffset, true);
      c.attempt[i] = buf[at + REC.attempt]!;
      c.flags[i] = buf[at + REC.flags]!;
      c.sock[i] = mask & LAYER_BIT.sock ? time(at + LAYER_AT.sock) : NaN;
      c.tcp[i] = mask & LAYER_BIT.tcp ? time(at + LAYER_AT.tcp) : NaN;
      c.ip[i] = mask & LAYER_BIT.ip ? time(at + LAYER_AT.ip) : NaN;
      c.dev[i] = dev;
      c.last[i] = hops ? time(hopAt + HOP_BYTES * (hops - 1) + 16) : dev;
      c.since[i] = NaN;
      // several crossings: each after the first with its delay from the one before (exact: u64 halves subtracted apart)
      c.hops[i] = null;
      c.hopCount[i] = 0;
      for (let h = 1, o = hopAt + HOP_BYTES; h < hops; h++, o += HOP_BYTES)
        c.addHop(i, view.getUint32(o, true), view.getUint32(o + 4, true), (view.getUint32(o + 20, true) - view.getUint32(o - HOP_BYTES + 20, true)) * 4294967296 + (view.getUint32(o + 16, true) - view.getUint32(o - HOP_BYTES + 16, true)));
      c.setRaw(i, t, r, hopAt);
      c.n++;
      hopAt += HOP_BYTES * hops;
    }
  }

  /** A record of packets (with when it began to wait, if it waits). */
  private toRec(r: store.RecordRow, sinceMs?: number): Rec {
    const c = this.clockOf(r.server_id, r.dev_ns ?? r.sock_ns ?? r.tcp_ns ?? r.ip_ns);
    const dev = rel(r.dev_ns, c);
    return {
      server: r.server_id, seq: Number(r.observer_seq), tx: Number(r.is_tx) === 1, flow: Number(r.flow_id), sampleSeq: r.sample_seq, offset: r.stream_offset, attempt: r.attempt, flags: r.flags,
      sock: rel(r.sock_ns, c), tcp: rel(r.tcp_ns, c), ip: rel(r.ip_ns, c), dev, last: r.last_dev_ns === null ? dev : rel(r.last_dev_ns, c), hops: r.hops,
      pendingSinceMs: sinceMs,
    };
  }

  async loadPending(): Promise<Rec[]> {
    return (await store.pendingRecords(this.pool)).map((r) => this.toRec(r, Number(r.since_ms)));
  }

  /** Batch ids not analyzed yet after `afterId`, oldest first, up to about maxRecords records. */
  async nextBatches(maxRecords: number, afterId: number): Promise<number[]> {
    const out: number[] = [];
    let n = 0;
    for (const r of await store.unanalyzedBatches(this.pool, afterId)) {
      if (out.length && n + Number(r.records) > maxRecords) break;
      out.push(Number(r.id));
      n += Number(r.records);
    }
    return out;
  }

  private async readBatches(batches: number[], out: RecordColumns): Promise<void> {
    if (!batches.length) return;
    const conn = await this.pool.getConnection();
    try {
      // streamed, each row made a record at once: no second copy of the chunk in memory
      await store.eachBatchRecord(conn, batches, (r) => out.push(this.toRec(r)));
    } finally {
      conn.release();
    }
  }

  /** The ends of flows not seen before (of the records from slot `from` on), from their packets or `known`; written to path_flows. */
  private async learnFlows(conn: PoolConnection, c: RecordColumns, from: number, known?: Map<number, FlowRow>): Promise<number[]> {
    // each new flow's first record (for its addresses in packets) and the servers that recorded its ends
    // (by the flows' numbers in c: one lookup per flow, not per record)
    const stored = c.flowIds.map((id) => this.flowEnds.has(id));
    const fresh = new Map<number, { first: number; tx?: number; rx?: number }>();
    const seen: ({ first: number; tx?: number; rx?: number } | undefined)[] = [];
    for (let i = from; i < c.n; i++) {
      const fx = c.fx[i]!;
      if (stored[fx]) continue;
      let e = seen[fx];
      if (!e) fresh.set(c.flow[i]!, (e = seen[fx] = { first: i }));
      if (c.tx[i]) e.tx ??= c.server[i]!;
      else e.rx ??= c.server[i]!;
    }
    if (!fresh.size) return [];
    const rows: store.FlowAddressRow[] = [];
    if (known)
      for (const id of fresh.keys()) {
        const k = known.get(id);
        if (k) rows.push({ flow_id: id, family: k[0], src: k[1], sport: k[2], dst: k[3], dport: k[4] });
      }
    else {
      const keys = [...fresh.values()].map((e): [number, number] => [c.server[e.first]!, c.seq[e.first]!]);
      for (let i = 0; i < keys.length; i += 5000) rows.push(...(await store.flowAddressesOf(conn, keys.slice(i, i + 5000))));
    }
    const values: Parameters<typeof store.addPathFlows>[1] = [];
    const learned: number[] = [];
    for (const f of rows) {
      const flow = Number(f.flow_id);
      const seen = fresh.get(flow) ?? { first: -1 };
      // an address of a known server, else the server whose observer recorded that end
      const ends = { src: this.addresses.get(f.src) ?? seen.tx ?? 0, dst: this.addresses.get(f.dst) ?? seen.rx ?? 0 };
      this.flowEnds.set(flow, ends);
      learned.push(flow);
      values.push([flow, f.family, f.src, f.sport, f.dst, f.dport, ends.src || null, ends.dst || null]);
    }
    if (values.length) await store.addPathFlows(conn, values);
    return learned;
  }

  private ends = (flow: number): FlowEnds => this.flowEnds.get(flow) ?? { src: 0, dst: 0 };

  /** One chunk of batches from packets: read, then processed (see process). */
  async chunk(batches: number[], carried: Rec[], result: AnalyzeResult, last: boolean): Promise<{ pending: Rec[] }> {
    const t0 = Date.now();
    const c = new RecordColumns();
    for (const r of carried) c.push(r);
    await this.readBatches(batches, c);
    this.log(`analysis: read ${c.n - carried.length} records of ${batches.length} batches in ${Date.now() - t0} ms`);
    let pending: Rec[] = [];
    await this.process(
      {
        records: c, fresh: carried.length, last, keepPaths: 'all',
        commitWith: async (conn, waiting) => {
          pending = waiting.map((i) => c.rec(i));
          await store.replacePending(conn, pending.map((r) => [r.server, r.seq, new Date(r.pendingSinceMs ?? Date.now())]));
          if (batches.length) await store.markBatchesAnalyzed(conn, batches);
        },
      },
      result,
    );
    result.batches += batches.length;
    return { pending };
  }

  /**
   * One chunk of records, wherever they came from: join, statistics, and one transaction with
   * everything it produced and the input's own mark (commitWith). Records live in columns from
   * the read to the commit: an object is made only for an exemplar's records.
   */
  async process(input: ChunkInput, result: AnalyzeResult): Promise<{ pending: number; paths: number; unmatched: number }> {
    const c = input.records;
    const freshCount = c.n - input.fresh;
    // a record with no time at any layer cannot be placed in time: counted, and kept out of everything
    result.unusable += c.compact(input.fresh, (i) => !Number.isNaN(c.firstTime(i)));
    for (let attempt = 1; ; attempt++)
      try {
        return await this.attempt(input, result, freshCount);
      } catch (e) {
        // two workers' transactions met on the same rows: nothing of this one stayed, so it runs
        // again (not with results held: this one added to them, so they go, see Held)
        if (attempt >= 4 || (e as { errno?: number }).errno !== ER_LOCK_DEADLOCK || input.held) throw e;
        this.log(`analysis: a deadlock with another worker; running the chunk again (attempt ${attempt + 1})`);
      }
  }

  private async attempt(input: ChunkInput, result: AnalyzeResult, freshCount: number): Promise<{ pending: number; paths: number; unmatched: number }> {
    const { records: c, last } = input;
    const t1 = Date.now();
    const conn = await this.pool.getConnection();
    let learned: number[] = [];
    let merging = false;
    try {
      // a worker sees the rows the worker before it in the merge lock committed (see store.storedStats)
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
      learned = await this.learnFlows(conn, c, input.fresh, input.flowRows);
      const clock = (s: number) => this.clocks.get(s)!;
      const joined = joinColumns(c, { clock, ends: this.ends, nowMs: Date.now(), graceMs: last ? (input.graceMs ?? this.o.graceMs) : Infinity, deferBoundNs: this.o.deferBoundNs });
      const paths = joined.paths;
      const stats = input.held?.stats ?? new WindowStats({ windowNs: this.o.windowNs, filterRetrans: this.o.filterRetrans });
      stats.newRecords();
      stats.addPaths(paths, c);
      stats.addRecords(c, input.fresh, joined.times.firstNs, c.flowIds.map(this.ends));
      const t2 = Date.now();
      if (input.hold && input.held) {
        // no stored window read: spikes against the medians held (this worker's since its last commit)
        const spikes = this.spikes(paths, stats.groups);
        await this.keepExemplars(input, c, paths, spikes);
        // (a loop, not push(...): a step may leave hundreds of thousands unmatched, beyond a call's arguments)
        for (const u of joined.unmatched) input.held.unmatched.push(u);
        for (const v of this.spikeValues(c, paths, spikes)) input.held.spikes.push(v);
        input.hold(joined.pending);
        await conn.commit(); // the flows it learned
        this.counted(result, freshCount, paths, joined.unmatched, spikes);
        this.log(`analysis: ${c.n - input.fresh} records (+${input.fresh} waiting) -> ${paths.n} paths, ${joined.unmatched.length} unmatched, ${joined.pending.length} waiting; join ${t2 - t1} ms, held ${Date.now() - t2} ms`);
        return { pending: joined.pending.length, paths: paths.n, unmatched: joined.unmatched.length };
      }
      if (input.keepPaths === 'all') await this.writePaths(c, paths, null);
      const t3 = Date.now();
      // what only this worker writes (its own flows' rows, when it owns them, and its mark) first;
      // what every worker shares (a pair's, a host's windows, unmatched counts) is merged by one
      // worker at a time: each worker's join and statistics run in parallel, their merges in turn
      // (a chunk with nothing to merge, records that only wait again, does not wait its turn)
      const { own, shared: sharedGroups } = input.ownsFlows ? splitFlowGroups(stats.groups) : { own: undefined, shared: stats.groups };
      const writeOwn = async () => {
        await this.writeFlows(conn, stats.flows);
        await input.commitWith(conn, joined.pending);
      };
      if (own) {
        await this.writeStats(conn, await this.mergeStored(conn, own, { shared: false }));
        await writeOwn();
      }
      const tOwn = Date.now();
      const shared = sharedGroups.size > 0 || (!own && stats.flows.size > 0) || joined.unmatched.length > 0 || (input.held?.unmatched.length ?? 0) > 0;
      if (shared && !(await store.getLock(conn, MERGE_LOCK, 600))) throw new Error('analysis: another worker has held the statistics merge for more than 600 s');
      merging = shared;
      const tLocked = Date.now();
      const merged = await this.mergeStored(conn, sharedGroups, { shared: true });
      const tMerged = Date.now();
      const spikes = this.spikes(paths, stats.groups);
      await this.keepExemplars(input, c, paths, spikes);
      const tKept = Date.now();
      await this.writeStats(conn, merged);
      const t4 = Date.now();
      await this.writeUnmatched(conn, input.held ? [...input.held.unmatched, ...joined.unmatched] : joined.unmatched);
      const spikeRows = [...(input.held?.spikes ?? []), ...this.spikeValues(c, paths, spikes)];
      if (spikeRows.length) await store.addSpikes(conn, spikeRows);
      if (!own) await writeOwn();
      await conn.commit();
      this.counted(result, freshCount, paths, joined.unmatched, spikes);
      result.windows += new Set([...stats.groups.keys()].map((k) => parseGroupKey(k).window)).size;
      this.log(`analysis: ${c.n - input.fresh} records (+${input.fresh} waiting) -> ${paths.n} paths, ${joined.unmatched.length} unmatched, ${joined.pending.length} waiting; join ${t2 - t1} ms, paths ${t3 - t2} ms, statistics ${t4 - t3} ms (own flows ${tOwn - t3} ms, the merge lock ${tLocked - tOwn} ms, merge ${tMerged - tLocked} ms, exemplars ${tKept - tMerged} ms, write ${t4 - tKept} ms), the rest ${Date.now() - t4} ms`);
      return { pending: joined.pending.length, paths: paths.n, unmatched: joined.unmatched.length };
    } catch (e) {
      await conn.rollback().catch(() => {});
      // the flows this chunk learned were not stored: learned again when the chunk runs again
      for (const f of learned) this.flowEnds.delete(f);
      throw e;
    } finally {
      if (merging) await store.releaseLock(conn, MERGE_LOCK).catch(() => {});
      conn.release();
    }
  }

  /** The exemplar paths (every path, or the spikes) into paths, and their records through beforeCommit. */
  private async keepExemplars(input: ChunkInput, c: RecordColumns, paths: PathColumns, spikes: Spike[]): Promise<void> {
    if (input.keepPaths === 'exemplars') await this.writePaths(c, paths, spikes.map((x) => x.k));
    if (!input.beforeCommit) return;
    const kept: number[] = [];
    if (input.keepPaths === 'all') for (let k = 0; k < paths.n; k++) kept.push(paths.tx[k]!, paths.rx[k]!);
    else for (const x of spikes) kept.push(paths.tx[x.k]!, paths.rx[x.k]!);
    await input.beforeCommit(kept);
  }

  /** A chunk's records, paths, unmatched records, faults and spikes, counted in result. */
  private counted(result: AnalyzeResult, records: number, paths: PathColumns, unmatched: UnmatchedAt[], spikes: Spike[]): void {
    result.records += records;
    result.paths += paths.n;
    for (const u of unmatched) result.unmatched[u.reason]++;
    for (let k = 0; k < paths.n; k++) if (paths.flags[k]! & F_PATH_FAULT) result.faults++;
    result.spikes += spikes.length;
  }

  private windowNs(index: number): string {
    return (this.baseNs + BigInt(index) * BigInt(this.o.windowNs)).toString();
  }

  /**
   * `groups` merged with what their windows already hold in path_stats (in place; returned):
   * `shared` (pair and host groups among them, and flow groups of flows others may write) or
   * only this worker's own flows' groups.
   */
  private async mergeStored(conn: PoolConnection, groups: Map<string, Group>, o: { shared: boolean }): Promise<Map<string, Group>> {
    const windows = new Set<number>(), flows = new Set<number>();
    for (const key of groups.keys()) {
      const k = parseGroupKey(key);
      windows.add(k.window);
      if (k.scope === 'flow') flows.add(k.flow);
    }
    // past a few thousand flows the list would outgrow the statement: every row of the windows then
    const ws = [...windows], fs = flows.size > MAX_FLOWS_LISTED ? 'every' : [...flows];
    for (let i = 0; i < ws.length; i += 500) {
      const part = ws.slice(i, i + 500);
      for (const r of await store.storedStats(conn, part.map((w) => this.windowNs(w)), { shared: o.shared, flows: fs })) {
        const window = Number((big(r.window_ns) - this.baseNs) / BigInt(this.o.windowNs));
        const key = groupKey({ window, scope: r.scope, src: Number(r.src_server_id), dst: Number(r.dst_server_id), flow: Number(r.flow_id) });
        const g = groups.get(key);
        if (!g || !r.sketch) continue; // a group this chunk does not touch stays as it is
        const old = new Group();
        old.hist.set(r.segment, LogHistogram.fromBuffer(r.sketch));
        old.bound = Number(r.bound_ns);
        if (r.segment === 'end_to_end') {
          old.faults = Number(r.faults);
          if (r.tail_sketch) old.tailFromBuffer(r.tail_sketch);
        }
        g.merge(old);
      }
    }
    return groups;
  }

  private spikes(paths: PathColumns, groups: Map<string, Group>): Spike[] {
    // per window and pair: one exact number while the ids fit 16 bits each and the window 20, else text
    const byGroup = new Map<number | string, Spike[]>();
    const medians = new Map<number | string, number>();
    // no path at or below the lowest threshold of any pair is a spike: most leave at one comparison
    let lowest = Infinity;
    for (const [key, g] of groups) {
      if (parseGroupKey(key).scope !== 'pair') continue;
      const m = g.hist.get('end_to_end')?.quantile(0.5) ?? NaN;
      if (m > 0) lowest = Math.min(lowest, this.o.spikeFactor * m);
    }
    for (let k = 0; k < paths.n; k++) {
      const e2e = paths.e2e[k]!;
      if (!(e2e > lowest) || (this.o.filterRetrans && paths.flags[k]! & F_PATH_RETRANS)) continue;
      const window = Math.floor(paths.tNs[k]! / this.o.windowNs);
      const src = paths.src[k]!, dst = paths.dst[k]!;
      const id = src < 65536 && dst < 65536 && Math.abs(window) < 2 ** 20 ? (window * 65536 + src) * 65536 + dst : `${window}|${src}|${dst}`;
      let m = medians.get(id);
      if (m === undefined) medians.set(id, (m = groups.get(groupKey({ window, scope: 'pair', src, dst, flow: 0 }))?.hist.get('end_to_end')?.quantile(0.5) ?? NaN));
      if (!(m > 0) || e2e <= this.o.spikeFactor * m) continue;
      let list = byGroup.get(id);
      if (!list) byGroup.set(id, (list = []));
      list.push({ window, k, median: m, top: topSegment(paths.seg, k * NSEG) });
    }
    return [...byGroup.values()].flatMap((l) => l.sort((a, b) => paths.e2e[b.k]! - paths.e2e[a.k]!).slice(0, this.o.maxSpikes));
  }

  /** An absolute manager time (bigint text) from a global relative one. */
  private abs(rel: number): string {
    const r = Math.round(rel);
    const b = Number(this.baseNs);
    return Number.isSafeInteger(b + r) && Number.isSafeInteger(b) ? String(b + r) : (this.baseNs + BigInt(r)).toString();
  }

  /**
   * Paths (every one, or the slots in `only`) with LOAD DATA in primary-key order (appends to the
   * B-tree), on two connections at once (MariaDB parses a LOAD on one core), each in its own
   * transaction before the chunk's: a run that fails after them writes the same rows again,
   * which IGNORE skips; the chunk's statistics and marks commit only with the chunk.
   */
  private async writePaths(c: RecordColumns, paths: PathColumns, only: number[] | null): Promise<void> {
    const ks = only ?? Array.from({ length: paths.n }, (_, k) => k);
    if (!ks.length) return;
    ks.sort((a, b) => c.server[paths.rx[a]!]! - c.server[paths.rx[b]!]! || c.seq[paths.rx[a]!]! - c.seq[paths.rx[b]!]!);
    const f = (v: number) => (Number.isFinite(v) ? String(Math.round(v)) : '\\N');
    const windows = new Map<number, string>();
    const line = (k: number): string => {
      const w = Math.floor(paths.tNs[k]! / this.o.windowNs);
      let wns = windows.get(w);
      if (wns === undefined) windows.set(w, (wns = this.windowNs(w)));
      const t = paths.tx[k]!, x = paths.rx[k]!;
      const s = paths.seg, o = k * NSEG;
      const bound = paths.bound[k]!;
      return (
        `${c.server[x]}\t${c.seq[x]}\t${c.server[t]}\t${c.seq[t]}\t${paths.src[k]}\t${paths.dst[k]}\t${c.flow[t]}\t${c.sampleSeq[t]}\t${c.attempt[t]}\t${paths.flags[k]}\t${wns}\t${this.abs(paths.tNs[k]!)}\t` +
        `${f(s[o]!)}\t${f(s[o + 1]!)}\t${f(s[o + 2]!)}\t${f(s[o + 3]!)}\t${f(s[o + 4]!)}\t${f(s[o + 5]!)}\t${f(s[o + 6]!)}\t${f(s[o + 7]!)}\t${f(s[o + 8]!)}\t${f(paths.oneWay[k]!)}\t${f(paths.e2e[k]!)}\t${Number.isFinite(bound) ? bound.toFixed(1) : '\\N'}\n`
      );
    };
    function* text(part: number[]): Generator<Buffer> {
      for (let i = 0; i < part.length; i += 4096) {
        let t = '';
        for (let j = i; j < Math.min(part.length, i + 4096); j++) t += line(part[j]!);
        yield Buffer.from(t, 'latin1');
      }
    }
    const half = Math.ceil(ks.length / 2);
    await Promise.all(
      [ks.slice(0, half), ks.slice(half)].map(async (part) => {
        if (!part.length) return;
        // outside the chunk's transaction and idempotent (IGNORE): a connection lost under a
        // load (once in CI, the server saw its packets out of order) loads again on a new one
        for (let attempt = 1; ; attempt++) {
          const conn = await this.pool.getConnection();
          try {
            await store.loadPaths(conn, PATH_COLUMNS, () => Readable.from(text(part)));
            conn.release();
            return;
          } catch (e) {
            conn.destroy();
            if (attempt >= 3 || !connectionLost(e)) throw e;
            this.log(`analysis: the connection loading paths was lost (${(e as Error).message}); loading them again (attempt ${attempt + 1})`);
          }
        }
      }),
    );
  }

  private async writeStats(conn: PoolConnection, groups: Map<string, Group>): Promise<void> {
    const values: store.StatValues[] = [];
    const unixCache = new Map<number, number | null>();
    for (const [key, g] of groups) {
      const k = parseGroupKey(key);
      let unix = unixCache.get(k.window);
      if (unix === undefined) unixCache.set(k.window, (unix = this.unixMs(k.window)));
      for (const r of statRows(g, k.scope))
        values.push([this.windowNs(k.window), unix, this.o.windowNs, k.scope, k.src, k.dst, k.flow, r.segment, r.samples, r.p50, r.p90, r.p99, r.p999, r.max, r.mean, r.bound, r.faults, r.tailMean, r.tailShare, r.sketch, r.tailSketch]);
    }
    await store.upsertStats(conn, values);
  }

  /** The manager's wall clock at a window's start, from any server's dated rounds. */
  private unixMs(window: number): number | null {
    for (const t of this.timelines.values()) {
      const u = t.unixMsAt(Number(this.baseNs - t.baseNs) + window * this.o.windowNs);
      if (u !== undefined) return Math.round(u);
    }
    return null;
  }

  private async writeFlows(conn: PoolConnection, flows: Map<string, FlowWindow>): Promise<void> {
    await store.addFlowWindows(
      conn,
      [...flows.values()].map((f) => [this.windowNs(f.window), f.flow, f.src, f.dst, f.samples, f.sizeSamples, f.retransmissions, this.o.sampleSize, this.abs(f.firstNs), this.abs(f.lastNs)]),
    );
  }

  private async writeUnmatched(conn: PoolConnection, unmatched: UnmatchedAt[]): Promise<void> {
    const counts = new Map<string, Parameters<typeof store.addUnmatched>[1][number]>();
    for (const u of unmatched) {
      const windowNs = this.windowNs(Math.floor(u.tNs / this.o.windowNs));
      const key = `${windowNs}|${u.src}|${u.dst}|${u.reason}`;
      const row = counts.get(key);
      if (row) row[4]++;
      else counts.set(key, [windowNs, u.src, u.dst, u.reason, 1]);
    }
    if (counts.size) await store.addUnmatched(conn, [...counts.values()]);
  }

  /** The spikes' rows (values, so that a held chunk's outlive its records). */
  private spikeValues(c: RecordColumns, paths: PathColumns, spikes: Spike[]): store.SpikeValues[] {
    return spikes.map((s) => [this.windowNs(s.window), c.server[paths.rx[s.k]!]!, c.seq[paths.rx[s.k]!]!, paths.src[s.k]!, paths.dst[s.k]!, Math.round(paths.e2e[s.k]!), s.median, s.top]);
  }

}
