/**
 * Schemas of the conf/ files, with their defaults. Field names follow seed 002; units are in
 * the descriptions. Unknown keys are errors (a typo must not silently fall back to a default).
 */
import { z } from 'zod';

const port = z.number({ invalid_type_error: 'expected a port number' }).int().min(1).max(65535);
/** A secret comes as the value, a file or an environment variable: at most one of them. */
function oneSecretSource(name: string): [(r: Record<string, unknown>) => boolean, { message: string }] {
  const keys = [name, `${name}_file`, `${name}_env`];
  return [(r) => keys.filter((k) => r[k] !== undefined).length <= 1, { message: `give at most one of ${keys.join(', ')}` }];
}

const flag = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform((v) => v === true || v === 1);

/** sampling_info.yaml: what the observers watch and how often they record a packet. */
export const samplingInfo = z
  .object({
    /** Bytes of a flow's stream between two sampled packets (0: off). */
    size: z.number().int().min(0).max(2 ** 31).default(72400),
    /** Seconds after which a flow without a sample gets one (0: off). */
    interval: z.number().min(0).default(1),
    /** TCP ports to watch, local or remote end (at most 64). */
    ports: z.union([port, z.array(port).min(1).max(64)]).transform((p) => (Array.isArray(p) ? p : [p])),
    /** Keep retransmissions out of the delay histograms. */
    filter_retrans: flag.default(1),
    /** Seconds between snapshots of the layer histograms into MySQL (0: only when the observer stops). */
    histogram_interval: z.number().min(0).max(86400).default(10),
  })
  .strict();
export type SamplingInfo = z.output<typeof samplingInfo>;

/** redis_info.yaml: the Redis that observers publish to. */
export const redisInfo = z
  .object({
    address: z.string().min(1),
    port: port.default(6379),
    /** The password itself (prefer password_file or password_env). */
    password: z.string().optional(),
    /** A file holding the password (mode 600). */
    password_file: z.string().optional(),
    /** An environment variable holding the password. */
    password_env: z.string().optional(),
  })
  .strict()
  .refine(...oneSecretSource('password'));
export type RedisInfo = z.output<typeof redisInfo>;

const hexKey = z.string().regex(/^[0-9a-fA-F]{16}$/, 'expected 16 hex digits (make one with: openssl rand -hex 8)');

/** ping_info.yaml: the time-sync responder on each observer, and where the manager probes it. */
export const pingInfo = z
  .object({
    /** The address probes go to (default: each server's address from connect_info). */
    address: z.string().ip({ version: 'v4', message: 'expected an IPv4 address' }).optional(),
    /** UDP port the responder answers on. */
    port: port.default(5005),
    /** Interface the responder's XDP program attaches to. */
    eth: z.string().min(1).max(15),
    /** auto: native XDP where it can transmit, generic on veth and other virtual devices. */
    mode: z.enum(['auto', 'native', 'generic', 'user-space']).default('auto'),
    /** The per-deployment probe key, 16 hex digits (prefer key_file or key_env). */
    key: hexKey.optional(),
    key_file: z.string().optional(),
    key_env: z.string().optional(),
  })
  .strict()
  .refine(...oneSecretSource('key'));
export type PingInfo = z.output<typeof pingInfo>;

/** time_sync.yaml: how often and how hard the manager estimates clock offsets. */
export const timeSync = z
  .object({
    /** Seconds between rounds. */
    time_interval: z.number().positive().max(86400).default(64),
    /** Probes per server per round. */
    probes: z.number().int().min(3).max(100_000).default(200),
    /** Fraction of a round's probes kept, lowest round trip first. */
    keep_fraction: z.number().gt(0).max(1).default(0.25),
    /** Rounds in the offset-and-drift fit. */
    window: z.number().int().min(2).max(1000).default(16),
    /** Milliseconds to wait for each probe's reply before it counts as lost. */
    timeout_ms: z.number().int().min(1).max(60_000).default(20),
  })
  .strict();
export type TimeSync = z.output<typeof timeSync>;

