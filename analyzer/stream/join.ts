/**
 * The stream stage's join (issue 22's core, not yet wired to Redis and MySQL): each sampled
 * segment's sender record (tx) and receiver record (rx) meet in memory, keyed by flow and sample,
 * as records arrive. Every record waits `waitNs` past its own time (the streams of different
 * servers lag each other by up to that); when the watermark passes a receiver record, it takes
 * the latest sender record of its key that left before it arrived (a retransmission is its own
 * path, as analyzer/paths.ts pairs them), and what found no partner is counted as unmatched by
 * reason. At most `capacity` records wait; beyond, the oldest is settled early (a receiver record
 * pairs with what is there), and what cannot be is counted as evicted. Times are ns on the manager's timeline (each server's clock fit
 * applied by the caller) as float64; waiting records live in typed arrays, not objects.
 *
 * Joined paths update log-linear sketches (lib/stats LogHistogram) of the one-way delay (sender's last device → receiver's first) and the end-to-end
 * delay (socket → socket) per server pair.
 */
import { LogHistogram } from '../../lib/stats.js';

export interface PairSketches {
  src: number;
  dst: number;
  oneWay: LogHistogram;
  e2e: LogHistogram;
}

/** One record as the join takes it: times on the manager timeline, NaN where a layer is missing. */
export interface JoinRecord {
  server: number;
  /** The flow's id (protocol/records.ts flowId: 52 bits, the same at both ends). */
  flow: number;
  sample: number;
  tx: boolean;
  sock: number;
  /** The device crossing at the wire: the last one on transmit, the first on receive. */
  edge: number;
}

export interface JoinOptions {
  /** Records that may wait at once (memory: about 60 bytes each). */
  capacity: number;
  /** How long past the watermark a record waits for its other end (clock bound plus grace). */
  waitNs: number;
}

export interface JoinCounters {
  records: number;
  paths: number;
  /** Waited longer than waitNs: no receiver record for a tx, no sender record for an rx. */
  noReceiver: number;
  noSender: number;
  /** Pushed out while waiting because `capacity` records were waiting. */
  evicted: number;
}

const FREE = 0;
const TX = 1;
const RX = 2;

export class StreamJoin {
  readonly counters: JoinCounters = { records: 0, paths: 0, noReceiver: 0, noSender: 0, evicted: 0 };
  readonly pairs = new Map<number, PairSketches>();
  /** key -> first waiting slot of that key (others chained through next). */
  private readonly index = new Map<number, number>();
  private readonly state: Uint8Array;
  private readonly gen: Uint32Array;
  private readonly server: Uint16Array;
  private readonly flow: Float64Array;
  private readonly sock: Float64Array;
  private readonly edge: Float64Array;
  /** The time a record is ordered by: its socket time on transmit, its first device on receive. */
  private readonly at: Float64Array;
  private readonly next: Int32Array;
  private readonly key: Float64Array;
  /** (slot, generation) in the order slots were filled; entries of joined records are skipped when met. */
  private readonly ringSlot: Int32Array;
  private readonly ringGen: Uint32Array;
  private ringHead = 0;
  private ringLen = 0;
  private live = 0;
  private readonly free: Int32Array;
  private freeTop: number;

  constructor(private readonly o: JoinOptions) {
    const n = o.capacity;
    this.state = new Uint8Array(n);
    this.gen = new Uint32Array(n);
    this.server = new Uint16Array(n);
    this.flow = new Float64Array(n);
    this.sock = new Float64Array(n);
    this.edge = new Float64Array(n);
    this.at = new Float64Array(n);
    this.next = new Int32Array(n);
    this.key = new Float64Array(n);
    this.ringSlot = new Int32Array(2 * n);
    this.ringGen = new Uint32Array(2 * n);
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.freeTop = n;
  }

  /** Records waiting for their other end now. */
  get waiting(): number {
    return this.live;
  }

  /** 21 low bits of the flow id and the 32-bit sample make an exact 53-bit key; the flow is checked on a hit. */
  private static keyOf(flow: number, sample: number): number {
    return (flow % 2097152) * 4294967296 + sample;
  }

  add(r: JoinRecord): void {
    this.counters.records++;
    this.wait(StreamJoin.keyOf(r.flow, r.sample), r);
  }

  /** Whether a receiver record of sender record s's key, that arrived after s left, waits. */
  private laterReceiver(s: number): boolean {
    for (let x = this.index.get(this.key[s]!) ?? -1; x !== -1; x = this.next[x]!)
      if (this.state[x] === RX && this.flow[x] === this.flow[s] && this.at[x]! >= this.at[s]!) return true;
    return false;
  }

