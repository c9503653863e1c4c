/**
 * Shared pieces of the integration and kernel tests: running helpers inside test hosts (and in
 * a cgroup), and asking bpftool what the kernel holds.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../lib/paths.js';
import type { TestbedHost } from '../../local/testbed.js';

const execFileP = promisify(execFile);

/** A test's own BPF object (test/bpf/NAME.bpf.c, built into dist/test/bpf, never shipped). */
export const testObject = (name: string): string => join(projectRoot, 'dist', 'test', 'bpf', `${name}.bpf.o`);
export const helper = (name: string) =>
  name === 'traffic' ? join(projectRoot, 'dist', 'local', 'traffic.js') : join(projectRoot, 'dist', 'test', 'helpers', `${name}.js`);

/** Runs a helper script inside a host; resolves with its last JSON line. */
export async function runIn(host: TestbedHost, script: string, args: (string | number)[], cgroup?: string): Promise<any> {
  const argv = ['ip', 'netns', 'exec', host.netns, process.execPath, helper(script), ...args.map(String)];
  const { stdout } = cgroup
    ? await execFileP('sh', ['-c', `echo $$ > "$0/cgroup.procs" && exec "$@"`, cgroup, ...argv], { timeout: 60_000 })
    : await execFileP(argv[0]!, argv.slice(1), { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** Starts a helper inside a host and resolves once it printed its first line. */
export async function startIn(host: TestbedHost, script: string, args: (string | number)[], cgroup?: string): Promise<{ child: ChildProcess; first: any; done: Promise<any> }> {
  const argv = ['ip', 'netns', 'exec', host.netns, process.execPath, helper(script), ...args.map(String)];
  const child = cgroup
    ? spawn('sh', ['-c', `echo $$ > "$0/cgroup.procs" && exec "$@"`, cgroup, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  let onLine: (() => void) | undefined;
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      onLine?.();
    }
  });
  const done = new Promise<any>((resolve) => child.on('exit', () => resolve(lines.length ? JSON.parse(lines[lines.length - 1]!) : undefined)));
  const first = await new Promise<any>((resolve, reject) => {
    onLine = () => resolve(JSON.parse(lines[0]!));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  return { child, first, done };
}

/** A fresh cgroup v2 directory under root, removed by the returned function. */
export function makeCgroup(root: string, name: string): { path: string; remove: () => void } {
  const path = join(root, name);
  mkdirSync(path, { recursive: true });
  return {
    path,
    remove: () => {
      // Move stragglers out first; a cgroup with processes cannot be removed.
      for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(join(root, 'cgroup.procs'), pid);
        } catch {
          /* exited */
        }
      }
      rmdirSync(path);
    },
  };
}

/** Does the kernel still hold a BPF program with this id? */
export function progExists(id: number): boolean {
  try {
    execFileSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** `ip link show` inside the namespace mentions xdp? */
export function linkHasXdp(netns: string, iface: string): boolean {
  return /\bxdp/.test(execFileSync('ip', ['netns', 'exec', netns, 'ip', 'link', 'show', iface], { encoding: 'utf8' }));
}

/** `tc filter show` inside the namespace lists a filter on this hook? */
export function tcFilters(netns: string, iface: string, dir: 'ingress' | 'egress'): string {
  try {
    return execFileSync('ip', ['netns', 'exec', netns, 'tc', 'filter', 'show', 'dev', iface, dir], { encoding: 'utf8', stdio: 'pipe' });
  } catch {
    return '';
  }
}

export async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
