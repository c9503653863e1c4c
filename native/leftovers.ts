/**
 * Leftovers a killed process can leave in the kernel, and their removal.
 *
 * Kernel links (latscope's default for every attachment) die with their process. Netlink
 * ("legacy") XDP programs and tc filters do not: each one is recorded here, under the pid that
 * made it, before it is made, and removed from the record when it is detached. sweepLeftovers()
 * removes what dead pids left behind; the observer calls it at start and `testbed down` calls it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const registryDir = process.env.LATSCOPE_RUN_DIR ?? '/run/latscope/legacy-attachments';

/** tc filter priority of latscope's legacy filters (0xc57 = 3159), so a sweep removes only ours. */
export const LEGACY_TC_PRIORITY = 0xc57;

export interface LegacyAttachment {
  kind: 'xdp' | 'tc';
  iface: string;
  /** XDP mode: `ip link set ... xdp off` alone would miss a generic-mode program. */
  mode?: 'native' | 'generic';
  direction?: 'ingress' | 'egress';
  /** tc filter priority, so only our filter is removed. */
  priority?: number;
  /** Inode of the network namespace the interface lives in. */
  netnsIno: number;
}

function fileOf(pid: number): string {
  return join(registryDir, `${pid}.json`);
}

function read(pid: number): LegacyAttachment[] {
  try {
    return JSON.parse(readFileSync(fileOf(pid), 'utf8')) as LegacyAttachment[];
  } catch {
    return [];
  }
}

function write(pid: number, list: LegacyAttachment[]): void {
  if (list.length === 0) {
    rmSync(fileOf(pid), { force: true });
    return;
  }
  mkdirSync(registryDir, { recursive: true });
  writeFileSync(fileOf(pid), JSON.stringify(list));
}

export function recordLegacy(a: LegacyAttachment): void {
  write(process.pid, [...read(process.pid), a]);
}

export function forgetLegacy(a: LegacyAttachment): void {
  const key = JSON.stringify(a);
  const list = read(process.pid);
  const i = list.findIndex((x) => JSON.stringify(x) === key);
  if (i >= 0) list.splice(i, 1);
  write(process.pid, list);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The `ip netns exec` prefix that reaches a namespace by inode, or null if it is gone. */
function netnsPrefix(ino: number): string[] | null {
  if (statSync('/proc/self/ns/net').ino === ino) return [];
  if (!existsSync('/run/netns')) return null;
  for (const name of readdirSync('/run/netns')) {
    try {
      if (statSync(join('/run/netns', name)).ino === ino) return ['ip', 'netns', 'exec', name];
    } catch {
      /* namespace removed while we looked */
    }
  }
  return null;
}

function run(argv: string[]): boolean {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Removes the legacy attachments of dead processes; returns what it removed. */
export function sweepLeftovers(): string[] {
  if (!existsSync(registryDir)) return [];
  const removed: string[] = [];
  for (const f of readdirSync(registryDir)) {
    const pid = Number(f.replace(/\.json$/, ''));
    if (!Number.isInteger(pid) || alive(pid)) continue;
    for (const a of read(pid)) {
      const prefix = netnsPrefix(a.netnsIno);
      if (prefix === null) continue; // its namespace, and so the attachment, is gone
      const ok =
        a.kind === 'xdp'
          ? run([...prefix, 'ip', 'link', 'set', 'dev', a.iface, a.mode === 'generic' ? 'xdpgeneric' : 'xdpdrv', 'off'])
          : run([...prefix, 'tc', 'filter', 'del', 'dev', a.iface, a.direction ?? 'ingress', 'pref', String(a.priority)]);
      if (ok) removed.push(`${a.kind}${a.direction ? ' ' + a.direction : ''} on ${a.iface} (left by pid ${pid})`);
    }
    rmSync(join(registryDir, f), { force: true });
  }
  return removed;
}