  /** Settles a receiver record: the latest sender record of its key that left before it arrived. */
  private settle(s: number): boolean {
    const k = this.key[s]!;
    const t = this.at[s]!;
    let best = -1;
    let bestPrev = -1;
    for (let x = this.index.get(k) ?? -1, prev = -1; x !== -1; prev = x, x = this.next[x]!) {
      if (this.state[x] !== TX || this.flow[x] !== this.flow[s]) continue;
      const tx = this.at[x]!;
      if (tx <= t && (best < 0 || tx > this.at[best]!)) {
        best = x;
        bestPrev = prev;
      }
    }
    if (best < 0) return false;
    this.emit(this.server[best]!, this.sock[best]!, this.edge[best]!, this.server[s]!, this.sock[s]!, this.edge[s]!);
    this.unlink(k, best, bestPrev);
    this.release(best);
    return true;
  }

  private emit(src: number, txSock: number, txEdge: number, dst: number, rxSock: number, rxEdge: number): void {
    this.counters.paths++;
    const pk = src * 65536 + dst;
    let p = this.pairs.get(pk);
    if (!p) this.pairs.set(pk, (p = { src, dst, oneWay: new LogHistogram(), e2e: new LogHistogram() }));
    if (rxEdge === rxEdge && txEdge === txEdge) p.oneWay.add(rxEdge - txEdge); // x === x: not NaN
    if (rxSock === rxSock && txSock === txSock) p.e2e.add(rxSock - txSock);
  }

  private wait(k: number, r: JoinRecord): void {
    if (this.live === this.o.capacity) this.dropHead('evict');
    while (this.ringLen === this.ringSlot.length) this.dropHead('evict');
    const s = this.free[--this.freeTop]!;
    this.state[s] = r.tx ? TX : RX;
    this.gen[s] = (this.gen[s]! + 1) >>> 0;
    this.server[s] = r.server;
    this.flow[s] = r.flow;
    this.sock[s] = r.sock;
    this.edge[s] = r.edge;
    this.at[s] = r.tx ? r.sock : r.edge;
    this.key[s] = k;
    this.next[s] = this.index.get(k) ?? -1;
    this.index.set(k, s);
    const pos = (this.ringHead + this.ringLen) % this.ringSlot.length;
    this.ringSlot[pos] = s;
    this.ringGen[pos] = this.gen[s]!;
    this.ringLen++;
    this.live++;
  }

  private unlink(k: number, s: number, prev: number): void {
    if (prev === -1) {
      if (this.next[s] === -1) this.index.delete(k);
      else this.index.set(k, this.next[s]!);
    } else this.next[prev] = this.next[s]!;
  }

  private release(s: number): void {
    this.state[s] = FREE;
    this.free[this.freeTop++] = s;
    this.live--;
  }

  /** Whether the ring's head is a record still waiting (not one joined since). */
  private headLive(): boolean {
    const s = this.ringSlot[this.ringHead]!;
    return this.state[s] !== FREE && this.gen[s] === this.ringGen[this.ringHead];
  }

  /** Takes the ring's head; a record still waiting there is settled: joined, or counted (evicted, or unmatched by reason). */
  private dropHead(why: 'evict' | 'expire'): void {
    for (;;) {
      const live = this.headLive();
      const s = this.ringSlot[this.ringHead]!;
      this.ringHead = (this.ringHead + 1) % this.ringSlot.length;
      this.ringLen--;
      if (!live) {
        if (this.ringLen === 0) return;
        continue;
      }
      const paired = this.state[s] === RX && this.settle(s);
      if (!paired) {
        if (why === 'evict') this.counters.evicted++;
        else if (this.state[s] === TX) this.counters.noReceiver++;
        else this.counters.noSender++;
      }
      const k = this.key[s]!;
      let prev = -1;
      for (let x = this.index.get(k) ?? -1; x !== -1 && x !== s; x = this.next[x]!) prev = x;
      this.unlink(k, s, prev);
      this.release(s);
      return;
    }
  }

  /**
   * Settles everything that has waited waitNs before `watermarkNs`: receiver records are joined
   * (or counted: no sender record), sender records not taken are counted (no receiver record).
   * Call as the stream's time advances; advance(Infinity) settles everything.
   */
  advance(watermarkNs: number): void {
    while (this.ringLen > 0) {
      if (!this.headLive()) {
        // a record joined since it entered
        this.ringHead = (this.ringHead + 1) % this.ringSlot.length;
        this.ringLen--;
        continue;
      }
      const s = this.ringSlot[this.ringHead]!;
      if (this.at[s]! + this.o.waitNs >= watermarkNs) return;
      if (this.state[s] === TX && this.laterReceiver(s)) {
        // a receiver record of its key that arrived after it still waits: it decides (to the back of the line)
        const g = this.ringGen[this.ringHead]!;
        this.ringHead = (this.ringHead + 1) % this.ringSlot.length;
        const pos = (this.ringHead + this.ringLen - 1) % this.ringSlot.length;
        this.ringSlot[pos] = s;
        this.ringGen[pos] = g;
        continue;
      }
      this.dropHead('expire');
    }
  }
}
