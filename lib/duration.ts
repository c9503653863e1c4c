/** Durations as people write them on a command line: 90s, 15m, 2h, 1d (a bare number is seconds). */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "15m" and the like; throws naming the text and the forms it takes. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new RangeError(`"${text}" is not a duration: write it like 90s, 15m, 2h or 1d`);
  return Number(m[1]) * UNITS[m[2] ?? 's']!;
}
