/**
 * The path join: a sample byte's sender record (tx) and receiver record (rx) describe one
 * packet's whole path. Both ends pick the same bytes (protocol/records.ts), so records join on
 * (flow_id, sample_seq); inside a key, records are paired by time on the manager timeline: each
 * receiver record takes the latest sender record that left before it arrived (within the clock
 * bound). That pairs each transmission with its own arrival (a retransmission is its own path)
 * and keeps a 32-bit sequence wrap apart (the same sample_seq 4 GiB later is much later). What
 * finds no partner waits (it may come in a later batch) until the grace period ends, then is
 * counted as unmatched with its reason; a record whose other end is not an observed server is
 * counted at once.
 *
 * Pure functions over records: MySQL is analyzer/store.ts's business.
 */
import { SEGMENTS } from '../protocol/layers.js';
import { F_PATH_COMPLETE, F_PATH_FAULT, F_PATH_NO_FIT, F_PATH_RETRANS } from '../protocol/paths.js';
import { encodeHops, encodeRow, F_ROW_RETRANS, type Flow } from '../protocol/records.js';
import { binaryRecord, entryFlows, type BinaryEntry } from '../protocol/records-binary.js';

/** One packets row as the analyzer needs it: times relative to its server's clock base (NaN: not seen). */
export interface Rec {
  server: number;
  seq: number;
  tx: boolean;
  flow: number;
  sampleSeq: number;
  offset: number;
  attempt: number;
  /** packets.flags: 1 retransmission, 2 interval rule, 4 complete. */
  flags: number;
  sock: number;
  tcp: number;
  ip: number;
  dev: number;
  /** The last device crossing (dev when there was one only). */
  last: number;
  /** Every crossing when there were several ("ifindex:netns:rx:ns,..."), else null. */
  hops: string | null;
  /** When it started waiting for its other end (ms since 1970), for records carried over. */
  pendingSinceMs?: number;
  /** Its row line as the stream brought it (protocol/records.ts), kept for carrying and for exemplar rows. */
  raw?: string;
}

/** A server's clock as the join uses it: its timestamps on the global manager timeline. */
export interface Clock {
  /**
   * A time relative to the server's base on the global timeline (relative to the analysis base);
   * its bound is then lastBound (a number, not an object: every record is mapped twice).
   */
  globalNs(serverRel: number): number;
  /** The bound of the last globalNs. */
  readonly lastBound: number;
  /** Whether a manager time (global) lies after the server's last clock round (so a later round may still refine it). */
  beyondLastRound(globalNs: number): boolean;
  synced: boolean;
}

export interface Path {
  tx: Rec;
  rx: Rec;
  src: number;
  dst: number;
  /** Global manager time when the sender handed it to its first layer. */
  tNs: number;
  /** Delays of SEGMENTS, NaN where a layer is missing. */
  seg: number[];
  oneWay: number;
  e2e: number;
  /** Error bound of the cross-server values (0 within one server; Infinity without a clock fit). */
  bound: number;
  flags: number;
}

export type UnmatchedReason = 'peer_not_observed' | 'no_receiver_record' | 'no_sender_record' | 'no_clock_fit';

export interface Unmatched {
  rec: Rec;
  src: number;
  dst: number;
  tNs: number;
  reason: UnmatchedReason;
}

/** The servers at the two ends of a flow (0: the address is not a known server's). */
export interface FlowEnds {
  src: number;
  dst: number;
}

export interface JoinOptions {
  clock: (server: number) => Clock;
  ends: (flow: number) => FlowEnds;
  nowMs: number;
  /** How long a record waits for its other end (ms); 0: no waiting (a final run). */
  graceMs: number;
  /**
   * A pair whose clock bound exceeds this (ns) while a clock round after it may still come
   * (extrapolated, not interpolated) waits for that round, within the grace period.
   */
  deferBoundNs?: number;
}

export interface JoinResult {
  paths: Path[];
  unmatched: Unmatched[];
  /** Records still waiting for their other end. */
  pending: Rec[];
}

const NSEG = SEGMENTS.length;
/** How far a receiver record may seem to precede its sender record and still be paired with it (then as a clock fault). */
const CLOCK_FAULT_WINDOW_NS = 1e9;

/** A typed array of twice the length, holding a's values first. */
function doubled<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

/**
 * Records as columns (typed arrays, one slot per record): the join's own form, so that a step of
 * hundreds of thousands of records makes no object per record (the stream stage fills these
 * directly; joinRecords converts Rec objects for the batch analyzer and the tests).
 */
