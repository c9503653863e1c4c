/**
 * Running system commands (ip, tc, sshd, redis-server, mariadbd) with errors that say which
 * command failed and what it printed. Arguments go to execFile directly: no shell, no quoting.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly argv: string[],
    readonly stderr: string,
    readonly status: number | null,
  ) {
    super(`running "${argv.join(' ')}" failed (exit ${status ?? 'signal'}): ${stderr.trim() || 'no output'}`);
  }
}

/** Runs argv and returns its stdout; throws CommandError with stderr on failure. */
export function run(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      input: opts.input ?? '',
      env: opts.env ?? process.env,
    });
  } catch (e) {
    const err = e as { stderr?: string; status?: number | null; code?: string };
    if (err.code === 'ENOENT') throw new CommandError(argv, `${argv[0]} is not installed: run "bash scripts/setup.sh" first`, null);
    throw new CommandError(argv, err.stderr ?? String(e), err.status ?? null);
  }
}

/** Like run(), but failure is an answer rather than an error (for cleanup and probing). */
export function tryRun(argv: string[]): boolean {
  try {
    run(argv);
    return true;
  } catch {
    return false;
  }
}

/** The pid in pidFile if that process is alive, else undefined. */
export function livePid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!pid) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * The CPU time a process has used, user and kernel, in ms (/proc/PID/stat utime and stime, in
 * the kernel's USER_HZ of 100 ticks a second on every Linux architecture Node runs on); NaN when
 * it is gone.
 */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command (which may hold spaces), from field 3 on: utime is 14, stime 15
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls check() until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`waiting for ${what}: no answer within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(50);
  }
}
