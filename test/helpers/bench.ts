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

/**
 * Starts a benchmark, waits until its stderr matches `when` (and `afterMs` more), then sends
 * SIGTERM; resolves with its exit code and stderr. Fails if it is still running `limitMs` after
 * the signal (it is then killed).
 */
export async function stopBench(name: string, args: string[], when: RegExp, o: { afterMs?: number; limitMs?: number } = {}): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'bench', `${name}.js`), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const limit = setTimeout(() => reject(new Error(`bench/${name} never printed ${when}: ${err}`)), 120_000);
      const seen = () => when.test(err) && (clearTimeout(limit), resolve());
      child.stderr!.on('data', (d) => ((err += d), seen()));
      seen();
      void exited.then((c) => reject(new Error(`bench/${name} ended (${c}) before ${when}: ${err}`)));
    });
    await new Promise((r) => setTimeout(r, o.afterMs ?? 0));
    child.kill('SIGTERM');
    const limitMs = o.limitMs ?? 30_000;
    const limit = new Promise<'running'>((r) => setTimeout(() => r('running'), limitMs).unref());
    const code = await Promise.race([exited, limit]);
    assert.notEqual(code, 'running', `bench/${name} still running ${limitMs / 1000} s after SIGTERM: ${err}`);
    return { code: code as number | null, err };
  } finally {
    child.kill('SIGKILL');
  }
}
