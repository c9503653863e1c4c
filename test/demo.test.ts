/**
 * The main job (`latscope demo`, what `scripts/demo.sh` runs) end to end: the manager
 * provisions the testbed hosts over SSH, traffic lands in MariaDB, clock offsets are within
 * their bounds of the true 0, and everything is removed afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

const cli = join(projectRoot, 'dist', 'cli.js');

test('the demo runs end to end through the manager and cleans up after itself', () => {
  const out = execFileSync(process.execPath, [cli, 'demo', '--hosts', '2', '--seconds', '4'], { encoding: 'utf8', timeout: 180_000 });
  assert.match(out, /demo: OK/);
  assert.match(out, /demo-h1: running \(observer pid \d+\)/);
  for (const h of ['h1', 'h2']) {
    const m = new RegExp(`demo-${h} 10\\.231\\.\\d+\\.1\\d: (\\d+) packets; clock offset (-?\\d+) ns ± (\\d+) ns`).exec(out);
    assert.ok(m, `no result line for ${h}:\n${out}`);
    assert.ok(Number(m[1]) > 0);
    assert.ok(Math.abs(Number(m[2])) <= Number(m[3]), `${h}: the true offset 0 is outside the bound`);
  }
  assert.match(out, /tx \(\d+\): sock->tcp \d+\.\d+ {2}tcp->ip \d+\.\d+ {2}ip->dev \d+\.\d+/);
  assert.match(out, /demo-h2: stopped \(no observer process, no XDP attachment left\)/);
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /ls-demo-/);
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), / name (lt_|ts_)/);
});
