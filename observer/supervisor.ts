/**
 * Keeps the observer running on a server: starts it, restarts it when it dies (after 0.5 s,
 * doubling up to 10 s while it keeps dying within a minute of its start), and on SIGTERM or
 * SIGINT stops it (SIGTERM, then SIGKILL after `stopTimeoutMs`) and exits. Its state is a file
 * the manager reads over SSH: run/supervisor.json with both pids, restarts and the last exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface SupervisorState {
  pid: number;
  childPid?: number;
  restarts: number;
  lastExit?: string;
  startedAt: string;
  state: 'running' | 'restarting' | 'stopping';
}

export interface SupervisorOptions {
  runDir: string;
  argv: string[];
  /** File the child's output is appended to. */
  logFile: string;
  stopTimeoutMs: number;
}

export async function supervise(o: SupervisorOptions): Promise<void> {
  mkdirSync(o.runDir, { recursive: true, mode: 0o700 });
  const stateFile = join(o.runDir, 'supervisor.json');
  const st: SupervisorState = { pid: process.pid, restarts: 0, startedAt: new Date().toISOString(), state: 'running' };
  // write and rename: a reader (the manager over SSH) never sees half a file
  const save = () => {
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(st) + '\n');
    renameSync(`${stateFile}.tmp`, stateFile);
  };
  writeFileSync(join(o.runDir, 'supervisor.pid'), `${process.pid}\n`);
  let child: ChildProcess | undefined;
  let stopping = false;
  let backoffMs = 500;
  let wake: (() => void) | undefined;

  const stop = () => {
    if (stopping) return;
    stopping = true;
    st.state = 'stopping';
    save();
    child?.kill('SIGTERM');
    const k = setTimeout(() => child?.kill('SIGKILL'), o.stopTimeoutMs);
    k.unref();
    wake?.();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {}); // the SSH session that started us may go away

  while (!stopping) {
    const out = openSync(o.logFile, 'a');
    const startedMs = Date.now();
    child = spawn(o.argv[0]!, o.argv.slice(1), { stdio: ['ignore', out, out] });
    closeSync(out);
    st.childPid = child.pid;
    st.state = 'running';
    save();
    const exit = await new Promise<string>((resolve) => {
      child!.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`));
      child!.once('error', (e) => resolve(`could not start: ${e.message}`));
    });
    st.lastExit = `${exit} at ${new Date().toISOString()}`;
    st.childPid = undefined;
    if (stopping) break;
    st.restarts++;
    st.state = 'restarting';
    save();
    backoffMs = Date.now() - startedMs > 60_000 ? 500 : Math.min(backoffMs * 2, 10_000);
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, backoffMs);
    });
  }
  rmSync(join(o.runDir, 'supervisor.pid'), { force: true });
  rmSync(stateFile, { force: true });
}