export class RecordColumns {
  n = 0;
  server: Int32Array;
  seq: Float64Array;
  tx: Uint8Array;
  flow: Float64Array;
  sampleSeq: Float64Array;
  offset: Float64Array;
  attempt: Int32Array;
  flags: Uint8Array;
  sock: Float64Array;
  tcp: Float64Array;
  ip: Float64Array;
  dev: Float64Array;
  last: Float64Array;
  /** Rec.pendingSinceMs; NaN: not waiting yet. */
  since: Float64Array;
  /**
   * Each record's flow numbered within this set (flowIds[fx] is its id): what the join and the
   * statistics keep per flow sits in arrays indexed by it, not in Maps keyed by 52-bit ids.
   */
  fx: Int32Array;
  readonly flowIds: number[] = [];
  private readonly flowNumbers = new Map<number, number>();
  /** Every crossing as the row format writes it, for records with several that came as text (Rec.hops). */
  hops: (string | null)[] = [];
  /**
   * The device hops of records with several crossings (each crossing after the first, with its
   * delay from the one before): record i's are hop slots hopFirst[i] to hopFirst[i] + hopCount[i].
   */
  hopFirst: Int32Array;
  hopCount: Uint8Array;
  hopIfindex = new Uint32Array(1024);
  hopNetns = new Uint32Array(1024);
  hopDelay = new Float64Array(1024);
  hopN = 0;
  /**
   * Where each record's row line comes from (rawOf): the text it came in (an entry's rows), read
   * in place rather than sliced out per record, or the binary entry it came in (made into a line
   * only when needed).
   */
  private readonly texts: (string | { entry: BinaryEntry; flows?: Flow[] })[] = [];
  private textOf: Int32Array;
  private rawFrom: Int32Array;
  private rawTo: Int32Array;

  constructor(private cap = 1024) {
    this.server = new Int32Array(cap);
    this.seq = new Float64Array(cap);
    this.tx = new Uint8Array(cap);
    this.flow = new Float64Array(cap);
    this.sampleSeq = new Float64Array(cap);
    this.offset = new Float64Array(cap);
    this.attempt = new Int32Array(cap);
    this.flags = new Uint8Array(cap);
    this.sock = new Float64Array(cap);
    this.tcp = new Float64Array(cap);
    this.ip = new Float64Array(cap);
    this.dev = new Float64Array(cap);
    this.last = new Float64Array(cap);
    this.since = new Float64Array(cap);
    this.fx = new Int32Array(cap);
    this.textOf = new Int32Array(cap);
    this.rawFrom = new Int32Array(cap);
    this.rawTo = new Int32Array(cap);
    this.hopFirst = new Int32Array(cap);
    this.hopCount = new Uint8Array(cap);
  }

  /** Records it holds without growing. */
  get capacity(): number {
    return this.cap;
  }

  private memory?: JoinMemory;
  /** The memory the join of these columns works in (made at the first join, kept for the next). */
  get joinMemory(): JoinMemory {
    return (this.memory ??= new JoinMemory());
  }

  /** Empties the set, keeping its arrays for the next (no new allocation while it is large enough). */
  clear(): void {
    this.n = 0;
    this.hopN = 0;
    // hops keeps its length: every new slot writes its entry (emptied by length = 0, its storage
    // went and grew again record by record in every step, a sixth of what the decoder allocated)
    this.texts.length = 0;
    this.flowIds.length = 0;
    this.flowNumbers.clear();
  }

  /** The number of a flow in this set (numbered as first seen). */
  numberFlow(id: number): number {
    let k = this.flowNumbers.get(id);
    if (k === undefined) this.flowNumbers.set(id, (k = this.flowIds.push(id) - 1));
    return k;
  }

  /** One more device hop of record i (whose hops are added one after the other). */
  addHop(i: number, ifindex: number, netns: number, delayNs: number): void {
    if (this.hopN === this.hopDelay.length) {
      this.hopIfindex = doubled(this.hopIfindex);
      this.hopNetns = doubled(this.hopNetns);
      this.hopDelay = doubled(this.hopDelay);
    }
    if (this.hopCount[i] === 0) this.hopFirst[i] = this.hopN;
    this.hopIfindex[this.hopN] = ifindex;
    this.hopNetns[this.hopN] = netns;
    this.hopDelay[this.hopN++] = delayNs;
    this.hopCount[i]!++;
  }

