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

/** The benchmark's own comment (its first doc comment): what it measures, and its options. */
export function benchDoc(script: string): string {
  const doc = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(script, 'utf8'))?.[1] ?? '';
  return doc.split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n').trim();
}

/** The options a benchmark's comment names (--name): the ones it takes. */
export const documentedOptions = (doc: string): Set<string> => new Set([...doc.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));

// before anything runs: --help (or -h) prints the comment; an option it does not name is refused
// (a typo would otherwise run the defaults for minutes)
if (process.argv[1]?.includes(join('dist', 'bench')) && !process.argv[1].endsWith('stream-worker.js')) {
  const doc = benchDoc(process.argv[1]);
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(`${benchName()}\n${doc || 'no description'}`);
    process.exit(0);
  }
  const known = documentedOptions(doc);
  const unknown = process.argv.slice(2).filter((a) => a.startsWith('--') && !known.has(a.slice(2)));
  if (unknown.length) {
    console.error(`${benchName()}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; it takes ${[...known].map((k) => `--${k}`).join(', ') || 'none'} (--help says more)`);
    process.exit(64);
  }
}

/**
 * SIGTERM and Ctrl-C ask a benchmark to stop. stopOnSignals() installs the handlers (on, not
 * once: the addon's exit cleanup steps in for a signal nobody else handles); then the onStop
 * callbacks run (children killed, sleeps cut short) and checkStop() between steps throws, so
 * that the benchmark's finally blocks remove what it made (testbed, servers, streams, programs)
 * before it exits with its error status.
 */
let stopping = false;
let listening = false;
const stopCallbacks = new Set<() => void>();
export function stopOnSignals(): void {
  if (listening) return;
  listening = true;
  process.on('SIGTERM', requestStop);
  process.on('SIGINT', requestStop);
}
function requestStop(): void {
  if (stopping) return;
  stopping = true;
  for (const f of [...stopCallbacks]) f();
}
/** Runs `f` when a stop is asked for (at once if it was); returns its removal. */
export function onStop(f: () => void): () => void {
  if (stopping) f();
  stopCallbacks.add(f);
  return () => stopCallbacks.delete(f);
}
export const stopRequested = (): boolean => stopping;
/** Between steps: a stop asked for ends the benchmark here, the way an error does. */
export function checkStop(): void {
  if (stopping) throw new Error('stopped (SIGTERM or Ctrl-C)');
}
/** A pause that a stop cuts short. */
export function pause(ms: number): Promise<void> {
  if (stopping) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    const off = onStop(done);
    function done() {
      clearTimeout(t);
      off();
      resolve();
    }
  });
}

/** A benchmark's own BPF object (bench/bpf/NAME.bpf.c, built into dist/bench/bpf, never shipped). */
export const benchObject = (name: string): string => join(projectRoot, 'dist', 'bench', 'bpf', `${name}.bpf.o`);
