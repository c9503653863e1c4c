/**
 * The local testbed: N hosts as network namespaces on one machine, each with its own address,
 * its own sshd and a key made for this testbed, joined by a bridge in the root namespace (where
 * the manager runs), or by two bridges with a router namespace between two subnets.
 *
 * Names are derived from the testbed id, so `down` can find and remove everything of an `up`
 * that crashed halfway, with or without its state file:
 *   namespaces  ls-ID-hN, ls-ID-r        root-side veths  vIDhN, vIDra, vIDrb
 *   bridges     brID (subnet A), brIDb (subnet B, router topology only)
 * Traffic stays inside: the subnets are 10.231.X.0/24 on bridges joined to nothing else.
 *
 * The hosts are servers as an operator has them: each sshd runs in a mount namespace where the
 * latscope checkout is hidden (an empty tmpfs over it), and its files, with every host's
 * install_dir, live outside the checkout under /var/lib/latscope-testbed/ID. What the manager
 * installs there must run on its own, as on a real server.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { livePid, run, tryRun, waitFor } from './exec.js';
import { projectRoot, workDir } from '../lib/paths.js';
import { sweepLeftovers } from '../native/leftovers.js';
import net from 'node:net';

export interface TestbedOptions {
  /** Short id (letters and digits, at most 5) that prefixes every name. */
  id: string;
  /** Number of hosts, 1 to 200. */
  hosts: number;
  /** Put a router namespace between two subnets; hosts alternate between them. */
  router?: boolean;
  /** Third octet of subnet A (10.231.X.0/24); subnet B is X+1. Default: derived from id. */
  subnet?: number;
}

export interface TestbedHost {
  name: string;
  netns: string;
  /** Interface inside the namespace. */
  iface: string;
  address: string;
  /** The host-side veth in the root namespace (the "outer" interface of this host). */
  outerIface: string;
  sshPort: number;
}

export interface Testbed {
  id: string;
  dir: string;
  hosts: TestbedHost[];
  /** The root namespace's address on subnet A: where the manager, Redis and probes live. */
  managerAddress: string;
  bridges: string[];
  router?: { netns: string; addresses: string[] };
  /** The servers' side, outside the checkout: sshd's files (sshd/) and each host's install dir. */
  serverRoot: string;
  /** Private key for root@host over ssh, and the known_hosts file that pins each host key. */
  sshKeyPath: string;
  knownHostsPath: string;
}

const ID_RE = /^[a-z][a-z0-9]{0,4}$/;

export function validateOptions(o: TestbedOptions): void {
  if (!ID_RE.test(o.id)) throw new Error(`testbed id "${o.id}": use 1 to 5 lowercase letters or digits, starting with a letter`);
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 200) throw new Error(`testbed hosts: ${o.hosts}: use a whole number from 1 to 200`);
  if (o.subnet !== undefined && (!Number.isInteger(o.subnet) || o.subnet < 0 || o.subnet > 254))
    throw new Error(`testbed subnet: ${o.subnet}: use a whole number from 0 to 254`);
}

function defaultSubnet(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 75;
  return 100 + h * 2; // 100..248 and even, so subnet B (X+1) never meets another id's A
}

export function testbedDir(id: string): string {
  return workDir('testbed', id);
}

/** The servers' file system side of testbed `id` (what a server's disk would hold). */
export function serverRootOf(id: string): string {
  return join(SERVER_ROOT, id);
}
const SERVER_ROOT = '/var/lib/latscope-testbed';

/** Where host `name` of the testbed installs the observer (connect_info install_dir). */
export function installDirOf(tb: Testbed, name: string): string {
  return join(tb.serverRoot, 'install', name);
}

function statePath(id: string): string {
  return join(testbedDir(id), 'state.json');
}

export function loadTestbed(id: string): Testbed | undefined {
  const p = statePath(id);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Testbed) : undefined;
}

