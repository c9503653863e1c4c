/**
 * Each server's clock against the manager's timeline, from its time-sync rounds: a timestamp of
 * the server (CLOCK_MONOTONIC of its kernel) becomes manager time with an error bound.
 *
 * Between two rounds the offset is interpolated linearly, and so is the bound (exact for a clock
 * whose drift is constant between them), plus the fit's drift bound over the distance to the
 * nearer round for what the drift may wander. Before the first round and after the last the
 * offset is carried along the fitted drift, and the bound grows with the drift bound: a record
 * far from any round gets a wide bound rather than a wrong figure.
 *
 * Arithmetic stays exact: servers' clocks may be years apart (boot times), so absolute times
 * are bigint and everything per record is a double relative to the server's own base.
 */
import { fitClock, MAX_DRIFT_PPB } from '../timesync/estimator.js';
import type { Pool } from '../db/pool.js';
import { big } from '../db/pool.js';
import { clockRounds } from './store.js';

export interface Round {
  atNs: bigint;
  offsetNs: bigint;
  boundNs: number;
  /** Manager wall clock at atNs (ms since 1970), when known. */
  atUnixMs?: number;
}

/** A server timestamp on the manager timeline: relative to the timeline's base (see ClockTimeline.baseNs), with its bound. */
export interface Mapped {
  ns: number;
  boundNs: number;
}

/** Rounds used for the drift at either end. */
const FIT_WINDOW = 16;

export class ClockTimeline {
  /** Manager time of the first round: the base of relative manager times. */
  readonly baseNs: bigint;
  /** Server time at baseNs: the base of relative server times. */
  readonly serverBaseNs: bigint;
  private readonly x: Float64Array; // round times, relative to baseNs
  private readonly phi: Float64Array; // offsets, relative to the first
  private readonly b: Float64Array; // bounds
  private readonly unix: (number | undefined)[];
  private readonly head: { drift: number; driftBound: number };
  private readonly tail: { drift: number; driftBound: number };
  private lastLo = 0;

  constructor(rounds: Round[]) {
    if (!rounds.length) throw new RangeError('clock timeline: no rounds');
    const rs = [...rounds].sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0));
    this.baseNs = rs[0]!.atNs;
    const o0 = rs[0]!.offsetNs;
    this.serverBaseNs = this.baseNs + o0;
    this.x = Float64Array.from(rs, (r) => Number(r.atNs - this.baseNs));
    this.phi = Float64Array.from(rs, (r) => Number(r.offsetNs - o0));
    this.b = Float64Array.from(rs, (r) => r.boundNs);
    this.unix = rs.map((r) => r.atUnixMs);
    const drift = (part: Round[]) => {
      if (part.length < 2) return { drift: 0, driftBound: MAX_DRIFT_PPB / 1e9 };
      const f = fitClock(part);
      return { drift: f.driftPpb / 1e9, driftBound: f.driftBoundPpb / 1e9 };
    };
    this.head = drift(rs.slice(0, FIT_WINDOW));
    this.tail = drift(rs.slice(-FIT_WINDOW));
  }

  get rounds(): number {
    return this.x.length;
  }

  /** Manager time (relative to baseNs) of the last round. */
  get lastRoundNs(): number {
    return this.x[this.x.length - 1]!;
  }

  /** The offset (relative to the first round's) and its bound at manager time x (relative). */
  offsetAt(x: number): Mapped {
    this.offsetNs(x);
    return { ns: this.mapped[0]!, boundNs: this.mapped[1]! };
  }

  /**
   * offsetAt(x) into `mapped`: [0] the offset, [1] its bound. The analysis maps every record
   * through here: no object, no number returned, and small enough for V8 to inline (a number
   * passed to or returned from a call that is not inlined is boxed, an allocation per call).
   */
  private offsetNs(x: number): void {
    const m = this.mapped, xs = this.x, last = xs.length - 1;
    const before = x <= xs[0]!;
    if (before || x >= xs[last]!) {
      // outside the rounds: extrapolated with the drift fitted at that end
      const i = before ? 0 : last, end = before ? this.head : this.tail, d = x - xs[i]!;
      m[1] = this.b[i]! + end.driftBound * Math.abs(d);
      m[0] = this.phi[i]! + end.drift * d;
      return;
    }
    // xs[lo] <= x < xs[lo + 1]; records come in time order, so the last segment usually fits
    let lo = this.lastLo;
    if (!(xs[lo]! <= x && x < xs[lo + 1]!)) lo = this.seek(x);
    const hi = lo + 1, span = xs[hi]! - xs[lo]!;
    const l = span > 0 ? (x - xs[lo]!) / span : 0;
    const wander = Math.min(this.head.driftBound, this.tail.driftBound) * Math.min(x - xs[lo]!, xs[hi]! - x);
    m[1] = (1 - l) * this.b[lo]! + l * this.b[hi]! + wander;
    m[0] = this.phi[lo]! + l * (this.phi[hi]! - this.phi[lo]!);
  }

  /** The round lo with x[lo] <= x < x[lo + 1], x strictly between the first round and the last (bisection). */
  private seek(x: number): number {
    let lo = 0, hi = this.x.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.x[mid]! <= x) lo = mid;
      else hi = mid;
    }
    return (this.lastLo = lo);
  }

  /** The last offsetNs: the offset, its bound. */
  private readonly mapped = new Float64Array(2);

  /** A server timestamp, relative to serverBaseNs, on the manager timeline (relative to baseNs). */
  toManager(serverRel: number): Mapped {
    const ns = this.managerNs(serverRel);
    return { ns, boundNs: this.mapped[1]! };
  }

  /** toManager(serverRel).ns, its bound left in `lastBound` (no object). */
  managerNs(serverRel: number): number {
    // server = manager + offset(manager), the offset relative to the first round's: a step from
    // the server time is off by drift x offset (ppm of it), the second by ppm of that
    // (one call site in a loop: offsetNs is inlined once, not twice, leaving room to inline this)
    const m = this.mapped;
    m[0] = 0;
    for (let step = 0; step < 2; step++) this.offsetNs(serverRel - m[0]!);
    return serverRel - m[0]!;
  }

  /** The bound of the last managerNs. */
  get lastBound(): number {
    return this.mapped[1]!;
  }

  /** Whether manager time x (relative) lies between two rounds (not extrapolated). */
  bracketed(x: number): boolean {
    return x >= this.x[0]! && x <= this.x[this.x.length - 1]!;
  }

  /** The manager's wall clock (ms since 1970) at manager time x (relative), from the nearest dated round. */
  unixMsAt(x: number): number | undefined {
    let best: number | undefined;
    let bestD = Infinity;
    for (let i = 0; i < this.x.length; i++) {
      const u = this.unix[i];
      if (u === undefined) continue;
      const d = Math.abs(x - this.x[i]!);
      if (d < bestD) {
        bestD = d;
        best = u + (x - this.x[i]!) / 1e6;
      }
    }
    return best;
  }
}

/** Every server's rounds from clock_offsets, as timelines by server name. */
export async function loadTimelines(pool: Pool): Promise<Map<string, ClockTimeline>> {
  const by = new Map<string, Round[]>();
  for (const r of await clockRounds(pool)) {
    const list = by.get(r.server) ?? [];
    list.push({ atNs: big(r.at_ns), offsetNs: big(r.offset_ns), boundNs: Number(r.bound_ns), atUnixMs: r.at_unix_ms === null ? undefined : Number(r.at_unix_ms) });
    by.set(r.server, list);
  }
  return new Map([...by].map(([name, rounds]) => [name, new ClockTimeline(rounds)]));
}