  /** Record i's crossings from their text ("ifindex:netns:rx:ns,...", from `from` to `to` of `text`). */
  hopsFromText(i: number, text: string, from = 0, to = text.length): void {
    this.hopCount[i] = 0;
    eachHopDelay(text, (ifindex, netns, ns) => this.addHop(i, ifindex, netns, ns), from, to);
  }

  /** A text holding row lines of records about to be pushed (an entry's rows): its index for setRaw. */
  addText(text: string): number {
    return this.texts.push(text) - 1;
  }

  /** A binary entry (protocol/records-binary.ts) whose records are about to be pushed: its index for setRaw (from: the record's index, to: its hops' offset). */
  addBinary(entry: BinaryEntry): number {
    return this.texts.push({ entry }) - 1;
  }

  /** Record i's row line: text t from `from` to `to` (t -1: none). */
  setRaw(i: number, t: number, from: number, to: number): void {
    this.textOf[i] = t;
    this.rawFrom[i] = from;
    this.rawTo[i] = to;
  }

  /** Record i's row line, if it came as one. */
  rawOf(i: number): string | undefined {
    const t = this.textOf[i]!;
    if (t < 0) return undefined;
    const src = this.texts[t]!;
    if (typeof src === 'string') return src.slice(this.rawFrom[i], this.rawTo[i]);
    return encodeRow(binaryRecord('', src.entry, (src.flows ??= entryFlows(src.entry)), this.rawFrom[i]!, this.rawTo[i]!));
  }

  /** Room for one more record; returns its slot (the caller fills every column, then n++). */
  slot(): number {
    if (this.n === this.cap) {
      const cap = this.cap * 2;
      this.server = doubled(this.server);
      this.seq = doubled(this.seq);
      this.tx = doubled(this.tx);
      this.flow = doubled(this.flow);
      this.sampleSeq = doubled(this.sampleSeq);
      this.offset = doubled(this.offset);
      this.attempt = doubled(this.attempt);
      this.flags = doubled(this.flags);
      this.sock = doubled(this.sock);
      this.tcp = doubled(this.tcp);
      this.ip = doubled(this.ip);
      this.dev = doubled(this.dev);
      this.last = doubled(this.last);
      this.since = doubled(this.since);
      this.fx = doubled(this.fx);
      this.textOf = doubled(this.textOf);
      this.rawFrom = doubled(this.rawFrom);
      this.rawTo = doubled(this.rawTo);
      this.hopFirst = doubled(this.hopFirst);
      this.hopCount = doubled(this.hopCount);
      this.cap = cap;
    }
    return this.n;
  }

  push(r: Rec): number {
    const i = this.slot();
    this.server[i] = r.server;
    this.seq[i] = r.seq;
    this.tx[i] = r.tx ? 1 : 0;
    this.flow[i] = r.flow;
    this.fx[i] = this.numberFlow(r.flow);
    this.sampleSeq[i] = r.sampleSeq;
    this.offset[i] = r.offset;
    this.attempt[i] = r.attempt;
    this.flags[i] = r.flags;
    this.sock[i] = r.sock;
    this.tcp[i] = r.tcp;
    this.ip[i] = r.ip;
    this.dev[i] = r.dev;
    this.last[i] = r.last;
    this.since[i] = r.pendingSinceMs ?? NaN;
    this.hops[i] = r.hops;
    this.hopCount[i] = 0;
    if (r.hops) this.hopsFromText(i, r.hops);
    if (r.raw === undefined) this.textOf[i] = -1;
    else this.setRaw(i, this.addText(r.raw), 0, r.raw.length);
    return this.n++;
  }

