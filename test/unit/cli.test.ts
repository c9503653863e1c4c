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

test("every command's --help ends with exit codes: its own where it has them, else the common ones", () => {
  for (const args of [['observer'], ['timesync', 'probe'], ['conf', 'check'], ['analyze'], ['manager', 'stop'], ['graph'], ['host'], ['report'], ['manager', 'status'], ['testbed', 'up'], ['servers', 'up']]) {
    const r = cli(...args, '--help');
    assert.equal(r.status, 0, args.join(' '));
    assert.equal(r.stdout.match(/Exit codes:/g)?.length, 1, `${args.join(' ')}: exit codes once:\n${r.stdout}`);
  }
  assert.match(cli('manager', 'status', '--help').stdout, /Exit codes: 0 healthy, 3 degraded/, 'its own kept');
});

test('numeric options are checked: a malformed or out-of-range number is a usage error naming it', () => {
  for (const [args, want] of [
    [['report', '--top', 'ten'], /--top ten: expected a whole number from 1 to 10000/],
    [['report', '--top', '0'], /--top 0: expected a whole number/],
    [['timesync', 'probe', '--eth', 'lo', '--count', '1.5', '10.0.0.1'], /--count 1\.5: expected a whole number/],
    [['observer', '--metrics-port', '70000'], /--metrics-port 70000: expected a whole number from 0 to 65535/],
    [['observer', '--max-cpu', 'x'], /--max-cpu x: expected a number/],
  ] as const) {
    const r = cli(...args);
    assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
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

test('--from and --to take RFC 3339 times with their offset; anything else, and a range that ends before it starts, is a usage error', async () => {
  const { parseTime, rangeOf } = await import('../../cli/options.js');
  assert.equal(parseTime('--from', '2026-12-02T14:05:00Z'), Date.UTC(2026, 11, 2, 14, 5, 0));
  assert.equal(parseTime('--from', '2026-12-02T15:05:00+01:00'), Date.UTC(2026, 11, 2, 14, 5, 0));
  assert.equal(parseTime('--from', '2026-12-02T14:05:30.250Z'), Date.UTC(2026, 11, 2, 14, 5, 30, 250));
  for (const bad of ['2026-12-02', '2026-12-02T14:05:00', 'yesterday', '2026-02-31T00:00:00Z', '2026-13-01T00:00:00Z', '2026-12-02T24:00:00Z', '1700000000000'])
    assert.throws(() => parseTime('--from', bad), /--from .*expected an RFC 3339 time with its offset/, bad);
  const now = Date.UTC(2026, 11, 2, 15, 0, 0);
  assert.deepEqual(rangeOf({ since: '1h' }, now), { sinceUnixMs: now - 3_600_000, untilUnixMs: undefined });
  assert.deepEqual(rangeOf({ from: 1000, to: 2000 }, now), { sinceUnixMs: 1000, untilUnixMs: 2000 });
  assert.throws(() => rangeOf({ since: '1h', from: 1000 }, now), /give one of them/);
  assert.throws(() => rangeOf({ from: 2000, to: 1000 }, now), /--to .* is not after the start/);
});

test('servers up on a port another process holds: a clear error naming the port and how to choose another, nothing started', async () => {
  const { createServer } = await import('node:net');
  const { mkdtempSync, existsSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawn } = await import('node:child_process');
  const holder = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  const port = (holder.address() as { port: number }).port;
  const work = mkdtempSync(join(tmpdir(), 'latscope-port-'));
  try {
    // asynchronously: the holder answers on this process's event loop
    const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'servers', 'up'], { env: { ...process.env, LATSCOPE_WORKDIR: work, LATSCOPE_REDIS_PORT: String(port) } });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 1, err);
    assert.match(err, new RegExp(`127\\.0\\.0\\.1:${port} is taken by another process`));
    assert.match(err, /LATSCOPE_REDIS_PORT/);
    assert.equal(existsSync(join(work, 'redis', 'redis.pid')), false, 'no Redis started');
  } finally {
    holder.close();
    rmSync(work, { recursive: true, force: true });
  }
});
