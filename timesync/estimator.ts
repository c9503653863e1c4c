/**
 * Clock offset and drift from four-timestamp probes. Offset θ is the server's clock minus the
 * manager's (NTP's convention): per probe θ = ((t2 − t1) + (t3 − t4)) / 2 and the round-trip
 * delay δ = (t4 − t1) − (t3 − t2). Whatever the path asymmetry, the true offset at the probe
 * lies within θ ± δ/2 (both one-way delays are ≥ 0): that causality interval is the basis of
 * every error bound here, so a bound holds without assuming symmetric paths.
 *
 * Clocks may differ by more than 2^53 ns (servers booted years apart): the exact parts stay
 * bigint, and only differences within a round or fit window become floating point.
 */
import type { Sample } from '../protocol/timesync.js';
import { median } from '../lib/stats.js';

export interface RoundEstimate {
  server: string;
  round: number;
  /** Manager time (ns) the offset refers to: the centroid of the kept probes. */
  atNs: bigint;
  /** Server clock minus manager clock at atNs. */
  offsetNs: bigint;
  /** |estimate − truth| ≤ boundNs, from the causality interval of the best probes. */
  boundNs: number;
  samples: number;
  kept: number;
  minDelayNs: number;
  medianDelayNs: number;
}

export interface EstimateOptions {
  /** Fraction of probes kept, lowest round-trip delay first (minimum-delay filter). */
  keepFraction?: number;
  /** At least this many kept (when there are). */
  minKept?: number;
}

/** The offset of one probe (ns, exact to 0.5 ns) and its delay. */
export function probeOffset(s: Sample): { offsetNs: number; offset2x: bigint; delayNs: number; midNs: bigint } {
  const offset2x = s.t2 - s.t1 + (s.t3 - s.t4);
  return { offset2x, offsetNs: Number(offset2x) / 2, delayNs: Number(s.t4 - s.t1 - (s.t3 - s.t2)), midNs: (s.t1 + s.t4) / 2n };
}

/** Least squares y = a + b·x over points; a is at mean x. */
function fitLine(xs: number[], ys: number[]): { meanX: number; meanY: number; slope: number } {
  const n = xs.length;
  const meanX = xs.reduce((a, b) => a + b, 0) / n;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - meanX) ** 2;
    sxy += (xs[i]! - meanX) * (ys[i]! - meanY);
  }
  return { meanX, meanY, slope: sxx === 0 ? 0 : sxy / sxx };
}

/**
 * One round's offset for one server: the lowest-delay probes are kept, each carried to their
 * centroid in time with the known drift (`driftPpb`, 0 before any fit), and averaged. The bound
 * is the tightest causality interval among them carried the same way, plus the drift's own
 * bound over the distance carried (500 ppm while the drift is unknown): a hard bound, whatever
 * the path asymmetry or the noise.
 */
export function estimateRound(samples: Sample[], o: EstimateOptions & { driftPpb?: number; driftBoundPpb?: number } = {}): RoundEstimate {
  if (samples.length === 0) throw new RangeError('time sync: no completed probes in this round');
  const points = samples.map(probeOffset).filter((p) => p.delayNs >= 0); // δ < 0 cannot happen on sane clocks
  if (points.length === 0) throw new RangeError('time sync: no probe with a non-negative round trip');
  points.sort((a, b) => a.delayNs - b.delayNs);
  const keep = Math.min(points.length, Math.max(o.minKept ?? 3, Math.ceil(points.length * (o.keepFraction ?? 0.25))));
  const kept = points.slice(0, keep);
  const tRef = kept[0]!.midNs;
  const oRef = kept[0]!.offset2x;
  const slope = (o.driftPpb ?? 0) / 1e9;
  const slopeBound = (o.driftBoundPpb ?? MAX_DRIFT_PPB) / 1e9;
  const xs = kept.map((p) => Number(p.midNs - tRef));
  const meanX = xs.reduce((a, b) => a + b, 0) / keep;
  // each probe's offset carried to the centroid along the drift
  const ys = kept.map((p, i) => Number(p.offset2x - oRef) / 2 + slope * (meanX - xs[i]!));
  const est = ys.reduce((a, b) => a + b, 0) / keep;
  let bound = Infinity;
  for (let i = 0; i < keep; i++) {
    const b = Math.abs(est - ys[i]!) + kept[i]!.delayNs / 2 + slopeBound * Math.abs(xs[i]! - meanX);
    if (b < bound) bound = b;
  }
  return {
    server: samples[0]!.server,
    round: samples[0]!.round,
    atNs: tRef + BigInt(Math.round(meanX)),
    offsetNs: oRef / 2n + BigInt(Math.round(Number(oRef % 2n) / 2 + est)),
    boundNs: bound,
    samples: samples.length,
    kept: keep,
    minDelayNs: kept[0]!.delayNs,
    medianDelayNs: median(points.map((p) => p.delayNs)),
  };
}