  /**
   * Record i of `src` into a new slot, its times moved by `shift` (another clock base), its row
   * line `raw` (src's by default): the stream stage carries waiting records from step to step so,
   * rather than writing them out as lines and reading them back.
   */
  copyFrom(src: RecordColumns, i: number, shift = 0, raw = src.rawOf(i)): number {
    const j = this.slot();
    this.server[j] = src.server[i]!;
    this.seq[j] = src.seq[i]!;
    this.tx[j] = src.tx[i]!;
    this.flow[j] = src.flow[i]!;
    this.fx[j] = this.numberFlow(src.flow[i]!);
    this.sampleSeq[j] = src.sampleSeq[i]!;
    this.offset[j] = src.offset[i]!;
    this.attempt[j] = src.attempt[i]!;
    this.flags[j] = src.flags[i]!;
    this.sock[j] = src.sock[i]! + shift;
    this.tcp[j] = src.tcp[i]! + shift;
    this.ip[j] = src.ip[i]! + shift;
    this.dev[j] = src.dev[i]! + shift;
    this.last[j] = src.last[i]! + shift;
    this.since[j] = src.since[i]!;
    this.hops[j] = src.hops[i] ?? null;
    this.hopCount[j] = 0;
    for (let h = src.hopFirst[i]!, end = h + src.hopCount[i]!; h < end; h++) this.addHop(j, src.hopIfindex[h]!, src.hopNetns[h]!, src.hopDelay[h]!);
    if (raw === undefined) this.textOf[j] = -1;
    else this.setRaw(j, this.addText(raw), 0, raw.length);
    return this.n++;
  }

  /** Keeps, from slot `from` on, only the records `keep` accepts (in order); returns how many went. */
  compact(from: number, keep: (i: number) => boolean): number {
    let w = from;
    for (let i = from; i < this.n; i++) {
      if (!keep(i)) continue;
      if (w !== i) {
        for (const a of [this.server, this.seq, this.tx, this.flow, this.sampleSeq, this.offset, this.attempt, this.flags, this.sock, this.tcp, this.ip, this.dev, this.last, this.since, this.fx, this.textOf, this.rawFrom, this.rawTo, this.hopFirst, this.hopCount]) a[w] = a[i]!;
        this.hops[w] = this.hops[i]!;
      }
      w++;
    }
    const gone = this.n - w;
    this.n = w;
    return gone;
  }

  /** Record i as an object (for the few that need one: exemplar paths). */
  rec(i: number): Rec {
    return {
      server: this.server[i]!, seq: this.seq[i]!, tx: this.tx[i] === 1, flow: this.flow[i]!, sampleSeq: this.sampleSeq[i]!, offset: this.offset[i]!, attempt: this.attempt[i]!, flags: this.flags[i]!,
      sock: this.sock[i]!, tcp: this.tcp[i]!, ip: this.ip[i]!, dev: this.dev[i]!, last: this.last[i]!, hops: this.hops[i] ?? this.binaryHops(i),
      pendingSinceMs: Number.isNaN(this.since[i]!) ? undefined : this.since[i]!, raw: this.rawOf(i),
    };
  }

  /** The crossings' text of a record with several that came in a binary entry (else null). */
  private binaryHops(i: number): string | null {
    const t = this.textOf[i]!;
    const src = t < 0 || !this.hopCount[i] ? undefined : this.texts[t];
    if (!src || typeof src === 'string') return null;
    return encodeHops(binaryRecord('', src.entry, (src.flows ??= entryFlows(src.entry)), this.rawFrom[i]!, this.rawTo[i]!).devices);
  }

  /** Record i's time at the first layer it has (NaN: none). */
  firstTime(i: number): number {
    const sock = this.sock[i]!, tcp = this.tcp[i]!, ip = this.ip[i]!, dev = this.dev[i]!;
    return this.tx[i] ? (sock === sock ? sock : tcp === tcp ? tcp : ip === ip ? ip : dev) : dev === dev ? dev : ip === ip ? ip : tcp === tcp ? tcp : sock; // x === x: not NaN
  }

  /** The time record i crosses the wire: the sender's last device, the receiver's first. */
  wireTime(i: number): number {
    const w = this.tx[i] ? this.last[i]! : this.dev[i]!;
    return w === w ? w : this.firstTime(i);
  }
}

/** Joined paths as columns: the records' slots, and every value of a Path. */
export class PathColumns {
  n = 0;
  tx: Int32Array;
  rx: Int32Array;
  src: Int32Array;
  dst: Int32Array;
  tNs: Float64Array;
  oneWay: Float64Array;
  e2e: Float64Array;
  bound: Float64Array;
  flags: Uint8Array;
  /** SEGMENTS of path k at k * NSEG. */
  seg: Float64Array;

  /** Room for `cap` paths (more grow it). */
  constructor(cap = 1024) {
    this.tx = new Int32Array(cap);
    this.rx = new Int32Array(cap);
    this.src = new Int32Array(cap);
    this.dst = new Int32Array(cap);
    this.tNs = new Float64Array(cap);
    this.oneWay = new Float64Array(cap);
    this.e2e = new Float64Array(cap);
    this.bound = new Float64Array(cap);
    this.flags = new Uint8Array(cap);
    this.seg = new Float64Array(cap * NSEG);
  }

