/** The dependency rule (scripts/check-deps.ts): the repository obeys it, and a wrong-way import or a cycle is caught. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDependencies, readSources } from '../../scripts/check-deps.js';
import { projectRoot } from '../../lib/paths.js';

test('the repository: imports point one way through the layers, no cycles', () => {
  const r = checkDependencies(readSources(projectRoot));
  assert.ok(r.files > 50, `${r.files} files checked`);
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.cycles, []);
});

test('a deliberately wrong-way import (protocol importing the manager) and a cycle are reported', () => {
  const files = readSources(projectRoot);
  files.set('protocol/redis.ts', `${files.get('protocol/redis.ts')}\nimport { Manager } from '../manager/manager.js';\n`);
  files.set('lib/a.ts', "import { b } from './b.js';\nexport const a = 1;\n");
  files.set('lib/b.ts', "export { a } from './a.js';\nexport const b = 2;\n");
  files.set('analyzer/x.ts', "const m = await import('../cli/report.js');\n");
  const r = checkDependencies(files);
  assert.ok(r.violations.some((v) => /^protocol\/redis\.ts imports manager\/manager\.ts: protocol\/ may import nothing of the project/.test(v)), r.violations.join('\n'));
  assert.ok(r.violations.some((v) => /^analyzer\/x\.ts imports cli\/report\.ts/.test(v)), 'dynamic imports count');
  assert.ok(r.cycles.some((c) => c.includes('lib/a.ts') && c.includes('lib/b.ts')));
});
