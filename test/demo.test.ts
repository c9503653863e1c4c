/**
 * The main job (`latscope demo`, what `scripts/demo.sh` runs) end to end: the manager provisions
 * three testbed hosts in two subnets over SSH, time sync runs, traffic flows between every pair
 * while the router's link into the second subnet is slowed on purpose, and the analysis names
 * that link (the wire into the slowed host holds the tail); the report is printed, the graphs and
 * report.html are written, clock offsets stay within their bounds of the true 0, and everything
 * is removed afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

const cli = join(projectRoot, 'dist', 'cli.js');

/** Runs the demo; its output comes back whatever happens (and is shown when an assertion fails). */
function demo(args: string[], timeoutMs: number): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    });
  });
}

test('the demo finds the link slowed on purpose, prints the report, writes the graphs, and cleans up after itself', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'latscope-demo-'));
  try {
    const { code, text } = await demo(['--seconds', '8', '--out', out], 240_000);
    assert.equal(code, 0, `the demo exited with ${code}:\n${text}`);
    // a known, not yet explained case (see cli/demo.ts): reported, not failed
    if (/something still held the process/.test(text)) t.diagnostic('the demo had to end itself: a client still held the process after everything stopped');
    assert.match(text, /demo: OK/);
    for (let i = 1; i <= 8; i++) assert.match(text, new RegExp(`^${i}/8 `, 'm'), `step ${i} shown`);
    assert.match(text, /demo-h1: running \(observer pid \d+\)/);
    assert.match(text, /FOUND: the link slowed on purpose \(router → demo-h2\): the wire from demo-h[13] to demo-h2 holds \d+% of its slowest 1% of paths/);
    assert.match(text, /Server pairs, µs/);
    for (const h of ['h1', 'h2', 'h3']) {
      const m = new RegExp(`clock of demo-${h}: offset (-?\\d+) ns ± (\\d+) ns`).exec(text);
      assert.ok(m, `no clock line for ${h}`);
      assert.ok(Math.abs(Number(m[1])) <= Number(m[2]), `${h}: the true offset 0 is outside the bound`);
    }
    assert.match(text, /demo-h[13] → demo-h2 .* wire \d+%/);
    assert.match(text, /Clock faults \(one-way below zero by more than its bound\): 0/);
    assert.match(text, /wrote 7 graphs and .*report\.html/);
    assert.ok(existsSync(join(out, 'report.html')) && existsSync(join(out, 'breakdown.svg')));
    assert.match(text, /demo-h2: stopped \(no observer process, no XDP attachment left\)/);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /ls-demo-/);
    assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), / name (lt_|ts_)/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
