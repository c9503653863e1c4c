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
import { F_ROW_RETRANS } from '../protocol/records.js';
import type { Mapped } from './clock.js';

/** One packets row as the analyzer needs it: times relative to its server's clock base (NaN: not seen). */
export interface Rec {
  server: number;
  seq: number;
  tx: boolean;
  flow: number;
  sample: number;
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
  /** Maps a time relative to the server's base onto the global timeline (relative to the analysis base). */
  toGlobal(serverRel: number): Mapped;
  /** Whether a manager time (global) lies after the server's last clock round (so a later round may still refine it). */
  beyondLastRound(globalNs: number): boolean;
  synced: boolean;
}

export const F_RETRANS = 1;
export const F_FAULT = 2;
export const F_COMPLETE = 4;
export const F_NO_FIT = 8;

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
/** A record's time at the first layer it has (NaN: none). */
export const firstTime = (r: Rec): number => (r.tx ? (Number.isNaN(r.sock) ? (Number.isNaN(r.tcp) ? (Number.isNaN(r.ip) ? r.dev : r.ip) : r.tcp) : r.sock) : Number.isNaN(r.dev) ? (Number.isNaN(r.ip) ? (Number.isNaN(r.tcp) ? r.sock : r.tcp) : r.ip) : r.dev);
/** The time a record crosses the wire: the sender's last device, the receiver's first. */
const wireTime = (r: Rec): number => (r.tx ? (Number.isNaN(r.last) ? firstTime(r) : r.last) : Number.isNaN(r.dev) ? firstTime(r) : r.dev);

/** The path of a sender record and a receiver record: every segment, the totals and the bound. */
export function buildPath(tx: Rec, rx: Rec, o: Pick<JoinOptions, 'clock' | 'ends'>): Path {
  const ends = o.ends(tx.flow);
  const sameClock = tx.server === rx.server;
  const ct = o.clock(tx.server), cr = o.clock(rx.server);
  const out = ct.toGlobal(tx.last), inn = cr.toGlobal(rx.dev);
  const wire = sameClock ? rx.dev - tx.last : inn.ns - out.ns;
  const bound = sameClock ? 0 : out.boundNs + inn.boundNs;
  const seg = [tx.tcp - tx.sock, tx.ip - tx.tcp, tx.dev - tx.ip, tx.last - tx.dev, Number.isFinite(bound) ? wire : NaN, rx.last - rx.dev, rx.ip - rx.last, rx.tcp - rx.ip, rx.sock - rx.tcp];
  let complete = true;
  for (let i = 0; i < NSEG; i++) if (Number.isNaN(seg[i]!)) complete = false;
  const oneWay = seg[3]! + seg[4]!;
  const e2e = tx.last - tx.sock + seg[4]! + (rx.sock - rx.dev);
  let flags = complete ? F_COMPLETE : 0;
  // the sender knows: the receiver's flag also marks a segment that arrived out of order
  if (tx.attempt > 0 || tx.flags & F_ROW_RETRANS) flags |= F_RETRANS;
  if (!Number.isFinite(bound)) flags |= F_NO_FIT;
  else if (wire < -bound) flags |= F_FAULT; // a negative delay beyond its bound: the clocks are wrong, not the packet
  return { tx, rx, src: ends.src || tx.server, dst: ends.dst || rx.server, tNs: ct.toGlobal(firstTime(tx)).ns, seg, oneWay, e2e, bound, flags };
}

/**
 * Joins records: new ones and those carried over from earlier runs. Records of a key are paired
 * by time; what is left waits or, past the grace period, is unmatched.
 */
export function joinRecords(records: Rec[], o: JoinOptions): JoinResult {
  // flow -> sample -> its record, or its records when there are several
  const byKey = new Map<number, Map<number, Rec | Rec[]>>();
  for (const r of records) {
    let inner = byKey.get(r.flow);
    if (!inner) byKey.set(r.flow, (inner = new Map()));
    const had = inner.get(r.sample);
    if (had === undefined) inner.set(r.sample, r);
    else if (Array.isArray(had)) had.push(r);
    else inner.set(r.sample, [had, r]);
  }
  const res: JoinResult = { paths: [], unmatched: [], pending: [] };
  const at = (r: Rec) => o.clock(r.server).toGlobal(wireTime(r));
  for (const [flow, inner] of byKey) {
    const ends = o.ends(flow);
    for (const v of inner.values()) {
      if (!Array.isArray(v)) settle(v, ends, o, res);
      else if (v.length === 2 && v[0]!.tx !== v[1]!.tx) pairOne(v[0]!.tx ? v[0]! : v[1]!, v[0]!.tx ? v[1]! : v[0]!, ends, at, o, res);
      else pairMany(v, ends, at, o, res);
    }
  }
  return res;
}

/** The common case: one sender record and one receiver record of a sample. */
function pairOne(tx: Rec, rx: Rec, ends: FlowEnds, at: (r: Rec) => Mapped, o: JoinOptions, res: JoinResult): void {
  const t = at(tx), x = at(rx);
  const slack = tx.server === rx.server ? 0 : Math.min(t.boundNs + x.boundNs, 1e12);
  if (t.ns <= x.ns + slack || t.ns - x.ns < CLOCK_FAULT_WINDOW_NS) {
    const p = buildPath(tx, rx, o);
    if (waitForClock(p, t, x, o)) res.pending.push(tx, rx);
    else res.paths.push(p);
  } else {
    settle(tx, ends, o, res);
    settle(rx, ends, o, res);
  }
}