/** Creates the testbed, or returns it as it is if one with the same id and shape is up. */
export async function testbedUp(opts: TestbedOptions): Promise<Testbed> {
  validateOptions(opts);
  sweepLeftovers();
  const existing = loadTestbed(opts.id);
  if (existing && existing.hosts.length === opts.hosts && !!existing.router === !!opts.router && isHealthy(existing)) return existing;
  await testbedDown(opts.id);

  const { id } = opts;
  const x = opts.subnet ?? defaultSubnet(id);
  const dir = testbedDir(id);
  const tb: Testbed = {
    id,
    dir,
    hosts: [],
    managerAddress: `10.231.${x}.1`,
    bridges: opts.router ? [`br${id}`, `br${id}b`] : [`br${id}`],
    serverRoot: serverRootOf(id),
    sshKeyPath: join(dir, 'id_ed25519'),
    knownHostsPath: join(dir, 'known_hosts'),
  };
  try {
    makeKeys(dir);
    makeServerRoot(tb);
    for (const br of tb.bridges) {
      run(['ip', 'link', 'add', br, 'type', 'bridge']);
      run(['ip', 'link', 'set', br, 'up']);
    }
    run(['ip', 'addr', 'add', `${tb.managerAddress}/24`, 'dev', tb.bridges[0]!]);
    if (opts.router) {
      const ns = `ls-${id}-r`;
      run(['ip', 'netns', 'add', ns]);
      tb.router = { netns: ns, addresses: [`10.231.${x}.254`, `10.231.${x + 1}.254`] };
      plugInto(ns, `v${id}ra`, 'eth0', tb.bridges[0]!, `${tb.router.addresses[0]}/24`);
      plugInto(ns, `v${id}rb`, 'eth1', tb.bridges[1]!, `${tb.router.addresses[1]}/24`);
      run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      run(['ip', 'route', 'add', `10.231.${x + 1}.0/24`, 'via', tb.router.addresses[0]!]);
    }
    for (let i = 1; i <= opts.hosts; i++) {
      const onB = opts.router && i % 2 === 0;
      const octet = onB ? x + 1 : x;
      const host: TestbedHost = {
        name: `h${i}`,
        netns: `ls-${id}-h${i}`,
        iface: 'eth0',
        address: `10.231.${octet}.${10 + i}`,
        outerIface: `v${id}h${i}`,
        sshPort: 22,
      };
      run(['ip', 'netns', 'add', host.netns]);
      plugInto(host.netns, host.outerIface, host.iface, tb.bridges[onB ? 1 : 0]!, `${host.address}/24`);
      if (tb.router) run(['ip', 'netns', 'exec', host.netns, 'ip', 'route', 'add', 'default', 'via', tb.router.addresses[onB ? 1 : 0]!]);
      else run(['ip', 'netns', 'exec', host.netns, 'ip', 'route', 'add', 'default', 'via', tb.managerAddress]);
      startSshd(tb, host);
      tb.hosts.push(host);
    }
    writeKnownHosts(tb);
    writeFileSync(statePath(id), JSON.stringify(tb, null, 2));
    await Promise.all(tb.hosts.map((h) => waitForPort(h.address, h.sshPort, 10_000)));
    return tb;
  } catch (e) {
    await testbedDown(id);
    throw new Error(`bringing up testbed ${id}: ${(e as Error).message}`);
  }
}

/** A veth pair: `outer` on the bridge in the root namespace, `inner` with addr inside ns. */
function plugInto(ns: string, outer: string, inner: string, bridge: string, addr: string): void {
  run(['ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
  run(['ip', 'link', 'set', outer, 'master', bridge]);
  run(['ip', 'link', 'set', outer, 'up']);
  const inNs = ['ip', 'netns', 'exec', ns];
  run([...inNs, 'ip', 'link', 'set', 'lo', 'up']);
  run([...inNs, 'ip', 'addr', 'add', addr, 'dev', inner]);
  run([...inNs, 'ip', 'link', 'set', inner, 'up']);
}

function makeKeys(dir: string): void {
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(hostKey)) run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'latscope-testbed-host', '-f', hostKey]);
  const userKey = join(dir, 'id_ed25519');
  if (!existsSync(userKey)) run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'latscope-testbed-operator', '-f', userKey]);
}

/** The servers' side: root-owned, not writable by others, the sshd files copied in. */
function makeServerRoot(tb: Testbed): void {
  const sshd = sshdDir(tb);
  for (const d of [SERVER_ROOT, tb.serverRoot, join(tb.serverRoot, 'install'), sshd]) {
    mkdirSync(d, { recursive: true, mode: 0o755 });
    chmodSync(d, 0o755);
  }
  writeFileSync(join(sshd, 'ssh_host_ed25519_key'), readFileSync(join(tb.dir, 'ssh_host_ed25519_key')), { mode: 0o600 });
  writeFileSync(join(sshd, 'authorized_keys'), readFileSync(`${tb.sshKeyPath}.pub`), { mode: 0o600 });
  // the known traffic, as a workload installed on the servers (it imports only Node's own modules)
  mkdirSync(join(tb.serverRoot, 'tools'), { recursive: true, mode: 0o755 });
  writeFileSync(trafficScriptOf(tb), readFileSync(join(projectRoot, 'dist', 'local', 'traffic.js')));
}

/** The traffic program (local/traffic.ts) where the hosts can run it. */
export function trafficScriptOf(tb: Testbed): string {
  return join(tb.serverRoot, 'tools', 'traffic.js');
}

const sshdDir = (tb: Testbed): string => join(tb.serverRoot, 'sshd');

