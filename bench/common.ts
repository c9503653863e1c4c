/** What every benchmark needs: numeric --name VALUE options, its BPF objects, and the one statistics helper. */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

import { mariadbRunning, redisRunning, stopMariaDb, stopRedis } from '../local/servers.js';

export { median, quantile } from '../lib/stats.js';

/**
 * The local Redis and MariaDB as a benchmark found them: stop() stops the ones it started itself,
 * so that nothing it started outlives it (a test run or CI after it needs their ports).
 */
export function localServers(): { stop(): Promise<void> } {
  const had = { redis: redisRunning(), db: mariadbRunning() };
  return {
    async stop() {
      if (!had.redis) await stopRedis().catch(() => {});
      if (!had.db) await stopMariaDb().catch(() => {});
    },
  };
}

/** --NAME VALUE as a number (def without it); a value that is not a number is refused, naming the option. */
export function numberArg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  if (v === undefined || v.trim() === '' || !Number.isFinite(Number(v))) {
    console.error(`${benchName()}: --${name} needs a number (got ${v === undefined ? 'nothing' : JSON.stringify(v)}); --help shows the options`);
    process.exit(64);
  }
  return Number(v);
}

const benchName = () => `bench/${basename(process.argv[1] ?? 'bench', '.js')}`;

// --help (or -h): the benchmark's own comment, which says what it measures and how to run it, and nothing run
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const doc = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(process.argv[1]!, 'utf8'))?.[1] ?? ' no description';
  console.log(`${benchName()}\n${doc.split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n').trim()}`);
  process.exit(0);
}

/** A benchmark's own BPF object (bench/bpf/NAME.bpf.c, built into dist/bench/bpf, never shipped). */
export const benchObject = (name: string): string => join(projectRoot, 'dist', 'bench', 'bpf', `${name}.bpf.o`);