  /** Paths it holds without growing. */
  get capacity(): number {
    return this.tx.length;
  }

  /** Room for one more path; returns its slot. */
  slot(): number {
    if (this.n === this.tx.length) {
      this.tx = doubled(this.tx);
      this.rx = doubled(this.rx);
      this.src = doubled(this.src);
      this.dst = doubled(this.dst);
      this.tNs = doubled(this.tNs);
      this.oneWay = doubled(this.oneWay);
      this.e2e = doubled(this.e2e);
      this.bound = doubled(this.bound);
      this.flags = doubled(this.flags);
      this.seg = doubled(this.seg);
    }
    return this.n;
  }

  /** Path k as an object, with its records (for the few that need one: exemplars). */
  path(k: number, c: RecordColumns, tx = c.rec(this.tx[k]!), rx = c.rec(this.rx[k]!)): Path {
    return {
      tx, rx, src: this.src[k]!, dst: this.dst[k]!, tNs: this.tNs[k]!, seg: Array.from(this.seg.subarray(k * NSEG, (k + 1) * NSEG)),
      oneWay: this.oneWay[k]!, e2e: this.e2e[k]!, bound: this.bound[k]!, flags: this.flags[k]!,
    };
  }
}

/** Each record's times on the global timeline: its first layer's, and its wire time's with the bound. */
export interface GlobalTimes {
  firstNs: Float64Array;
  wireNs: Float64Array;
  wireBound: Float64Array;
}

const newTimes = (n: number): GlobalTimes => ({ firstNs: new Float64Array(n), wireNs: new Float64Array(n), wireBound: new Float64Array(n) });

/** GlobalTimes of every record of c (each record mapped through its clock once, at its wire time). */
export function globalTimes(c: RecordColumns, clock: (server: number) => Clock, g: GlobalTimes = newTimes(c.n)): GlobalTimes {
  // records come entry by entry, each of one server: its clock is most often the last one's
  let server = NaN, k!: Clock;
  for (let i = 0; i < c.n; i++) {
    if (c.server[i] !== server) k = clock((server = c.server[i]!));
    // the first layer's time from the wire time's mapping (a clock mapping less per record): the
    // offset moves by the drift over the time between them, 1 ns at 100 ppm over 10 us; firstNs
    // places the record in its window, it is in no delay
    const first = c.firstTime(i), wire = c.wireTime(i);
    const wireNs = k.globalNs(wire);
    g.wireNs[i] = wireNs;
    g.wireBound[i] = k.lastBound;
    g.firstNs[i] = first === wire ? wireNs : wireNs - (wire - first);
  }
  return g;
}

/**
 * The path of sender record t and receiver record x, written into `out` at a new slot (not yet
 * counted: the caller keeps it with out.n++): every segment, the totals and the bound.
 */
function buildPathAt(c: RecordColumns, g: GlobalTimes, t: number, x: number, ends: FlowEnds, clock: JoinOptions['clock'], out: PathColumns): number {
  const k = out.slot();
  const sameClock = c.server[t] === c.server[x];
  const txLast = c.last[t]!, rxDev = c.dev[x]!;
  // the sender's last device and the receiver's first are their wire times (mapped already), unless they are missing
  let outNs = g.wireNs[t]!, outBound = g.wireBound[t]!, inNs = g.wireNs[x]!, inBound = g.wireBound[x]!;
  if (txLast !== txLast) {
    const k = clock(c.server[t]!);
    (outNs = k.globalNs(txLast)), (outBound = k.lastBound);
  }
  if (rxDev !== rxDev) {
    const k = clock(c.server[x]!);
    (inNs = k.globalNs(rxDev)), (inBound = k.lastBound);
  }
  const wire = sameClock ? rxDev - txLast : inNs - outNs;
  const bound = sameClock ? 0 : outBound + inBound;
  const s = out.seg, b = k * NSEG;
  s[b] = c.tcp[t]! - c.sock[t]!;
  s[b + 1] = c.ip[t]! - c.tcp[t]!;
  s[b + 2] = c.dev[t]! - c.ip[t]!;
  s[b + 3] = txLast - c.dev[t]!;
  s[b + 4] = Number.isFinite(bound) ? wire : NaN;
  s[b + 5] = c.last[x]! - rxDev;
  s[b + 6] = c.ip[x]! - c.last[x]!;
  s[b + 7] = c.tcp[x]! - c.ip[x]!;
  s[b + 8] = c.sock[x]! - c.tcp[x]!;
  let complete = true;
  for (let i = 0; i < NSEG; i++) if (Number.isNaN(s[b + i]!)) complete = false;
  out.oneWay[k] = s[b + 3]! + s[b + 4]!;
  out.e2e[k] = txLast - c.sock[t]! + s[b + 4]! + (c.sock[x]! - rxDev);
  let flags = complete ? F_PATH_COMPLETE : 0;
  // the sender knows: the receiver's flag also marks a segment that arrived out of order
  if (c.attempt[t]! > 0 || c.flags[t]! & F_ROW_RETRANS) flags |= F_PATH_RETRANS;
  if (!Number.isFinite(bound)) flags |= F_PATH_NO_FIT;
  else if (wire < -bound) flags |= F_PATH_FAULT; // a negative delay beyond its bound: the clocks are wrong, not the packet
  out.flags[k] = flags;
  out.bound[k] = bound;
  out.src[k] = ends.src || c.server[t]!;
  out.dst[k] = ends.dst || c.server[x]!;
  out.tNs[k] = g.firstNs[t]!;
  out.tx[k] = t;
  out.rx[k] = x;
  return k;
}