function writeKnownHosts(tb: Testbed): void {
  const pub = readFileSync(join(tb.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(tb.knownHostsPath, tb.hosts.map((h) => `${h.address} ${pub}\n`).join(''));
}

function sshdConfig(tb: Testbed, host: TestbedHost, port: number, name: string, extra: string[]): string {
  return [
    `Port ${port}`,
    'ListenAddress 0.0.0.0',
    `HostKey ${join(sshdDir(tb), 'ssh_host_ed25519_key')}`,
    `PidFile ${join(sshdDir(tb), `sshd-${name}.pid`)}`,
    `AuthorizedKeysFile ${join(sshdDir(tb), 'authorized_keys')}`,
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'MaxStartups 100:30:200',
    'LogLevel ERROR',
    ...extra,
    '',
  ].join('\n');
}

/** Another sshd on a host (another port, e.g. with a ForceCommand or a HostCertificate), listening when this resolves. */
export async function startExtraSshd(tb: Testbed, host: TestbedHost, o: { port: number; name: string; extra?: string[] }): Promise<void> {
  startSshd(tb, host, o);
  await waitForPort(host.address, o.port, 10_000);
}

/** Starts an sshd in the host's namespace, in a mount namespace where the checkout is hidden. */
function startSshd(tb: Testbed, host: TestbedHost, o: { port?: number; name?: string; extra?: string[] } = {}): void {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const name = o.name ?? host.name;
  const cfg = join(sshdDir(tb), `sshd-${name}.conf`);
  writeFileSync(cfg, sshdConfig(tb, host, o.port ?? host.sshPort, name, o.extra ?? []));
  // sshd daemonizes; it lives in the host's namespace (and its mount namespace) until `down` kills it.
  const hide = 'mount -t tmpfs -o mode=0755,size=4k latscope-hidden "$1" && exec /usr/sbin/sshd -f "$2" -E "$3"';
  run(['ip', 'netns', 'exec', host.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', hide, 'sh', projectRoot, cfg, join(sshdDir(tb), `sshd-${name}.log`)]);
}

function waitForPort(host: string, port: number, timeoutMs: number): Promise<true> {
  return waitFor(`sshd on ${host}:${port}`, timeoutMs, () =>
    new Promise<true | undefined>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(undefined));
    }),
  );
}

function isHealthy(tb: Testbed): boolean {
  const nsList = run(['ip', 'netns', 'list']);
  return tb.hosts.every((h) => nsList.includes(h.netns) && sshdPid(tb, h) !== undefined);
}

function sshdPid(tb: Testbed, h: TestbedHost): number | undefined {
  return livePid(join(sshdDir(tb), `sshd-${h.name}.pid`));
}

/** Namespaces of this testbed that exist now (found by name, not by state file). */
function ourNamespaces(id: string): string[] {
  return run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`ls-${id}-`));
}

/**
 * Removes everything of testbed `id`: processes in its namespaces (sshd, observers), legacy BPF
 * attachments, namespaces, veths, bridges, routes and the state file. Safe after a crash.
 */
export async function testbedDown(id: string): Promise<string[]> {
  if (!ID_RE.test(id)) throw new Error(`testbed id "${id}": use 1 to 5 lowercase letters or digits`);
  const removed: string[] = [];
  removed.push(...sweepLeftovers());
  for (const ns of ourNamespaces(id)) {
    const pids = run(['ip', 'netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (tryRun(['ip', 'netns', 'delete', ns])) removed.push(`namespace ${ns}`);
  }
  const links = run(['ip', '-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && (new RegExp(`^v${id}(h\\d+|ra|rb)$`).test(n) || n === `br${id}` || n === `br${id}b`));
  for (const l of links) if (tryRun(['ip', 'link', 'delete', l])) removed.push(`link ${l}`);
  const dir = join(workDir('testbed'), id);
  for (const f of existsSync(dir) ? readdirSync(dir) : []) if (/^(sshd-.*|state\.json|known_hosts)$/.test(f)) rmSync(join(dir, f), { force: true });
  // the servers' side: its processes were in the namespaces, killed above
  if (existsSync(serverRootOf(id))) {
    rmSync(serverRootOf(id), { recursive: true, force: true });
    removed.push(`server files ${serverRootOf(id)}`);
  }
  return removed;
}

export interface TestbedStatus {
  id: string;
  up: boolean;
  hosts: { name: string; netns: string; address: string; netnsPresent: boolean; sshdPid?: number }[];
  strays: string[];
}

export function testbedStatus(id: string): TestbedStatus {
  const tb = loadTestbed(id);
  const nsNow = ourNamespaces(id);
  const hosts = (tb?.hosts ?? []).map((h) => ({
    name: h.name,
    netns: h.netns,
    address: h.address,
    netnsPresent: nsNow.includes(h.netns),
    sshdPid: sshdPid(tb!, h),
  }));
  const known = new Set([...(tb?.hosts.map((h) => h.netns) ?? []), tb?.router?.netns]);
  return {
    id,
    up: !!tb && hosts.every((h) => h.netnsPresent && h.sshdPid !== undefined),
    hosts,
    strays: nsNow.filter((n) => !known.has(n)),
  };
}
