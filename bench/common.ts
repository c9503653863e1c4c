/** What every benchmark needs: numeric --name VALUE options, its BPF objects, and the one statistics helper. */
import { join } from 'node:path';
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

export function numberArg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

/** A benchmark's own BPF object (bench/bpf/NAME.bpf.c, built into dist/bench/bpf, never shipped). */
export const benchObject = (name: string): string => join(projectRoot, 'dist', 'bench', 'bpf', `${name}.bpf.o`);
