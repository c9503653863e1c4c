/**
 * The observer bundle is its import graph: the real manifest ships what the observer imports and
 * nothing of the manager, and a graph with an import that cannot be shipped fails the build with
 * every problem named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bundleManifest, BundleError, MANIFEST_PATH, specifiersOf, type BundleManifest } from '../../lib/observer-bundle.js';
import { projectRoot } from '../../lib/paths.js';

test('the built manifest: every package the observer modules import is shipped, the manager libraries are not', () => {
  const m = JSON.parse(readFileSync(join(projectRoot, MANIFEST_PATH), 'utf8')) as BundleManifest;
  assert.deepEqual(m, bundleManifest(projectRoot), 'the manifest is the current graph');
  assert.ok(m.modules.includes('dist/cli/observer.js') && m.modules.includes('dist/observer/observer.js'));
  for (const mod of m.modules) {
    for (const spec of specifiersOf(readFileSync(join(projectRoot, mod), 'utf8'))) {
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
      assert.ok(m.packages.includes(`node_modules/${name}`), `${mod} imports ${name}: shipped`);
    }
  }
  for (const p of ['ssh2', 'bullmq', 'mysql2', 'vega', 'vega-lite']) assert.ok(!m.packages.includes(`node_modules/${p}`), `${p} stays home`);
  assert.ok(!m.modules.some((f) => f.startsWith('dist/manager/') || f.startsWith('dist/test/') || f.startsWith('dist/bench/')));
});

test('an import the bundle cannot ship fails the build, naming each problem', () => {
  const root = mkdtempSync(join(tmpdir(), 'latscope-bundle-'));
  try {
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    put('package.json', JSON.stringify({ dependencies: { good: '1', absent: '1' }, devDependencies: { devonly: '1' } }));
    put('node_modules/good/package.json', JSON.stringify({ dependencies: { transitive: '1' }, optionalDependencies: { platform: '1' } }));
    put('node_modules/devonly/package.json', '{}');
    put('dist/observer-cli.js', [
      "import { a } from './a.js';",
      "import good from 'good';",
      "import fs from 'node:fs';",
      "import path from 'path';",
      "const c = await import('./cli/' + name);",
    ].join('\n'));
    put('dist/a.js', "export { x } from './missing.js';\nimport 'devonly';\nimport('absent');\n");
    put('dist/bpf/.keep', '');
    put('native/build/Release/latscope_bpf.node', '');
    let e: BundleError | undefined;
    try {
      bundleManifest(root);
    } catch (err) {
      e = err as BundleError;
    }
    assert.ok(e instanceof BundleError, 'the build fails');
    const problems = e.problems.join('\n');
    assert.match(problems, /dist\/a\.js imports \.\/missing\.js: no such file/);
    assert.match(problems, /the package devonly, which is not in package\.json dependencies \(only devDependencies\)/);
    assert.match(problems, /the package absent \(needed by the observer\) is not installed/);
    assert.match(problems, /the package transitive \(needed by node_modules\/good\) is not installed/);
    assert.match(problems, /observer-cli\.js: a dynamic import with a computed name/);
    assert.doesNotMatch(problems, /platform|node:fs|'path'/, 'missing optional dependencies and builtins are fine');
    assert.equal(e.problems.length, 5, problems);

    // fixed, it lists the graph
    put('dist/observer-cli.js', "import { a } from './a.js';\nimport good from 'good';\n");
    put('dist/a.js', 'export const a = 1;\n');
    put('node_modules/good/node_modules/transitive/package.json', '{}');
    const m = bundleManifest(root);
    assert.deepEqual(m.modules, ['dist/a.js', 'dist/observer-cli.js']);
    assert.deepEqual(m.packages, ['node_modules/good'], 'a nested dependency travels inside its parent');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