/** A server's clock model over a window of rounds. */
export interface ClockFit {
  /** Manager time of the reference point (the window's centroid). */
  refNs: bigint;
  /** Offset at refNs. */
  offsetNs: bigint;
  /** Drift: change of the offset per unit of manager time, in parts per billion. */
  driftPpb: number;
  /** |drift − truth| ≤ driftBoundPpb (from the first and last rounds' bounds). */
  driftBoundPpb: number;
  /** The rounds behind the fit, oldest first. */
  rounds: Pick<RoundEstimate, 'atNs' | 'offsetNs' | 'boundNs'>[];
}

/** Clock crystals stay within ±500 ppm (NTP's tolerance): the drift bound of a single round. */
export const MAX_DRIFT_PPB = 500_000;

/**
 * Offset and drift from a window of round estimates (any order): least squares for the drift,
 * and a hard bound from the first and last rounds' intervals: the true slope lies between the
 * lines joining their extremes.
 */
export function fitClock(rounds: Pick<RoundEstimate, 'atNs' | 'offsetNs' | 'boundNs'>[]): ClockFit {
  if (rounds.length === 0) throw new RangeError('time sync: no rounds to fit');
  const rs = [...rounds].sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0));
  const t0 = rs[0]!.atNs, o0 = rs[0]!.offsetNs;
  const xs = rs.map((r) => Number(r.atNs - t0));
  const ys = rs.map((r) => Number(r.offsetNs - o0));
  if (rs.length === 1 || xs[xs.length - 1] === 0)
    return { refNs: t0, offsetNs: o0, driftPpb: 0, driftBoundPpb: MAX_DRIFT_PPB, rounds: rs };
  const line = fitLine(xs, ys);
  const first = rs[0]!, last = rs[rs.length - 1]!;
  const span = xs[xs.length - 1]!;
  const endSlope = ys[ys.length - 1]! / span;
  const driftBound = Math.abs(line.slope - endSlope) + (first.boundNs + last.boundNs) / span;
  return {
    refNs: t0 + BigInt(Math.round(line.meanX)),
    offsetNs: o0 + BigInt(Math.round(line.meanY)),
    driftPpb: line.slope * 1e9,
    driftBoundPpb: Math.min(driftBound * 1e9, MAX_DRIFT_PPB),
    rounds: rs,
  };
}

/**
 * The server's offset at manager time t, with its bound: the fitted line, bounded through the
 * round that best supports it (its own bound, the line's distance from it, and the drift bound
 * over the time between).
 */
export function offsetAt(fit: ClockFit, tNs: bigint): { offsetNs: bigint; boundNs: number } {
  const slope = fit.driftPpb / 1e9;
  let bound = Infinity;
  for (const r of fit.rounds) {
    const lineAtR = Number(fit.offsetNs - r.offsetNs) + slope * Number(r.atNs - fit.refNs); // line − round, at the round
    const b = Math.abs(lineAtR) + r.boundNs + (fit.driftBoundPpb / 1e9) * Math.abs(Number(tNs - r.atNs));
    if (b < bound) bound = b;
  }
  return { offsetNs: fit.offsetNs + BigInt(Math.round(slope * Number(tNs - fit.refNs))), boundNs: bound };
}

/**
 * Maps a timestamp of the server's clock into the manager's timeline (what the analyzer uses to
 * put two servers' layer timestamps on one axis), with its error bound.
 */
export function toManagerTime(fit: ClockFit, serverNs: bigint): { tNs: bigint; boundNs: number } {
  // t = serverNs − θ(t); θ moves by ppm of the first guess's error, so two steps suffice
  let t = serverNs - fit.offsetNs;
  for (let i = 0; i < 2; i++) t = serverNs - offsetAt(fit, t).offsetNs;
  return { tNs: t, boundNs: offsetAt(fit, t).boundNs };
}
