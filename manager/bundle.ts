/**
 * The observer bundle the manager installs on every server: the compiled code (dist/ without
 * tests and benchmarks), the BPF objects, the addon and the observer's npm packages, as one
 * tar.gz named by the hash of its content. A server that already has a bundle with that hash
 * gets nothing uploaded, so provisioning again is cheap. The addon is built for this machine's
 * Node ABI and architecture: servers need the same Node major version (checked on install).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, workDir } from '../lib/paths.js';

export interface Bundle {
  path: string;
  hash: string;
  bytes: number;
  /** Node major version the addon was built for. */
  nodeMajor: number;
}

/**
 * What the observer needs at run time (the manager's own libraries, BullMQ, mysql2 and ssh2,
 * stay home): these packages and everything they depend on, as installed here.
 */
const OBSERVER_PACKAGES = ['commander', 'ioredis', 'prom-client', 'yaml', 'zod'];

function packageClosure(names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const pj = join(projectRoot, 'node_modules', name, 'package.json');
    if (!existsSync(pj)) return; // an optional dependency not installed on this platform
    seen.add(name);
    const j = JSON.parse(readFileSync(pj, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const d of Object.keys({ ...j.dependencies, ...j.optionalDependencies })) visit(d);
  };
  names.forEach(visit);
  return [...seen].sort().map((n) => `node_modules/${n}`);
}

/** Builds (or finds) the bundle of the code as built now. */
export function buildBundle(): Bundle {
  const addon = join('native', 'build', 'Release', 'latscope_bpf.node');
  if (!existsSync(join(projectRoot, addon)) || !existsSync(join(projectRoot, 'dist', 'bpf')))
    throw new Error('the observer bundle needs a build: run "bash scripts/build.sh" first');
  const dir = workDir('bundle');
  const tmp = join(dir, `building-${process.pid}.tar.gz`);
  // fixed order, owner and times: the same code gives the same bytes, hence the same hash
  execFileSync('tar', [
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--exclude=*.map', '--exclude=*.d.ts', '--exclude=dist/test', '--exclude=dist/bench',
    '--use-compress-program=gzip -n', '-cf', tmp, '-C', projectRoot, 'package.json', 'dist', addon, ...packageClosure(OBSERVER_PACKAGES),
  ]);
  const bytes = readFileSync(tmp);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const path = join(dir, `latscope-${hash}.tar.gz`);
  renameSync(tmp, path);
  for (const f of readdirSync(dir)) if (/^latscope-[0-9a-f]{16}\.tar\.gz$/.test(f) && join(dir, f) !== path) rmSync(join(dir, f), { force: true }); // older builds
  return { path, hash, bytes: bytes.length, nodeMajor: Number(process.versions.node.split('.')[0]) };
}
