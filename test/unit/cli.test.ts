/**
 * The command line's conventions: `latscope --help` lists the commands (internal ones hidden)
 * with the exit codes, without loading any command; a usage error exits 64, distinct from a
 * command's own failure (1); `latscope help CMD` shows the command's whole help.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';

const cli = (...args: string[]) => spawnSync(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', timeout: 30_000 });

test('latscope --help: every command by its summary, internal ones hidden, exit codes documented', () => {
  const r = cli('--help');
  assert.equal(r.status, 0);
  for (const c of ['demo', 'manager', 'report', 'graph', 'host', 'observer', 'conf']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'), c);
  assert.doesNotMatch(r.stdout, /supervise|cleanup/);
  assert.match(r.stdout, /Exit codes:\n\s+0\s+success\n\s+1\s+the command failed[^\n]*\n\s+64\s+usage error/);
  const full = cli('help', 'report');
  assert.equal(full.status, 0);
  assert.match(full.stdout, /Usage: latscope report \[options\]/);
  assert.match(full.stdout, /--since/);
});

test('usage errors exit 64: an unknown command, an unknown option, a missing argument', () => {
  for (const args of [['nosuch'], ['host', '--bogus'], ['report', '--conf'], ['conf', 'check']]) {
    const r = cli(...args);
    assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /error: /);
  }
  // a command's own failure is not a usage error
  const missing = cli('conf', 'check', '/nonexistent-latscope-conf');
  assert.equal(missing.status, 1);
});

test('one duration parser: 30s, 1h30m, 250ms, bare seconds; a malformed --duration is a usage error naming the forms', async () => {
  const { parseDuration } = await import('../../lib/duration.js');
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('2'), 2000);
  assert.equal(parseDuration('1d2h'), 93_600_000);
  for (const bad of ['', 'soon', '30x', 'h', '1h 30m', '-5s']) assert.throws(() => parseDuration(bad), /is not a duration: write it like 90s, 15m, 1h30m/, bad);
  const r = cli('host', '--duration', 'NaN');
  assert.equal(r.status, 64, r.stderr);
  assert.match(r.stderr, /"NaN" is not a duration/);
  const far = cli('host', '--duration', '2d');
  assert.equal(far.status, 64);
  assert.match(far.stderr, /--duration 2d: expected between 0\.1 s and 86400 s/);
});

test('--conf defaults to $LATSCOPE_CONF, then /etc/latscope', () => {
  const shown = cli('report', '--help');
  assert.match(shown.stdout, /--conf <dir>.*\(default:\s+\$LATSCOPE_CONF, else\s+\/etc\/latscope\)/s);
  const r = spawnSync(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'report'], { encoding: 'utf8', env: { ...process.env, LATSCOPE_CONF: '/nonexistent-latscope-conf' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent-latscope-conf: no such folder/);
});
