/**
 * What the observer bundle holds, computed from the observer's actual import graph: every
 * compiled module reachable from dist/observer-cli.js (static, re-exported, side-effect and
 * dynamic imports), the npm packages those modules name with everything they depend on, and the
 * files loaded by path (BPF objects, the addon). The build fails when an import cannot be
 * followed or a package is missing or only a devDependency, so a bundle that cannot start
 * outside the checkout is never made.
 * scripts/bundle-manifest.ts writes it at build time; manager/bundle.ts packs what it lists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize } from 'node:path';

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

/** Every module specifier a source imports: static, re-exported, side-effect and literal dynamic imports. */
export function specifiersOf(text: string): string[] {
  return [...text.matchAll(IMPORT_RE)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

export const OBSERVER_ENTRY = 'dist/observer-cli.js';
/** Loaded by path, not imported: the BPF objects and the addon (native/addon.ts). */
export const OBSERVER_ASSETS = ['package.json', 'dist/bpf', 'native/build/Release/latscope_bpf.node'];
export const MANIFEST_PATH = 'dist/observer-bundle.json';

export interface BundleManifest {
  entry: string;
  /** Compiled modules, relative to the root. */
  modules: string[];
  /** node_modules/NAME folders (a package's own nested node_modules come with it). */
  packages: string[];
  assets: string[];
}

export class BundleError extends Error {
  override readonly name = 'BundleError';
  constructor(readonly problems: string[]) {
    super(`the observer bundle cannot be made:\n  ${problems.join('\n  ')}`);
  }
}

const BUILTIN = new Set(builtinModules);
/** A dynamic import whose name is computed: its target cannot be known at build time. */
const COMPUTED_IMPORT_RE = /\bimport\(\s*(?!(['"])[^'"]*\1\s*\))/;

const packageName = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const readPackageJson = (dir: string): PackageJson => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;

export function bundleManifest(root: string, entry = OBSERVER_ENTRY): BundleManifest {
  const problems: string[] = [];
  const own = readPackageJson(root);
  const modules = new Set<string>();
  const direct = new Set<string>();
  const queue = [entry];
  if (!existsSync(join(root, entry))) throw new BundleError([`${entry} does not exist: build first (bash scripts/build.sh)`]);
  while (queue.length) {
    const file = queue.pop()!;
    if (modules.has(file)) continue;
    modules.add(file);
    const text = readFileSync(join(root, file), 'utf8');
    if (COMPUTED_IMPORT_RE.test(text)) problems.push(`${file}: a dynamic import with a computed name cannot be followed: import a literal path`);
    for (const spec of specifiersOf(text)) {
      if (spec.startsWith('.')) {
        const target = normalize(join(dirname(file), spec));
        if (existsSync(join(root, target))) queue.push(target);
        else problems.push(`${file} imports ${spec}: no such file`);
      } else if (!spec.startsWith('node:') && !BUILTIN.has(spec)) {
        const name = packageName(spec);
        if (!own.dependencies?.[name])
          problems.push(`${file} imports the package ${name}, which is not in package.json dependencies${own.devDependencies?.[name] ? ' (only devDependencies)' : ''}: add it there`);
        else direct.add(name);
      }
    }
  }
  // each package with its dependencies, found as Node would: nested first, then at the top
  const packages = new Set<string>(); // top-level folders to ship
  const seen = new Set<string>();
  const visit = (name: string, from: string, optional: boolean) => {
    const nested = join(from, 'node_modules', name);
    const dir = from !== '' && existsSync(join(root, nested, 'package.json')) ? nested : join('node_modules', name);
    if (!existsSync(join(root, dir, 'package.json'))) {
      if (!optional) problems.push(`the package ${name} (needed by ${from || 'the observer'}) is not installed: run npm install`);
      return;
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    if (dir === join('node_modules', name)) packages.add(dir); // a nested one is shipped inside its parent
    const pj = readPackageJson(join(root, dir));
    for (const d of Object.keys(pj.dependencies ?? {})) visit(d, dir, false);
    for (const d of Object.keys(pj.optionalDependencies ?? {})) visit(d, dir, true);
  };
  for (const name of direct) visit(name, '', false);
  for (const a of OBSERVER_ASSETS) if (!existsSync(join(root, a))) problems.push(`${a} does not exist: build first (bash scripts/build.sh)`);
  if (problems.length) throw new BundleError(problems);
  return { entry, modules: [...modules].sort(), packages: [...packages].sort(), assets: OBSERVER_ASSETS };
}

