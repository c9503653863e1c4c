/**
 * Durations as people write them on a command line: 90s, 15m, 2h, 1d, 1h30m, 250ms (a bare
 * number is seconds). One parser for every option that takes a time.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "15m", "1h30m" and the like; throws naming the text and the forms it takes. */
export function parseDuration(text: string): number {
  const t = text.trim();
  const bad = () => new RangeError(`"${text}" is not a duration: write it like 90s, 15m, 1h30m, 2h or 1d`);
  if (/^\d+(?:\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(t)) throw bad();
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNITS[m[2]!]!;
  if (!Number.isFinite(ms)) throw bad();
  return ms;
}
