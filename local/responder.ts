/**
 * A time-sync responder (`latscope timesync respond`) as its own process inside a test host,
 * the way an observer runs it on a server: for tests and benchmarks on the testbed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, workDir } from '../lib/paths.js';
import { keyToHex } from '../protocol/timesync.js';

export interface RunningResponder {
  mode: string;
  fallbackReason?: string;
  /** SIGTERM; resolves with the responder's final counters. */
  stop(): Promise<{ answered: number; badMac: number; malformed: number; truncated: number; badHeader: number; badSource: number; fragment: number; notLocal: number; notProber: number; replay: number; rate: number }>;
}

/** Writes a conf folder with ping_info.yaml and the key file (0600), for a responder or a prober. */
export function writePingConf(name: string, o: { port: number; eth: string; key: bigint; probers: string[]; mode?: string; rateLimit?: number }): string {
  const dir = workDir('timesync-conf', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'key'), keyToHex(o.key) + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'ping_info.yaml'), `port: ${o.port}\neth: ${o.eth}\nkey_file: key\nmode: ${o.mode ?? 'auto'}\nprobers: [${o.probers.join(', ')}]\n` + (o.rateLimit ? `rate_limit: ${o.rateLimit}\n` : ''), { mode: 0o600 });
  return dir;
}

export async function spawnResponder(netns: string, confDir: string, testClock?: { offsetNs: bigint; driftPpb: bigint; epochNs: bigint }, cpu?: number): Promise<RunningResponder> {
  const args = [...(cpu === undefined ? [] : ['-c', String(cpu), 'ip']), 'netns', 'exec', netns, process.execPath, join(projectRoot, 'dist', 'cli.js'), 'timesync', 'respond', '--conf', confDir];
  if (testClock) args.push('--test-clock', `${testClock.offsetNs}:${testClock.driftPpb}:${testClock.epochNs}`);
  const child: ChildProcess = spawn(cpu === undefined ? 'ip' : 'taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: any[] = [];
  let buf = '', err = '';
  let notify = () => {};
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      notify();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const ready = await new Promise<any>((resolve, reject) => {
    notify = () => resolve(lines[0]);
    exited.then(() => reject(new Error(`time-sync responder in ${netns} exited before it was ready: ${err.trim()}`)));
  });
  return {
    mode: ready.responder.mode,
    fallbackReason: ready.responder.fallbackReason,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      const last = lines[lines.length - 1];
      if (!last?.counters) throw new Error(`time-sync responder in ${netns} gave no counters: ${err.trim()}`);
      return last.counters;
    },
  };
}
