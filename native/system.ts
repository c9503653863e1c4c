/** What the addon tells about this machine: CPUs, interfaces, namespaces, mounts, BPF stats. */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { native } from './binding.js';
import { BpfError, MissingFeatureError, call } from './errors.js';

let cpuCount: number | undefined;
export function possibleCpus(): number {
  return (cpuCount ??= native().numPossibleCpus());
}

export function libbpfVersion(): string {
  return native().libbpfVersion();
}

/** Interface index in the current network namespace; a clear error naming it if absent. */
export function ifIndexOf(iface: string, doing = `looking up interface ${iface}`): number {
  const idx = native().ifIndex(iface);
  if (!idx) throw new BpfError(`${doing}: no interface named "${iface}" in this network namespace (ENODEV)`, 'ENODEV', 19, doing);
  return idx;
}

/** Runs fn inside the named network namespace (/run/netns/NAME), then returns to this one. */
export function inNetns<T>(name: string, fn: () => T): T {
  const target = openSync(join('/run/netns', name), 'r');
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    call(() => native().setNetns(target), `entering network namespace ${name}`);
    try {
      return fn();
    } finally {
      native().setNetns(home);
    }
  } finally {
    closeSync(target);
    closeSync(home);
  }
}

/** Inode of a network namespace as BPF programs see it (dev->nd_net.net->ns.inum). */
export function netnsInode(name?: string): number {
  return statSync(name ? join('/run/netns', name) : '/proc/thread-self/ns/net').ino;
}

/** Turns on kernel-wide BPF run-time statistics until the returned function is called. */
export function enableBpfStats(): () => void {
  const fd = call(() => native().enableStats(), 'enabling bpf_stats');
  return () => native().closeFd(fd);
}

/** libbpf finds tracepoint ids in tracefs, which `ip netns exec` and fresh hosts may lack. */
export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events') || existsSync('/sys/kernel/debug/tracing/events')) return;
  mkdirSync('/sys/kernel/tracing', { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'pipe' });
  } catch (e) {
    throw new MissingFeatureError(
      `mounting tracefs at /sys/kernel/tracing: ${(e as Error).message.trim()}: tracepoint programs need it; mount it by hand or run as root`,
      'ENOENT', 2, 'mounting tracefs');
  }
}

/** The cgroup v2 mount (cgroup_skb and sockops programs attach to a v2 cgroup). */
export function cgroupV2Root(): string {
  // The cgroup2 mount this process sees (mountinfo field 5 is the mount point; the type follows " - ").
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ') && pre!.split(' ')[3] === '/') return pre!.split(' ')[4]!;
  }
  // None here, e.g. under `ip netns exec`, which mounts a fresh /sys: mount the (one, shared)
  // cgroup2 hierarchy privately, in this mount namespace only.
  const at = '/run/latscope/cgroup2';
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'cgroup2', 'none', at], { stdio: 'pipe' });
  } catch (e) {
    throw new MissingFeatureError(`finding the cgroup v2 mount: none mounted, and mounting it at ${at} failed: ${(e as Error).message.trim()}; mount cgroup2 first (cgroup_skb and sockops programs need it)`, 'ENOENT', 2, 'finding cgroup v2');
  }
  return at;
}

/** A cgroup v2 directory, as the probe scopes its cgroup programs to it. */
export interface CgroupScope {
  /** Its directory in this process's view of the cgroup v2 hierarchy. */
  path: string;
  /** Its id (the directory's inode), as the kernel's kernfs node has it. */
  id: bigint;
  /** How deep it is below the root (the root: 0). */
  level: number;
}

/**
 * A cgroup v2 subtree by its path below the hierarchy's root (`system.slice/trading.service`),
 * or by an absolute path under the mount (`/sys/fs/cgroup/system.slice/...`). Relative paths
 * work in every mount namespace (`ip netns exec` mounts its own /sys); a missing directory is
 * a clear error.
 */
export function cgroupScope(spec: string): CgroupScope {
  const root = cgroupV2Root();
  let rel = spec;
  if (spec.startsWith('/')) {
    if (spec !== root && !spec.startsWith(`${root}/`))
      throw new MissingFeatureError(`cgroup ${spec}: not under the cgroup v2 hierarchy, mounted at ${root} here; give the path below it (e.g. system.slice/app.service)`, 'ENOENT', 2, 'finding the cgroup');
    rel = spec.slice(root.length);
  }
  const parts = rel.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new MissingFeatureError(`cgroup ${spec}: ".." is not allowed; give the path below the cgroup v2 root`, 'EINVAL', 22, 'finding the cgroup');
  const path = join(root, ...parts);
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch {
    throw new MissingFeatureError(`cgroup ${spec}: no such cgroup (${path} does not exist); create it, or leave cgroup out to watch every socket`, 'ENOENT', 2, 'finding the cgroup');
  }
  if (!st.isDirectory() || !existsSync(join(path, 'cgroup.procs')))
    throw new MissingFeatureError(`cgroup ${spec}: ${path} is not a cgroup v2 directory`, 'ENOTDIR', 20, 'finding the cgroup');
  return { path, id: st.ino, level: parts.length };
}
