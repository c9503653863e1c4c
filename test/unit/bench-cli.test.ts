/**
 * Every benchmark answers --help with what it measures and how to run it, running nothing, and
 * refuses a numeric option that is not a number (exit 64, naming it) rather than running with it.
 * (An option a benchmark does not know is still ignored: only --help is safe to try on all.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';

const dir = join(projectRoot, 'dist', 'bench');
// a bench is a script that imports common.js; stream-worker.js is one's helper process
const benches = readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'common.js' && f !== 'stream-worker.js');

test('every benchmark: --help prints its purpose and options and exits 0 at once, running nothing', () => {
  assert.ok(benches.length >= 10, benches.join(' '));
  for (const f of benches) {
    const name = f.replace(/\.js$/, '');
    const help = spawnSync(process.execPath, [join(dir, f), '--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(help.status, 0, `${name} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^bench/${name}\\n`), name);
    assert.ok(help.stdout.length > 200 && /--\w/.test(help.stdout), `${name} --help says how to run it: ${help.stdout}`);
  }
});

test('a malformed number is refused with exit 64, naming the option, before anything runs', () => {
  // (bench/records-format: no servers, no kernel; it reads its options first)
  const bad = spawnSync(process.execPath, [join(dir, 'records-format.js'), '--records', 'many'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 64, `exit ${bad.status} ${bad.stderr}`);
  assert.match(bad.stderr, /^bench\/records-format: --records needs a number \(got "many"\); --help shows the options/);
  assert.equal(bad.stdout, '');
});
