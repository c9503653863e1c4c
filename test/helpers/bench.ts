/**
 * Runs one benchmark in smoke size and returns the JSON line it printed. Asynchronous and with
 * its own time limit, so that a benchmark that hangs fails its own test with its output, before
 * the runner's per-file limit ends the whole file without a word.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';

export async function bench(name: string, args: string[], timeoutMs = 150_000): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'bench', `${name}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  let timedOut = false;
  // SIGTERM first: every benchmark removes its testbed on it; SIGKILL if it does not end.
  const term = setTimeout(() => ((timedOut = true), child.kill('SIGTERM')), timeoutMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 30_000);
  const status = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  clearTimeout(term);
  clearTimeout(kill);
  assert.ok(!timedOut, `bench/${name} did not finish in ${timeoutMs / 1000} s:\n${out}\n${err}`);
  assert.equal(status, 0, `bench/${name} failed:\n${out}\n${err}`);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `bench/${name} printed no JSON:\n${out}`);
  return JSON.parse(line) as Record<string, unknown>;
}
