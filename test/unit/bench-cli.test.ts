/**
 * Every benchmark answers --help with what it measures and how to run it, running nothing; refuses
 * an option its comment does not name (a typo would run the defaults for minutes) and a numeric
 * option that is not a number, with exit 64, before anything runs; and its comment names every
 * option its code reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { benchDoc, documentedOptions } from '../../bench/common.js';

const dir = join(projectRoot, 'dist', 'bench');
// a bench is a script that imports common.js; stream-worker.js is one's helper process, sockperf.js one's measurement
const benches = readdirSync(dir).filter((f) => f.endsWith('.js') && !['common.js', 'stream-worker.js', 'sockperf.js'].includes(f));

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

test('every benchmark: its comment names every option its code reads, and an option it does not name is refused with exit 64, running nothing', () => {
  for (const f of benches) {
    const name = f.replace(/\.js$/, '');
    const source = readFileSync(join(projectRoot, 'bench', `${name}.ts`), 'utf8');
    // (only a benchmark that checks its options at start may be tried with a wrong one)
    assert.match(source, /from '\.\/common\.js'/, `${name} imports bench/common.ts`);
    const read = new Set([...source.matchAll(/numberArg\('([a-z0-9-]+)'|argv\.(?:includes|indexOf)\('--([a-z0-9-]+)'\)/g)].map((m) => m[1] ?? m[2]!));
    const named = documentedOptions(benchDoc(join(dir, f)));
    for (const o of read) assert.ok(named.has(o), `bench/${name} reads --${o}, which its comment does not name`);
    const bad = spawnSync(process.execPath, [join(dir, f), '--no-such-option', '1'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(bad.status, 64, `${name}: exit ${bad.status} ${bad.stderr}`);
    assert.match(bad.stderr, new RegExp(`^bench/${name}: unknown option --no-such-option; it takes --`));
    assert.equal(bad.stdout, '');
  }
});

test('a malformed number is refused with exit 64, naming the option, before anything runs', () => {
  // (bench/records-format: no servers, no kernel; it reads its options first)
  const bad = spawnSync(process.execPath, [join(dir, 'records-format.js'), '--records', 'many'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 64, `exit ${bad.status} ${bad.stderr}`);
  assert.match(bad.stderr, /^bench\/records-format: --records needs a number \(got "many"\); --help shows the options/);
  assert.equal(bad.stdout, '');
});
