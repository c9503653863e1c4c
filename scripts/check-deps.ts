/**
 * The dependency rule, checked (npm run check:deps, and by the tests): imports point one way
 * through the layers below, and no module imports itself back through others (no cycles).
 *
 *   lib, protocol                          the bottom: import nothing of the project (protocol
 *                                          not even lib: it is the contract between processes)
 *   native, conf, db                       above them
 *   observer, host, timesync, ingest       above native / db (the observer runs host's modules)
 *   analyzer                               above db (reads clock fits through timesync)
 *   graph                                  above analyzer
 *   manager, local                         orchestration and the local default
 *   cli (cli.ts, cli/), index.ts           the top; nothing imports cli, manager or local but
 *                                          cli, tests and benchmarks
 * Usage: node dist/scripts/check-deps.js [ROOT]; exit 1 with every violation listed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { specifiersOf } from '../lib/observer-bundle.js';

const BASE = ['lib', 'protocol'];
/** Folder -> the folders its modules may import (besides its own). */
export const ALLOWED: Record<string, string[]> = {
  lib: [],
  protocol: [],
  native: [...BASE],
  conf: [...BASE],
  db: [...BASE],
  observer: [...BASE, 'native', 'conf', 'host'], // the observer runs the host-jitter modules too
  host: [...BASE, 'native', 'conf'],
  timesync: [...BASE, 'native', 'conf', 'db'],
  ingest: [...BASE, 'db'],
  analyzer: [...BASE, 'db', 'conf', 'timesync'],
  graph: [...BASE, 'analyzer'],
  manager: [...BASE, 'native', 'conf', 'db', 'observer', 'host', 'timesync', 'ingest', 'analyzer', 'graph'],
  local: [...BASE, 'native', 'conf', 'db', 'timesync'],
  cli: [...BASE, 'native', 'conf', 'db', 'observer', 'host', 'timesync', 'ingest', 'analyzer', 'graph', 'manager', 'local', 'index'],
  index: [...BASE, 'native', 'conf', 'observer', 'host', 'timesync', 'analyzer', 'graph'],
  scripts: ['lib', 'conf'], // build tools: the observer manifest, the conf JSON Schemas
  test: ['*'],
  bench: ['*'],
};

const SOURCE_DIRS = Object.keys(ALLOWED).filter((d) => d !== 'cli' && d !== 'index');

/** The project's TypeScript sources: path relative to the root -> text. */
export function readSources(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      const rel = join(dir, name);
      if (name === 'node_modules' || name === 'dist' || name === 'build') continue;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.set(rel, readFileSync(join(root, rel), 'utf8'));
    }
  };
  for (const d of [...SOURCE_DIRS, 'cli']) {
    try {
      walk(d);
    } catch {
      /* a folder not there yet */
    }
  }
  for (const f of ['cli.ts', 'observer-cli.ts', 'index.ts']) {
    try {
      out.set(f, readFileSync(join(root, f), 'utf8'));
    } catch {
      /* absent */
    }
  }
  return out;
}

/** The group a file belongs to: its top folder, or cli / index for the root files. */
export function groupOf(file: string): string {
  if (file === 'cli.ts' || file === 'observer-cli.ts') return 'cli';
  if (file === 'index.ts') return 'index';
  return file.split(sep)[0]!;
}


/** Relative imports of a file, resolved to project paths (.js -> .ts). */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const spec of specifiersOf(text)) {
    if (!spec.startsWith('.')) continue;
    out.push(normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return out;
}

export interface DependencyReport {
  violations: string[];
  cycles: string[][];
  files: number;
}

export function checkDependencies(sources: Map<string, string>): DependencyReport {
  const violations: string[] = [];
  const graph = new Map<string, string[]>();
  for (const [file, text] of sources) {
    const from = groupOf(file);
    const allowed = ALLOWED[from];
    const deps = importsOf(file, text);
    graph.set(file, deps.filter((d) => sources.has(d)));
    for (const dep of deps) {
      const to = groupOf(dep);
      if (to === from || allowed?.includes('*') || allowed?.includes(to)) continue;
      violations.push(`${file} imports ${dep}: ${from}/ may import ${allowed?.length ? allowed.join(', ') : 'nothing of the project'}`);
    }
  }
  return { violations, cycles: findCycles(graph), files: sources.size };
}

/** Every strongly connected set of two or more files (or a file importing itself). */
function findCycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), on = new Set<string>(), stack: string[] = [], out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.reverse());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

// Run as a script: check the repository (or ROOT).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const r = checkDependencies(readSources(root));
  for (const v of r.violations) console.error(`wrong-way import: ${v}`);
  for (const c of r.cycles) console.error(`import cycle: ${c.join(' -> ')} -> ${c[0]}`);
  if (r.violations.length || r.cycles.length) {
    console.error(`check-deps: ${r.violations.length} wrong-way imports, ${r.cycles.length} cycles in ${r.files} files (rules: scripts/check-deps.ts)`);
    process.exitCode = 1;
  } else console.log(`check-deps: ${r.files} files, imports point one way, no cycles`);
}
