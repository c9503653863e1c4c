/**
 * The observer bundle the manager installs on every server: exactly what the build's manifest
 * (lib/observer-bundle.ts) found in the observer's import graph — its compiled modules and
 * npm packages — with the BPF objects and the addon, as one tar.gz named by the hash of its
 * content. A server that already has a bundle with that hash
 * gets nothing uploaded, so provisioning again is cheap. The addon is built for this machine's
 * Node ABI and architecture: servers need the same Node major version (checked on install).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { projectRoot, workDir } from '../lib/paths.js';
import { MANIFEST_PATH, type BundleManifest } from '../lib/observer-bundle.js';

export interface Bundle {
  path: string;
  hash: string;
  bytes: number;
  /** Node major version the addon was built for. */
  nodeMajor: number;
}

/**
 * The folder whose node_modules holds a package of the manifest: the project's own in a
 * checkout; in an installed latscope the first one up from it (npm hoists its dependencies
 * beside it), as Node itself resolves them.
 */
function packageBase(pkg: string): string {
  for (let dir = projectRoot; ; dir = dirname(dir)) {
    if (existsSync(join(dir, pkg, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`the observer bundle needs ${pkg}, which is not installed in or above ${projectRoot}: install latscope's dependencies again (npm install)`);
  }
}

/** Builds (or finds) the bundle of the code as built now. */
export function buildBundle(): Bundle {
  const manifestPath = join(projectRoot, MANIFEST_PATH);
  if (!existsSync(manifestPath)) throw new Error('the observer bundle needs a build: run "bash scripts/build.sh" first');
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as BundleManifest;
  const dir = workDir('bundle');
  const tmp = join(dir, `building-${process.pid}.tar.gz`);
  // fixed order, owner and times: the same code gives the same bytes, hence the same hash
  execFileSync('tar', [
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    // what does not run: sources and type declarations of packages, maps, docs, their tests
    '--exclude=*.map', '--exclude=*.ts', '--exclude=*.mts', '--exclude=*.cts', '--exclude=*.md',
    '--exclude=node_modules/*/test', '--exclude=node_modules/*/tests', '--exclude=node_modules/*/benchmarks', '--exclude=node_modules/*/docs',
    '--use-compress-program=gzip -n', '-cf', tmp, '-C', projectRoot, ...m.assets, ...m.modules,
    // each package from where it is installed, archived as node_modules/NAME all the same
    ...m.packages.flatMap((p) => ['-C', packageBase(p), p]),
  ]);
  const bytes = readFileSync(tmp);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const path = join(dir, `latscope-${hash}.tar.gz`);
  renameSync(tmp, path);
  for (const f of readdirSync(dir)) if (/^latscope-[0-9a-f]{16}\.tar\.gz$/.test(f) && join(dir, f) !== path) rmSync(join(dir, f), { force: true }); // older builds
  return { path, hash, bytes: bytes.length, nodeMajor: Number(process.versions.node.split('.')[0]) };
}