/** The path of a sender record and a receiver record: every segment, the totals and the bound. */
export function buildPath(tx: Rec, rx: Rec, o: Pick<JoinOptions, 'clock' | 'ends'>): Path {
  const c = new RecordColumns(2);
  c.push(tx);
  c.push(rx);
  const out = new PathColumns();
  return out.path(buildPathAt(c, globalTimes(c, o.clock), 0, 1, o.ends(tx.flow), o.clock, out), c, tx, rx);
}

/** A record the join could not pair (by its slot). */
export interface UnmatchedAt {
  index: number;
  src: number;
  dst: number;
  tNs: number;
  reason: UnmatchedReason;
}

export interface ColumnJoinResult {
  paths: PathColumns;
  unmatched: UnmatchedAt[];
  /** Slots of the records still waiting for their other end (their `since` set). */
  pending: number[];
  /** Every record's times on the global timeline (firstNs: where its statistics go). */
  times: GlobalTimes;
}

/** Slots of the join's key table for n records: a power of two, at most half full. */
function keyTableSize(n: number): number {
  let cap = 1024;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

/**
 * The join's working memory, kept with the records it joins (RecordColumns.joinMemory) and
 * reused by the next join of the same columns: the stream stage joins hundreds of thousands of
 * records a step, and fresh key tables, times and path columns of that size each step cost page
 * faults and collector work. What a join returns (its paths, times) lives here until the next.
 */
export class JoinMemory {
  table = new Int32Array(0);
  head = new Int32Array(0);
  tail = new Int32Array(0);
  size = new Int32Array(0);
  next = new Int32Array(0);
  times: GlobalTimes = newTimes(0);
  paths = new PathColumns();

  /** Room for joining n records; empties the paths. */
  reserve(n: number): this {
    const cap = keyTableSize(n);
    if (this.table.length < cap) this.table = new Int32Array(cap);
    if (this.head.length < n) {
      const room = Math.max(n, 1024);
      this.head = new Int32Array(room);
      this.tail = new Int32Array(room);
      this.size = new Int32Array(room);
      this.next = new Int32Array(room);
      this.times = newTimes(room);
    }
    // most records pair up: about one path per two records
    if (this.paths.capacity < n >> 1) this.paths = new PathColumns(Math.max(1024, n >> 1));
    this.paths.n = 0;
    return this;
  }
}

/** What the join's steps share. */
interface Join {
  c: RecordColumns;
  g: GlobalTimes;
  o: JoinOptions;
  /** Each flow's ends, by its number in c (RecordColumns.fx). */
  ends: FlowEnds[];
  res: ColumnJoinResult;
}

/**
 * Joins the records of `c`: records of a key (flow, sample) are paired by time; what is left
 * waits or, past the grace period, is unmatched.
 */
export function joinColumns(c: RecordColumns, o: JoinOptions): ColumnJoinResult {
  const n = c.n;
  const m = c.joinMemory.reserve(n);
  const g = globalTimes(c, o.clock, m.times);
  const j: Join = { c, g, o, ends: c.flowIds.map((id) => o.ends(id)), res: { paths: m.paths, unmatched: [], pending: [], times: g } };
  // records by key (flow, sample): an open-addressing table of group ids over typed arrays, the
  // key compared exactly with each group's first record (no object, no boxed number per record)
  const cap = keyTableSize(n);
  const mask = cap - 1;
  const table = m.table.subarray(0, cap).fill(-1);
  const { head, tail, size, next } = m;
  let groups = 0;
  for (let i = 0; i < n; i++) {
    const flow = c.fx[i]!, sample = c.sampleSeq[i]!;
    let h = Math.imul(flow ^ Math.imul(sample | 0, 0x9e3779b1), 0x85ebca6b);
    h = (h ^ (h >>> 15)) & mask;
    let k: number;
    while ((k = table[h]!) !== -1 && (c.fx[head[k]!] !== flow || c.sampleSeq[head[k]!] !== sample)) h = (h + 1) & mask;
    next[i] = -1;
    if (k === -1) {
      table[h] = groups;
      head[groups] = tail[groups] = i;
      size[groups++] = 1;
    } else {
      next[tail[k]!] = i;
      tail[k] = i;
      size[k]!++;
    }
  }
  for (let k = 0; k < groups; k++) {
    const h = head[k]!;
    if (size[k] === 1) {
      settle(j, h, j.ends[c.fx[h]!]!);
      continue;
    }
    // the usual key: one sender and one receiver record, paired without a list (an array a key
    // was most of what the join allocated: a list emptied by length = 0 lets its storage go)
    const b = next[h]!;
    if (size[k] === 2 && c.tx[h] !== c.tx[b]) {
      pairOne(j, c.tx[h] ? h : b, c.tx[h] ? b : h, j.ends[c.fx[h]!]!);
      continue;
    }
    const list: number[] = [];
    for (let i = h; i !== -1; i = next[i]!) list.push(i);
    pairMany(j, list, j.ends[c.fx[h]!]!);
  }
  return j.res;
}

/** The slack two records' clocks allow between their wire times. */
const slackOf = (j: Join, t: number, x: number): number => (j.c.server[t] === j.c.server[x] ? 0 : Math.min(j.g.wireBound[t]! + j.g.wireBound[x]!, 1e12));

/** The common case: one sender record and one receiver record of a sample. */
function pairOne(j: Join, t: number, x: number, ends: FlowEnds): void {
  const tn = j.g.wireNs[t]!, xn = j.g.wireNs[x]!;
  if (tn <= xn + slackOf(j, t, x) || tn - xn < CLOCK_FAULT_WINDOW_NS) keepPath(j, t, x, ends);
  else {
    settle(j, t, ends);
    settle(j, x, ends);
  }
}

/** A joined pair: a path, or both records waiting for a clock round. */
function keepPath(j: Join, t: number, x: number, ends: FlowEnds): void {
  const paths = j.res.paths;
  const k = buildPathAt(j.c, j.g, t, x, ends, j.o.clock, paths);
  if (waitForClock(j, t, x, paths.bound[k]!)) j.res.pending.push(t, x);
  else paths.n++;
}

/** Several records of a sample (retransmissions, a wrap): each arrival takes the latest transmission before it. */
function pairMany(j: Join, list: number[], ends: FlowEnds): void {
  const { c, g } = j;
  const byTime = (a: number, b: number) => g.wireNs[a]! - g.wireNs[b]!;
  const txs = list.filter((i) => c.tx[i]).sort(byTime);
  const rxs = list.filter((i) => !c.tx[i]).sort(byTime);
  const used = new Uint8Array(txs.length);
  const left: number[] = [];
  for (const x of rxs) {
    // the latest sender record that left before this arrival (within both clocks' bounds);
    // failing that, the first one that left less than a second after it: a clock wrong beyond
    // its bound, which the path then shows as a fault rather than hiding it as unmatched
    let best = -1;
    for (let i = 0; i < txs.length; i++) {
      if (used[i]) continue;
      const t = txs[i]!;
      if (g.wireNs[t]! <= g.wireNs[x]! + slackOf(j, t, x)) best = i;
      else {
        if (best < 0 && g.wireNs[t]! - g.wireNs[x]! < CLOCK_FAULT_WINDOW_NS) best = i;
        break;
      }
    }
    if (best < 0) left.push(x);
    else {
      used[best] = 1;
      keepPath(j, txs[best]!, x, ends);
    }
  }
  txs.forEach((t, i) => used[i] || left.push(t));
  for (const i of left) settle(j, i, ends);
}

/** Whether a joined pair should wait for a time-sync round that would narrow its bound. */
function waitForClock(j: Join, t: number, x: number, bound: number): boolean {
  const { c, o } = j;
  if (o.deferBoundNs === undefined || !(bound > o.deferBoundNs) || !Number.isFinite(bound)) return false;
  const ct = o.clock(c.server[t]!), cr = o.clock(c.server[x]!);
  if (!(ct.beyondLastRound(j.g.wireNs[t]!) || cr.beyondLastRound(j.g.wireNs[x]!))) return false;
  const st = c.since[t]!, sx = c.since[x]!;
  const since = Math.min(st === st ? st : o.nowMs, sx === sx ? sx : o.nowMs);
  if (o.nowMs - since >= o.graceMs) return false;
  c.since[t] = c.since[x] = since;
  return true;
}

/** A record without a partner: unmatched now, or waiting. */
function settle(j: Join, i: number, ends: FlowEnds): void {
  const { c, o, res } = j;
  const tx = c.tx[i] === 1, server = c.server[i]!;
  const peer = tx ? ends.dst : ends.src;
  const tNs = j.g.firstNs[i]!;
  const src = ends.src || (tx ? server : 0), dst = ends.dst || (tx ? 0 : server);
  if (!peer) {
    res.unmatched.push({ index: i, src, dst, tNs, reason: 'peer_not_observed' });
    return;
  }
  const s = c.since[i]!;
  const since = s === s ? s : o.nowMs;
  if (o.nowMs - since < o.graceMs) {
    c.since[i] = since;
    res.pending.push(i);
    return;
  }
  res.unmatched.push({ index: i, src, dst, tNs, reason: tx ? 'no_receiver_record' : 'no_sender_record' });
}

/**
 * Joins records: new ones and those carried over from earlier runs (the objects' form of
 * joinColumns; the records' pendingSinceMs are updated as it sets them).
 */
export function joinRecords(records: Rec[], o: JoinOptions): JoinResult {
  const c = new RecordColumns(Math.max(16, records.length));
  for (const r of records) c.push(r);
  const j = joinColumns(c, o);
  for (let i = 0; i < c.n; i++) if (!Number.isNaN(c.since[i]!)) records[i]!.pendingSinceMs = c.since[i]!;
  const paths: Path[] = [];
  for (let k = 0; k < j.paths.n; k++) paths.push(j.paths.path(k, c, records[j.paths.tx[k]!], records[j.paths.rx[k]!]));
  return {
    paths,
    unmatched: j.unmatched.map((u) => ({ rec: records[u.index]!, src: u.src, dst: u.dst, tNs: u.tNs, reason: u.reason })),
    pending: j.pending.map((i) => records[i]!),
  };
}

/**
 * The device crossings of a record with several ("ifindex:netns:rx:ns,...", from `from` to `to`
 * of `text`): for each after the first, its device and its delay from the crossing before. Read
 * in place, in numbers: times of up to 20 digits are taken as their top digits and last nine,
 * so a delay is exact however long the server has been up (past 2^53 ns, 104 days).
 */
export function eachHopDelay(text: string, fn: (ifindex: number, netns: number, ns: number) => void, from = 0, to = text.length): void {
  let first = true, prevHi = 0, prevLo = 0;
  for (let i = from; i < to; ) {
    let ifindex = 0, netns = 0, hi = 0, lo = 0, digits = 0, field = 0, c = 0;
    for (; i < to && (c = text.charCodeAt(i)) !== 44; i++) {
      if (c === 58) {
        field++;
        continue;
      }
      const d = c - 48;
      if (field === 0) ifindex = ifindex * 10 + d;
      else if (field === 1) netns = netns * 10 + d;
      else if (field === 3) {
        // the ninth digit from the end moves to hi when a tenth comes: hi holds all but the last nine
        if (++digits > 9) {
          const top = Math.floor(lo / 1e8);
          hi = hi * 10 + top;
          lo = (lo - top * 1e8) * 10 + d;
        } else lo = lo * 10 + d;
      }
    }
    i++; // past the comma
    if (!first) fn(ifindex, netns, (hi - prevHi) * 1e9 + (lo - prevLo));
    first = false;
    prevHi = hi;
    prevLo = lo;
  }
}
