/** What every benchmark needs: numeric --name VALUE options, its BPF objects, and the one statistics helper. */
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

export { median, quantile } from '../lib/stats.js';

export function numberArg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

/** A benchmark's own BPF object (bench/bpf/NAME.bpf.c, built into dist/bench/bpf, never shipped). */
export const benchObject = (name: string): string => join(projectRoot, 'dist', 'bench', 'bpf', `${name}.bpf.o`);