const ipv4 = z.string().ip({ version: 'v4', message: 'expected an IPv4 address' });
const ifname = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'expected an interface name (1 to 15 letters, digits or _.:@-)');
const ifnames = z.union([ifname, z.array(ifname).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a server name (letters, digits, _.-; at most 63)');
const absPath = z.string().regex(/^\/[^\0]*$/, 'expected an absolute path');

/** One server of connect_info.yaml: how the manager reaches it over SSH, and what it is. */
const server = z
  .object({
    /** Server name, used in reports (the analyzer's node name). */
    hostname,
    /** Address the manager reaches over SSH. */
    address: ipv4,
    /** SSH port (default: defaults.port, then 22). */
    port: port.optional(),
    /** SSH user (default: defaults.username, then root); the observer needs root, so another user must be allowed sudo without a password. */
    username: z.string().min(1).optional(),
    /** Unique key of this server; VMs and containers name their host's. */
    metadata_key: z.union([z.number().int().min(0), z.string().min(1)]).transform(String),
    /** A bare-metal server (the default when neither isvm nor iscontainer is given). */
    novm: flag.optional(),
    /** This server is a VM on the server with this metadata_key. */
    isvm: z.union([z.number().int().min(0), z.string().min(1)]).transform(String).optional(),
    /** This server is a container on the server with this metadata_key. */
    iscontainer: z.union([z.number().int().min(0), z.string().min(1)]).transform(String).optional(),
    /** Interfaces the observer watches (default: every interface that is up). */
    eth: ifnames.optional(),
    /** Other addresses of the server (e.g. a data-plane address), used to name flows' ends. */
    other_address: z.union([ipv4, z.array(ipv4)]).transform((v) => (Array.isArray(v) ? v : [v])).default([]),
    /** Private key for SSH (default: the one in defaults, then ~/.ssh/id_ed25519). */
    key_file: z.string().min(1).optional(),
    /** Password authentication, where a server is set up for it (prefer password_file or password_env). */
    password: z.string().optional(),
    password_file: z.string().optional(),
    password_env: z.string().optional(),
    /** Where the observer bundle is installed on the server. */
    install_dir: absPath.optional(),
  })
  .strict()
  .refine((s) => [s.novm, s.isvm, s.iscontainer].filter((x) => x !== undefined && x !== false).length <= 1, {
    message: 'give at most one of novm, isvm, iscontainer',
  })
  .refine(...oneSecretSource('password'));
export type ServerInfo = z.output<typeof server>;

/** connect_info.yaml: every server latscope observes, and how to reach it. */
export const connectInfo = z
  .object({
    /** known_hosts file the servers' host keys are checked against. */
    known_hosts: z.string().min(1).default('~/.ssh/known_hosts'),
    /** Record host keys of servers not yet in known_hosts (a changed key is refused always). */
    accept_new_host_keys: flag.default(0),
    /** Values every server takes unless it sets its own. */
    defaults: z
      .object({
        port: port.optional(),
        username: z.string().min(1).optional(),
        key_file: z.string().min(1).optional(),
        install_dir: absPath.optional(),
      })
      .strict()
      .default({}),
    servers: z.array(server).min(1, 'list at least one server'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = (what: 'hostname' | 'metadata_key' | 'address') => {
      const first = new Map<string, number>();
      c.servers.forEach((s, i) => {
        // two containers may share their host's address, each with its own sshd port
        const v = what === 'address' ? `${s.address}:${s.port ?? c.defaults.port ?? 22}` : s[what];
        if (first.has(v)) ctx.addIssue({ code: 'custom', path: ['servers', i, what], message: `duplicate ${what} "${v}" (also servers.${first.get(v)})` });
        else first.set(v, i);
      });
      return first;
    };
    seen('hostname');
    seen('address');
    const keys = seen('metadata_key');
    c.servers.forEach((s, i) => {
      for (const rel of ['isvm', 'iscontainer'] as const) {
        const host = s[rel];
        if (host === undefined) continue;
        if (!keys.has(host)) ctx.addIssue({ code: 'custom', path: ['servers', i, rel], message: `no server has metadata_key "${host}"` });
        else if (host === s.metadata_key) ctx.addIssue({ code: 'custom', path: ['servers', i, rel], message: 'a server cannot be its own host' });
      }
    });
  });
export type ConnectInfo = z.output<typeof connectInfo>;

/** function_info.yaml: which probes the observers run. */
export const functionInfo = z
  .object({
    /** Cross-layer packet latency (the observer's latency probes). The observer exists for it: 1 is the only value. */
    latency: flag.default(1).refine((v) => v, { message: 'the observer always runs the latency probe: 0 is not supported; remove the key or set it to 1' }),
    /** Answer time-sync probes (needs ping_info.yaml). */
    timesync: flag.default(1),
    /** Host-jitter probes: scheduler, IRQs, memory stalls, syscalls (not available yet: leave empty). */
    jitter: z
      .array(z.enum(['sched', 'irq', 'memory', 'syscall'], { errorMap: () => ({ message: 'expected one of sched, irq, memory, syscall' }) }))
      .default([])
      .refine((v) => v.length === 0, { message: 'host-jitter modules are not available in this version of the observer: leave jitter empty ([])' }),
  })
  .strict();
export type FunctionInfo = z.output<typeof functionInfo>;

/** analysis_info.yaml: how the analyzer turns records into paths and statistics. */
export const analysisInfo = z
  .object({
    /** Seconds per statistics window. */
    window: z.number().min(0.1).max(3600).default(10),
    /** Seconds a record waits for the other end of its path (or a clock round after it) before it counts as unmatched. */
    grace: z.number().min(0).max(86400).default(60),
    /** A path is a spike when its end-to-end delay exceeds this many times its window's median. */
    spike_factor: z.number().gt(1).max(1e6).default(10),
    /** Seconds between analysis runs of the manager. */
    interval: z.number().min(1).max(3600).default(10),
  })
  .strict();
export type AnalysisInfo = z.output<typeof analysisInfo>;

/** database_info.yaml: the MySQL (or MariaDB) database results go to. */
export const databaseInfo = z
  .object({
    host: z.string().min(1),
    port: port.default(3306),
    user: z.string().min(1),
    /** The password itself (prefer passwd_file or passwd_env). */
    passwd: z.string().optional(),
    passwd_file: z.string().optional(),
    passwd_env: z.string().optional(),
    db: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'expected a database name (letters, digits, _)'),
  })
  .strict()
  .refine(...oneSecretSource('passwd'));
export type DatabaseInfo = z.output<typeof databaseInfo>;

/** management_server_info.yaml: the machine the manager runs on. */
export const managementServerInfo = z
  .object({
    /** The manager's address as the servers see it (time-sync probes come from it). */
    address: ipv4,
    /** Port of the manager's status endpoint (Prometheus metrics at http://address:port/metrics; 0: none). */
    port: z.union([port, z.literal(0)]).default(0),
    hostname: hostname.optional(),
    /** The manager's interfaces towards the servers; its time-sync prober attaches to them. */
    eth: ifnames,
  })
  .strict();
export type ManagementServerInfo = z.output<typeof managementServerInfo>;
