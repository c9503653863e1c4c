/**
 * Options several commands share, parsed and checked in one place: a malformed value is a usage
 * error (exit 64) naming the option. --conf defaults to $LATSCOPE_CONF, then /etc/latscope.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../lib/duration.js';

export const DEFAULT_CONF = '/etc/latscope';

/** --conf DIR: the conf folder; `what` says which files the command reads. */
export function confOption(what: string): Option {
  return new Option('--conf <dir>', `the conf folder (${what})`).default(process.env.LATSCOPE_CONF || DEFAULT_CONF, '$LATSCOPE_CONF, else /etc/latscope');
}

/** A commander parser for a duration option (30s, 1h30m, …) into milliseconds, within [minMs, maxMs]. */
export function durationMs(flag: string, minMs: number, maxMs: number): (v: string) => number {
  return (v) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`${flag} ${v}: expected between ${minMs / 1000} s and ${maxMs / 1000} s`);
    return ms;
  };
}

/** A commander parser for a numeric option within [min, max] (whole numbers unless `fraction`): anything else is a usage error naming it. */
export function numberIn(flag: string, min: number, max: number, fraction = false): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (!fraction && !Number.isInteger(n)) || n < min || n > max)
      throw new InvalidArgumentError(`${flag} ${v}: expected ${fraction ? 'a number' : 'a whole number'} from ${min} to ${max}`);
    return n;
  };
}

/** A duration option kept as written (for messages), checked at parse time: malformed is a usage error. */
export function durationText(flag: string): (v: string) => string {
  const check = durationMs(flag, 1, 100 * 365 * 86_400_000);
  return (v) => (check(v), v);
}

/** An RFC 3339 time with its offset (2026-12-02T14:05:00Z, …T15:05:00+01:00; seconds and fractions optional). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Milliseconds since 1970 of an RFC 3339 time; throws, naming the forms, on anything else. */
export function parseTime(flag: string, v: string): number {
  const m = RFC3339.exec(v);
  const ms = m ? Date.parse(v.replace(' ', 'T')) : NaN;
  // Date.parse rolls 2026-02-31 over into March: the fields must survive the round trip
  const d = new Date(ms);
  const sameDay = m && !Number.isNaN(ms) && Number(m[2]) >= 1 && Number(m[2]) <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate() && Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6] ?? 0) < 60;
  if (!sameDay || Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${flag} ${JSON.stringify(v)}: expected an RFC 3339 time with its offset, like 2026-12-02T14:05:00Z or 2026-12-02T15:05:00+01:00`);
  return ms;
}

/** A commander parser for an RFC 3339 time option into ms since 1970. */
export const timeMs = (flag: string) => (v: string): number => parseTime(flag, v);

/**
 * The range a command reports on, from --since, --from and --to: [fromUnixMs, untilUnixMs), each
 * undefined when open. --since and --from together, or --to before --from, are usage errors.
 */
export function rangeOf(o: { since?: string; from?: number; to?: number }, now = Date.now()): { sinceUnixMs?: number; untilUnixMs?: number } {
  if (o.since !== undefined && o.from !== undefined) throw new InvalidArgumentError('--since and --from: give one of them (--since counts back from now, --from is a time)');
  const from = o.since !== undefined ? now - parseDuration(o.since) : o.from;
  if (from !== undefined && o.to !== undefined && o.to <= from) throw new InvalidArgumentError(`--to ${new Date(o.to).toISOString()} is not after the start ${new Date(from).toISOString()}`);
  return { sinceUnixMs: from, untilUnixMs: o.to };
}

/** Runs a check inside a command's action: an InvalidArgumentError becomes a usage error (printed, exit 64). */
export function orUsageError<T>(cmd: Command, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof InvalidArgumentError) cmd.error(`error: ${e.message}`, { exitCode: 64, code: 'latscope.usage' });
    throw e;
  }
}
