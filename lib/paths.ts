/**
 * Where things are: the repository (from the compiled dist/ tree) and the work directory that
 * holds the local servers' data, the testbed's keys and generated secrets.
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file runs as dist/lib/paths.js). */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** LATSCOPE_WORKDIR, or .work/ in the repository; created on first use, private to root. */
export function workDir(...sub: string[]): string {
  const dir = join(process.env.LATSCOPE_WORKDIR ?? join(projectRoot, '.work'), ...sub);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** `~` and `~/…` as the shell expands them (the home of the user latscope runs as). */
export const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);
