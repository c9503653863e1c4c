/**
 * A whole conf/ folder as one validated deployment: every file read and checked (all of them,
 * so `conf check` reports every bad file at once), cross-file rules applied, secrets resolved
 * from their files or environment variables. Nothing outside the folder is touched.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { AggregateConfError, ConfError, loadConfFile, pingKey, resolveSecret } from './load.js';
import { expandHome } from '../lib/paths.js';
import { maxMeshPeers } from '../protocol/mesh.js';
import { checkPrivateKey } from './keys.js';
import { loadTls, type TlsFiles } from './tls.js';
import { expandIdentity, parseJump, readSshConfig, resolveSshConfig, SshConfigError, type SshConfig, type SshHostConfig } from './ssh-config.js';
import {
  analysisInfo, connectInfo, databaseInfo, functionInfo, managementServerInfo, pingInfo, redisInfo, samplingInfo, timeSync,
  type AnalysisInfo, type ConnectInfo, type DatabaseInfo, type FunctionInfo, type ManagementServerInfo, type PingInfo, type RedisInfo,
  type SamplingInfo, type ServerInfo, type TimeSync, type TlsInfo,
} from './schema.js';

/** The files of a conf folder; optional ones take their defaults when absent. */
export const CONF_FILES = {
  'connect_info.yaml': { schema: connectInfo, required: true },
  'sampling_info.yaml': { schema: samplingInfo, required: true },
  'redis_info.yaml': { schema: redisInfo, required: true },
  'database_info.yaml': { schema: databaseInfo, required: true },
  'management_server_info.yaml': { schema: managementServerInfo, required: true },
  'ping_info.yaml': { schema: pingInfo, required: false },
  'time_sync.yaml': { schema: timeSync, required: false },
  'function_info.yaml': { schema: functionInfo, required: false },
  'analysis_info.yaml': { schema: analysisInfo, required: false },
} as const;

/** A server with connect_info's defaults applied and its SSH secret resolved. */
export interface Server extends ServerInfo {
  port: number;
  username: string;
  /** Where SSH connects: the ssh config's HostName, else the address. */
  sshHost: string;
  /** Private key files to offer, in order (connect_info, ssh config, defaults, ~/.ssh/id_*). */
  keyPaths: string[];
  sshPassword?: string;
  /** Hops to reach the server through, nearest first (ProxyJump). */
  jumps: JumpHost[];
  installDir: string;
  kind: 'bare-metal' | 'vm' | 'container';
  /** metadata_key of the host of a VM or container. */
  hostKey?: string;
}

/** A bastion on the way to a server. */
export interface JumpHost {
  /** As written (for messages). */
  name: string;
  host: string;
  port: number;
  username: string;
  keyPaths: string[];
}

export interface Deployment {
  dir: string;
  /** The ssh-agent socket (SSH_AUTH_SOCK) when one is there: its keys are offered first. */
  agent?: string;
  /** The ssh config read, when there is one. */
  sshConfigPath?: string;
  connect: ConnectInfo;
  servers: Server[];
  knownHostsPath: string;
  sampling: SamplingInfo;
  redis: RedisInfo & { secret?: string; tlsFiles?: TlsFiles };
  database: DatabaseInfo & { secret?: string; tlsFiles?: TlsFiles };
  manager: ManagementServerInfo;
  ping?: PingInfo;
  /** The time-sync key, when ping_info.yaml is present. */
  pingKey?: bigint;
  timeSync: TimeSync;
  functions: FunctionInfo;
  analysis: AnalysisInfo;
  warnings: string[];
}

export const DEFAULT_INSTALL_DIR = '/opt/latscope';


/** All problems of a conf folder (an empty list: it is good). */
export function checkDeployment(dir: string): { deployment?: Deployment; errors: ConfError[] } {
  try {
    return { deployment: loadDeployment(dir), errors: [] };
  } catch (e) {
    if (e instanceof AggregateConfError) return { errors: e.errors };
    if (e instanceof ConfError) return { errors: [e] };
    throw e;
  }
}

export { AggregateConfError, pingKey } from './load.js';

/** Probes each server gets per round before the kept ones (timesync/prober.ts WARMUP_PROBES). */
const WARMUP_PROBES = 32;

