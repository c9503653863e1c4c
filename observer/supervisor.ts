/**
 * Keeps the observer running on a server: starts it, restarts it when it dies (after 0.5 s,
 * doubling up to 10 s while it keeps dying within a minute of its start), and on SIGTERM or
 * SIGINT stops it (SIGTERM, then SIGKILL after `stopTimeoutMs`) and exits. Its state is a file
 * the manager reads over SSH: run/supervisor.json with both pids, restarts and the last exit.
 * The child's output and the supervisor's own log lines (JSON, with level and time) go to one
 * log file that rotates (bounded on disk).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { daemonLogger } from '../lib/log.js';
import { RotatingFile } from '../lib/rotating-file.js';

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
  /** Bytes of the log file before it rotates, and rotated files kept. */
  logMaxBytes?: number;
  logKeep?: number;
}

export async function supervise(o: SupervisorOptions): Promise<void> {
  mkdirSync(o.runDir, { recursive: true, mode: 0o700 });
  const logFile = new RotatingFile(o.logFile, o.logMaxBytes, o.logKeep);
  const log = daemonLogger('supervisor', {}, logFile);
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
    const startedMs = Date.now();
    child = spawn(o.argv[0]!, o.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => logFile.write(d));
    child.stderr!.on('data', (d: Buffer) => logFile.write(d));
    log.info({ childPid: child.pid, restarts: st.restarts }, 'started the observer');
    st.childPid = child.pid;
    st.state = 'running';
    save();
    const exit = await new Promise<string>((resolve) => {
      child!.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`));
      child!.once('error', (e) => resolve(`could not start: ${e.message}`));
    });
    st.lastExit = `${exit} at ${new Date().toISOString()}`;
    (stopping ? log.info.bind(log) : log.warn.bind(log))({ exit }, stopping ? 'the observer stopped' : 'the observer died; restarting it');
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
  log.info('supervisor stopped');
  logFile.close();
}
