/**
 * Options several commands share, parsed and checked in one place: a malformed value is a usage
 * error (exit 64) naming the option. --conf defaults to $LATSCOPE_CONF, then /etc/latscope.
 */
import { InvalidArgumentError, Option } from 'commander';
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

/** A duration option kept as written (for messages), checked at parse time: malformed is a usage error. */
export function durationText(flag: string): (v: string) => string {
  const check = durationMs(flag, 1, 100 * 365 * 86_400_000);
  return (v) => (check(v), v);
}
