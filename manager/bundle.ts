/**
 * The observer bundle the manager installs on every server: the compiled code (dist/ without
 * tests and benchmarks), the BPF objects, the addon and the production npm packages, as one
 * tar.gz named by the hash of its content. A server that already has a bundle with that hash
 * gets nothing uploaded, so provisioning again is cheap. The addon is built for this machine's
 * Node ABI and architecture: servers need the same Node major version (checked on install).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, workDir } from '../lib/paths.js';

export interface Bundle {
  path: string;
  hash: string;
  bytes: number;
  /** Node major version the addon was built for. */
  nodeMajor: number;
}

/** Top-level production packages (nested ones come with their parent directory). */
function productionPackages(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const top = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /(?:^|\/)(node_modules\/(?:@[^/]+\/)?[^/]+)$/.exec(line.slice(projectRoot.length + 1));
    if (m && line.slice(projectRoot.length + 1) === m[1]) top.add(m[1]!);
  }
  return [...top].sort();
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
    '--use-compress-program=gzip -n', '-cf', tmp, '-C', projectRoot, 'package.json', 'dist', addon, ...productionPackages(),
  ]);
  const bytes = readFileSync(tmp);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const path = join(dir, `latscope-${hash}.tar.gz`);
  renameSync(tmp, path);
  return { path, hash, bytes: bytes.length, nodeMajor: Number(process.versions.node.split('.')[0]) };
}
