/**
 * Clock offsets in MySQL (table clock_offsets): each round's estimate is written once per
 * (server, round), so a retried job never duplicates a row; the analyzer reads a server's
 * latest window back as a ClockFit to map its timestamps into the manager's timeline.
 */
import { big, type Pool } from '../db/pool.js';
import { fitClock, type ClockFit, type RoundEstimate } from './estimator.js';

export interface StoredRound extends RoundEstimate {
  driftPpb: number;
  driftBoundPpb: number;
  lost: number;
  /** The manager's wall clock (ms since 1970) at atNs. */
  atUnixMs: number;
}

export async function storeRound(pool: Pool, name: string, r: StoredRound): Promise<void> {
  await pool.query(
    `INSERT INTO clock_offsets (server, round, at_ns, at_unix_ms, offset_ns, bound_ns, drift_ppb, drift_bound_ppb, samples, kept, lost, min_delay_ns, median_delay_ns)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE round = round`,
    [name, r.round, r.atNs.toString(), Math.round(r.atUnixMs), r.offsetNs.toString(), r.boundNs, r.driftPpb, r.driftBoundPpb, r.samples, r.kept, r.lost, r.minDelayNs, r.medianDelayNs],
  );
}

/** The last `window` rounds of a server (oldest first), up to manager time `beforeNs`. */
export async function recentRounds(pool: Pool, name: string, window: number, beforeNs?: bigint): Promise<Pick<RoundEstimate, 'atNs' | 'offsetNs' | 'boundNs'>[]> {
  const [rows] = (await pool.query(
    `SELECT at_ns, offset_ns, bound_ns FROM clock_offsets WHERE server = ? ${beforeNs === undefined ? '' : 'AND at_ns <= ?'} ORDER BY at_ns DESC LIMIT ?`,
    beforeNs === undefined ? [name, window] : [name, beforeNs.toString(), window],
  )) as any;
  return rows.reverse().map((r: any) => ({ atNs: big(r.at_ns), offsetNs: big(r.offset_ns), boundNs: Number(r.bound_ns) }));
}

/** The server's clock model from its latest rounds, or undefined before its first round. */
export async function loadClockFit(pool: Pool, name: string, window = 16, beforeNs?: bigint): Promise<ClockFit | undefined> {
  const rounds = await recentRounds(pool, name, window, beforeNs);
  return rounds.length ? fitClock(rounds) : undefined;
}