/** Several records of a sample (retransmissions, a wrap): each arrival takes the latest transmission before it. */
function pairMany(list: Rec[], ends: FlowEnds, at: (r: Rec) => Mapped, o: JoinOptions, res: JoinResult): void {
  const txs: { r: Rec; t: Mapped; used: boolean }[] = [];
  const rxs: { r: Rec; t: Mapped }[] = [];
  for (const r of list) {
    if (r.tx) txs.push({ r, t: at(r), used: false });
    else rxs.push({ r, t: at(r) });
  }
  txs.sort((a, b) => a.t.ns - b.t.ns);
  rxs.sort((a, b) => a.t.ns - b.t.ns);
  const left: Rec[] = [];
  for (const x of rxs) {
    // the latest sender record that left before this arrival (within both clocks' bounds);
    // failing that, the first one that left less than a second after it: a clock wrong beyond
    // its bound, which the path then shows as a fault rather than hiding it as unmatched
    let best = -1;
    for (let i = 0; i < txs.length; i++) {
      const t = txs[i]!;
      if (t.used) continue;
      const slack = t.r.server === x.r.server ? 0 : Math.min(t.t.boundNs + x.t.boundNs, 1e12);
      if (t.t.ns <= x.t.ns + slack) best = i;
      else {
        if (best < 0 && t.t.ns - x.t.ns < CLOCK_FAULT_WINDOW_NS) best = i;
        break;
      }
    }
    if (best < 0) left.push(x.r);
    else {
      const t = txs[best]!;
      t.used = true;
      const p = buildPath(t.r, x.r, o);
      if (waitForClock(p, t.t, x.t, o)) res.pending.push(t.r, x.r);
      else res.paths.push(p);
    }
  }
  for (const t of txs) if (!t.used) left.push(t.r);
  for (const r of left) settle(r, ends, o, res);
}

/** Whether a joined pair should wait for a time-sync round that would narrow its bound. */
function waitForClock(p: Path, out: Mapped, inn: Mapped, o: JoinOptions): boolean {
  if (o.deferBoundNs === undefined || !(p.bound > o.deferBoundNs) || !Number.isFinite(p.bound)) return false;
  const ct = o.clock(p.tx.server), cr = o.clock(p.rx.server);
  if (!(ct.beyondLastRound(out.ns) || cr.beyondLastRound(inn.ns))) return false;
  const since = Math.min(p.tx.pendingSinceMs ?? o.nowMs, p.rx.pendingSinceMs ?? o.nowMs);
  if (o.nowMs - since >= o.graceMs) return false;
  p.tx.pendingSinceMs = p.rx.pendingSinceMs = since;
  return true;
}

/** A record without a partner: unmatched now, or waiting. */
function settle(r: Rec, ends: FlowEnds, o: JoinOptions, res: JoinResult): void {
  const peer = r.tx ? ends.dst : ends.src;
  const tNs = o.clock(r.server).toGlobal(firstTime(r)).ns;
  const src = ends.src || (r.tx ? r.server : 0), dst = ends.dst || (r.tx ? 0 : r.server);
  if (!peer) {
    res.unmatched.push({ rec: r, src, dst, tNs, reason: 'peer_not_observed' });
    return;
  }
  const since = r.pendingSinceMs ?? o.nowMs;
  if (o.nowMs - since < o.graceMs) {
    r.pendingSinceMs = since;
    res.pending.push(r);
    return;
  }
  res.unmatched.push({ rec: r, src, dst, tNs, reason: r.tx ? 'no_receiver_record' : 'no_sender_record' });
}

/** The layer segments a single record tells on its own (host scope): SEGMENTS indices and values. */
export function recordSegments(r: Rec): [index: number, ns: number][] {
  const out: [number, number][] = [];
  const put = (i: number, v: number) => Number.isNaN(v) || out.push([i, v]);
  if (r.tx) {
    put(0, r.tcp - r.sock);
    put(1, r.ip - r.tcp);
    put(2, r.dev - r.ip);
    put(3, r.last - r.dev);
  } else {
    put(5, r.last - r.dev);
    put(6, r.ip - r.last);
    put(7, r.tcp - r.ip);
    put(8, r.sock - r.tcp);
  }
  return out;
}

/** The device crossings of a record with several: [ifindex@netns of the device, delay from the previous crossing]. */
export function hopDelays(r: Rec): [string, number][] {
  if (!r.hops) return [];
  const out: [string, number][] = [];
  let prev: string | undefined;
  for (const h of r.hops.split(',')) {
    const c1 = h.indexOf(':'), c2 = h.indexOf(':', c1 + 1), c3 = h.indexOf(':', c2 + 1);
    const ns = h.slice(c3 + 1);
    // exact as doubles below 2^53 ns (104 days of uptime), else as bigints
    if (prev !== undefined) out.push([`${h.slice(0, c1)}@${h.slice(c1 + 1, c2)}`, ns.length < 16 && prev.length < 16 ? Number(ns) - Number(prev) : Number(BigInt(ns) - BigInt(prev))]);
    prev = ns;
  }
  return out;
}