/** Reads and validates every file of `dir`; throws AggregateConfError listing every problem. */
export function loadDeployment(confDir: string): Deployment {
  const dir = resolve(confDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfError(`${dir}: no such folder; give the folder that holds connect_info.yaml and the other conf files`, dir);
  const errors: ConfError[] = [];
  const files: Record<string, unknown> = {};
  // a file latscope would not read, named like one it does: say so rather than use defaults
  const known = new Set(Object.keys(CONF_FILES));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new ConfError(`${dir}: cannot list the folder (${(e as NodeJS.ErrnoException).code}): make it readable by the user latscope runs as`, dir);
  }
  for (const f of names) {
    const m = /^(.*)\.(yml|YAML|YML|yaml)$/.exec(f);
    if (!m || known.has(f)) continue;
    const meant = `${m[1]!.toLowerCase()}.yaml`;
    if (known.has(meant)) errors.push(new ConfError(`${join(dir, f)}: latscope reads ${meant}, not ${f}: rename it`, join(dir, f)));
  }
  for (const [file, { schema, required }] of Object.entries(CONF_FILES)) {
    if (!required && !existsSync(join(dir, file))) {
      // absent: time_sync and function_info take their defaults; no ping_info means no time sync
      const dflt = schema.safeParse({});
      files[file] = dflt.success ? dflt.data : undefined;
      continue;
    }
    try {
      files[file] = loadConfFile(dir, file, schema);
    } catch (e) {
      if (e instanceof AggregateConfError) errors.push(...e.errors);
      else if (e instanceof ConfError) errors.push(e);
      else throw e;
    }
  }
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const secret = (file: string, key: string, s: { value?: string; file?: string; env?: string }) => {
    try {
      return resolveSecret(dir, file, key, s, warn);
    } catch (e) {
      if (!(e instanceof ConfError)) throw e;
      errors.push(e);
      return undefined;
    }
  };
  const connect = files['connect_info.yaml'] as ConnectInfo | undefined;
  const redis = files['redis_info.yaml'] as RedisInfo | undefined;
  const database = files['database_info.yaml'] as DatabaseInfo | undefined;
  const manager = files['management_server_info.yaml'] as ManagementServerInfo | undefined;
  const hasPing = existsSync(join(dir, 'ping_info.yaml'));
  const ping = hasPing ? (files['ping_info.yaml'] as PingInfo | undefined) : undefined;
  const functions = files['function_info.yaml'] as FunctionInfo | undefined;

  const agent = sshAgent();
  const connectPath = join(dir, 'connect_info.yaml');
  let sshConfig: SshConfig | undefined;
  if (connect) {
    const explicit = connect.ssh_config !== undefined;
    const path = resolve(dir, expandHome(connect.ssh_config ?? '~/.ssh/config'));
    if (explicit || existsSync(path))
      try {
        sshConfig = readSshConfig(path);
        warnings.push(...sshConfig.notes);
      } catch (e) {
        if (!(e instanceof SshConfigError)) throw e;
        errors.push(new ConfError(`${connectPath}: ssh_config: ${e.message}`, connectPath, undefined, 'ssh_config'));
      }
  }
  const hostConfig = (names: string[]): SshHostConfig => {
    try {
      return sshConfig ? resolveSshConfig(sshConfig, names) : { identityFiles: [], proxyJump: [] };
    } catch (e) {
      if (!(e instanceof SshConfigError)) throw e;
      errors.push(new ConfError(`${connectPath}: ssh_config: ${e.message}`, connectPath, undefined, 'ssh_config'));
      return { identityFiles: [], proxyJump: [] };
    }
  };
  const defaultKeys = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)).filter((f) => existsSync(f));
  const keyChecked = new Map<string, string[]>();
  const keyUsers = new Map<string, { path: string; hosts: string[] }>(); // each key file judged and reported once
  const useKey = (where: string, path: string, host: string) => {
    const users = keyUsers.get(where) ?? { path, hosts: [] };
    users.hosts.push(host);
    keyUsers.set(where, users);
  };
  const servers: Server[] = (connect?.servers ?? []).map((s, i) => {
    const d = connect!.defaults;
    const cfg = hostConfig([s.hostname, s.address]);
    const port = s.port ?? cfg.port ?? d.port ?? 22;
    const username = s.username ?? cfg.user ?? d.username ?? 'root';
    const sshHost = cfg.hostName ?? s.address;
    const keyPaths: string[] = [];
    if (s.key_file) useKey(`servers.${i}.key_file`, keyPaths[keyPaths.push(resolve(dir, expandHome(s.key_file))) - 1]!, s.hostname);
    // the ssh config's identities are used where they exist, as ssh does
    for (const f of cfg.identityFiles) {
      const p = expandIdentity(f, sshHost, port, username);
      if (existsSync(p)) keyPaths.push(p);
    }
    if (d.key_file && !s.key_file) useKey('defaults.key_file', keyPaths[keyPaths.push(resolve(dir, expandHome(d.key_file))) - 1]!, s.hostname);
    const sshPassword = secret('connect_info.yaml', `servers.${i}.password`, { value: s.password, file: s.password_file, env: s.password_env });
    if (!keyPaths.length && sshPassword === undefined) keyPaths.push(...defaultKeys);
    const jumpSpec = s.proxy_jump ?? (cfg.proxyJump.length ? undefined : d.proxy_jump);
    const specs = jumpSpec !== undefined ? jumpSpec.split(',').map((j) => parseJump(j.trim(), { key: 'proxy_jump', name: 'proxy_jump', value: jumpSpec, file: connectPath, line: 0 })) : cfg.proxyJump;
    const jumps: JumpHost[] = specs.map((j) => {
      const hc = hostConfig([j.host]);
      const jport = j.port ?? hc.port ?? 22;
      const juser = j.user ?? hc.user ?? username;
      const jhost = hc.hostName ?? j.host;
      const own = hc.identityFiles.map((f) => expandIdentity(f, jhost, jport, juser)).filter((f) => existsSync(f));
      return { name: j.host, host: jhost, port: jport, username: juser, keyPaths: [...new Set([...own, ...keyPaths])] };
    });
    return {
      ...s,
      port,
      username,
      sshHost,
      keyPaths: [...new Set(keyPaths)],
      sshPassword,
      jumps,
      installDir: s.install_dir ?? d.install_dir ?? DEFAULT_INSTALL_DIR,
      kind: s.isvm !== undefined ? 'vm' : s.iscontainer !== undefined ? 'container' : 'bare-metal',
      hostKey: s.isvm ?? s.iscontainer,
    };
  });
  for (const [where, { path, hosts }] of keyUsers)
    for (const problem of checkPrivateKey(path, keyChecked, agent !== undefined))
      errors.push(new ConfError(`${connectPath}: ${where} (used by ${hosts.join(', ')}): ${problem}`, connectPath, undefined, where));
  for (const [i, s] of servers.entries())
    if (!s.keyPaths.length && s.sshPassword === undefined && !agent)
      errors.push(new ConfError(`${connectPath}: servers.${i} (${s.hostname}): no way to log in: give key_file (or defaults.key_file, or an IdentityFile in the ssh config), password_file, or run an ssh-agent (SSH_AUTH_SOCK)`, connectPath, undefined, `servers.${i}`));
  const redisSecret = redis && secret('redis_info.yaml', 'password', { value: redis.password, file: redis.password_file, env: redis.password_env });
  const dbSecret = database && secret('database_info.yaml', 'passwd', { value: database.passwd, file: database.passwd_file, env: database.passwd_env });
  let key: bigint | undefined;
  if (ping)
    try {
      key = pingKey(dir, ping, warn);
    } catch (e) {
      if (!(e instanceof ConfError)) throw e;
      errors.push(e);
    }
  if (connect && !connect.accept_new_host_keys) {
    // every server would be refused later: say it now
    const kh = resolve(dir, expandHome(connect.known_hosts));
    const where = join(dir, 'connect_info.yaml');
    if (!existsSync(kh)) errors.push(new ConfError(`${where}: known_hosts: ${kh} does not exist, and new host keys are not accepted: every server would be refused; create it (ssh-keyscan) or set accept_new_host_keys: 1 once`, where, undefined, 'known_hosts'));
    else if (!statSync(kh).isFile()) errors.push(new ConfError(`${where}: known_hosts: ${kh} is not a file`, where, undefined, 'known_hosts'));
  }
  const tlsOf = (file: string, t: TlsInfo | undefined): TlsFiles | undefined => {
    if (!t) return undefined;
    try {
      return loadTls(dir, file, t);
    } catch (e) {
      if (!(e instanceof ConfError)) throw e;
      errors.push(e);
      return undefined;
    }
  };
  const redisTls = tlsOf('redis_info.yaml', redis?.tls);
  const dbTls = tlsOf('database_info.yaml', database?.tls);
  const analysis = files['analysis_info.yaml'] as AnalysisInfo | undefined;
  if (redis && redis.record_shards > 1 && (analysis?.engine ?? 'batch') !== 'stream')
    errors.push(new ConfError(`${join(dir, 'redis_info.yaml')}: record_shards: ${redis.record_shards} shards need the stream analysis, which reads each shard; set engine: stream in analysis_info.yaml, or record_shards: 1`, join(dir, 'redis_info.yaml'), undefined, 'record_shards'));
  if (redis?.observer_users && redisSecret === undefined)
    errors.push(new ConfError(`${join(dir, 'redis_info.yaml')}: observer_users: a Redis user per observer needs the manager's password (each observer's is derived from it); give password_file or password_env, or set observer_users: 0`, join(dir, 'redis_info.yaml'), undefined, 'observer_users'));
  const ts = files['time_sync.yaml'] as TimeSync | undefined;
  if (ping && ts && connect) {
    // one probe in flight at a time, servers one after the other; a reply takes well under 1 ms
    // on a LAN, a lost one timeout_ms
    // with the mesh, the manager probes only its anchors
    const starred = ts.mesh.enabled ? Math.min(ts.mesh.anchors, connect.servers.length) : connect.servers.length;
    const probes = starred * (ts.probes + WARMUP_PROBES);
    const where = join(dir, 'time_sync.yaml');
    if (ts.mesh.enabled) {
      // an observer's mesh round: its peers one after the other, one probe in flight, at most max_probe_rate a second
      const m = ts.mesh;
      const peers = maxMeshPeers(connect.servers.length, { fullMesh: m.full_mesh, ring: m.ring, random: m.random });
      const seconds = (peers * (m.probes + WARMUP_PROBES)) / Math.min(m.max_probe_rate, 1000);
      if (seconds > m.interval)
        errors.push(new ConfError(`${where}: mesh: interval: a mesh round of ${m.probes} probes (and ${WARMUP_PROBES} to warm up) to up to ${peers} peers takes at least ${seconds.toFixed(1)} s (at most ${Math.min(m.max_probe_rate, 1000)} probes a second), longer than mesh interval ${m.interval} s: fewer probes or peers (full_mesh, ring, random), or a longer interval`, where, undefined, 'mesh'));
    }
    const fix = `fewer probes, a shorter timeout_ms, or a longer time_interval${ts.mesh.enabled ? ', or fewer mesh anchors' : ' (or the mesh: mesh.enabled 1, the manager then probes a few anchors)'}`;
    if (probes * 0.001 > ts.time_interval)
      errors.push(new ConfError(`${where}: time_interval: a round of ${ts.probes} probes (and ${WARMUP_PROBES} to warm up) to ${starred} servers takes at least ${(probes * 0.001).toFixed(0)} s even when every reply comes within 1 ms, longer than time_interval ${ts.time_interval} s: ${fix}`, where, undefined, 'time_interval'));
    else if (probes * ts.timeout_ms > ts.time_interval * 1000)
      warnings.push(`${where}: time_interval: when servers stop answering, a round can take ${((probes * ts.timeout_ms) / 1000).toFixed(0)} s (${ts.timeout_ms} ms per lost probe), longer than time_interval ${ts.time_interval} s; rounds then run back to back (${fix})`);
  }
  if (functions?.timesync && !hasPing && existsSync(join(dir, 'function_info.yaml')))
    warnings.push(`${join(dir, 'function_info.yaml')}: timesync is on but there is no ping_info.yaml: no time sync runs`);

  if (errors.length) throw new AggregateConfError(errors);
  return {
    dir,
    ...(agent ? { agent } : {}),
    ...(sshConfig ? { sshConfigPath: sshConfig.path } : {}),
    connect: connect!,
    servers,
    knownHostsPath: resolve(dir, expandHome(connect!.known_hosts)),
    sampling: files['sampling_info.yaml'] as SamplingInfo,
    redis: { ...redis!, secret: redisSecret, ...(redisTls ? { tlsFiles: redisTls } : {}) },
    database: { ...database!, secret: dbSecret, ...(dbTls ? { tlsFiles: dbTls } : {}) },
    manager: manager!,
    ping,
    pingKey: key,
    timeSync: files['time_sync.yaml'] as TimeSync,
    functions: functions!,
    analysis: files['analysis_info.yaml'] as AnalysisInfo,
    warnings,
  };
}

/** The ssh-agent's socket, when SSH_AUTH_SOCK names one that exists. */
export function sshAgent(): string | undefined {
  const sock = process.env.SSH_AUTH_SOCK;
  try {
    return sock && statSync(sock).isSocket() ? sock : undefined;
  } catch {
    return undefined;
  }
}
