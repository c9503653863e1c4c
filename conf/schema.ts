/**
 * Schemas of the conf/ files, with their defaults. Field names follow seed 002; units are in
 * the descriptions. Unknown keys are errors (a typo must not silently fall back to a default).
 */
import { MAX_RECORD_SHARDS } from '../protocol/redis.js';
import { z } from 'zod';
import { HOST_MODULES } from '../protocol/host.js';

const port = z.number({ invalid_type_error: 'expected a port number (1 to 65535)' }).int('expected a whole port number').min(1, 'expected a port number (1 to 65535)').max(65535, 'expected a port number (1 to 65535)');
/** A number that must be finite (YAML's .inf and .nan are numbers too). */
const finite = (what: string) => z.number({ invalid_type_error: `expected ${what}` }).finite(`expected ${what}, not infinity`);
/** One value or a list of them, as a list; a clear message when it is neither. */
const oneOrList = <T extends z.ZodTypeAny>(item: T, [a, what]: [string, string], max = 1000) =>
  z.union([item, z.array(item).min(1, `list at least one ${what}`).max(max, `at most ${max} ${what}s`)], { errorMap: (_issue, ctx) => ({ message: ctx.data === undefined ? 'missing: this key is required' : `expected ${a} ${what} or a list of them` }) }).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);
/** A secret comes as the value, a file or an environment variable: at most one of them. */
function oneSecretSource(name: string): [(r: Record<string, unknown>) => boolean, { message: string }] {
  const keys = [name, `${name}_file`, `${name}_env`];
  return [(r) => keys.filter((k) => r[k] !== undefined).length <= 1, { message: `give at most one of ${keys.join(', ')}` }];
}

const flag = z.union([z.boolean(), z.literal(0), z.literal(1)], { errorMap: () => ({ message: 'expected 0 or 1 (or false, true)' }) }).transform((v) => v === true || v === 1);

/** A unicast IPv4 address another machine can reach: not 0.0.0.0, a broadcast, a multicast or a loopback address. */
const ipv4 = z
  .string({ invalid_type_error: 'expected an IPv4 address (quote it)' })
  .max(15, 'expected an IPv4 address')
  .ip({ version: 'v4', message: 'expected an IPv4 address (four numbers 0 to 255, e.g. 10.1.1.1)' })
  .refine((a) => a !== '0.0.0.0', 'expected the address of a machine, not 0.0.0.0 (which means "any")')
  .refine((a) => a !== '255.255.255.255' && !(Number(a.split('.')[0]) >= 224), 'expected a unicast address, not a broadcast or multicast one');
/** Linux interface names: 1 to 15 bytes, no "/", ":" or whitespace (dev_valid_name), ASCII here. */
const ifname = z
  .string({ invalid_type_error: 'expected an interface name' })
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name: 1 to 15 letters, digits or _.- (no ":", "/", spaces or accents)')
  .refine((n) => n !== '.' && n !== '..', 'expected an interface name');
const ifnames = oneOrList(ifname, ['an', 'interface name'], 64);
/** Where a service is: an IP address (v4 or v6) or a host name, without a port or a scheme. */
export const hostOrAddress = z
  .string({ invalid_type_error: 'expected a host name or an IP address' })
  .min(1, 'expected a host name or an IP address')
  .max(253, 'a host name has at most 253 characters')
  .superRefine((h, ctx) => {
    const bad = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h)) return bad('expected just the host (no scheme like redis:// or mysql://)');
    if (/^[0-9.]+$/.test(h)) {
      if (!z.string().ip({ version: 'v4' }).safeParse(h).success) return bad('not an IPv4 address: four numbers 0 to 255');
      if (h === '0.0.0.0') return bad('expected the address of a machine, not 0.0.0.0');
      return;
    }
    if (h.includes(':')) {
      if (z.string().ip({ version: 'v6' }).safeParse(h).success) return;
      return bad('expected a host name or an IP address; give the port in "port:", not after a colon');
    }
    if (!/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h))
      return bad('expected a host name (letters, digits, hyphens, dots) or an IP address');
  });

/** sampling_info.yaml: what the observers watch and how often they record a packet. */
export const samplingInfo = z
  .object({
    /** Bytes of a flow's stream between two sampled packets (0: off). */
    size: finite('a number of bytes').int('expected a whole number of bytes').min(0).max(2 ** 31).default(72400),
    /** Seconds after which a flow without a sample gets one (0: off). */
    interval: finite('a number of seconds').min(0).max(86400, 'at most 86400 seconds (a day)').default(1),
    /** TCP ports to watch, local or remote end (at most 64). */
    ports: oneOrList(port, ['a', 'port'], 64),
    /** Keep retransmissions out of the delay histograms. */
    filter_retrans: flag.default(1),
    /**
     * What the in-kernel delay histograms count. scaled (the default): one segment per
     * histogram_bytes bytes of each stream is timed, and counts for the segments it stands for
     * (histogram_bytes / its length): the histograms of every segment, estimated, while the
     * segments not timed cost the traffic no clock read and no matching. all: every segment,
     * exact, and the most expensive. samples: the sampled segments only, unscaled: the
     * cheapest, for latency-critical hosts.
     */
    histograms: z.enum(['scaled', 'all', 'samples'], { errorMap: () => ({ message: 'expected scaled (one segment per histogram_bytes, counts scaled), all (every segment) or samples (sampled segments only)' }) }).default('scaled'),
    /**
     * histograms: scaled: bytes of a stream between two timed segments, a power of two. Smaller
     * is more exact and costs more: a bucket's count of n segments of length L has a relative
     * standard error of about sqrt((histogram_bytes / L - 1) / n).
     */
    histogram_bytes: finite('a number of bytes')
      .int('expected a whole number of bytes')
      .refine((b) => b >= 64 && b <= 2 ** 24 && (b & (b - 1)) === 0, { message: 'expected a power of two from 64 to 16777216 (4096 is the default)' })
      .default(4096),
    /**
     * Only the sockets of this cgroup v2 subtree, a path below the hierarchy's root
     * (system.slice/trading.service): its cgroup programs run for its sockets only, and other
     * sockets get no flow state. Default: every socket of the kernel.
     */
    cgroup: z
      .string()
      .min(1)
      .max(4096)
      .refine((p) => !p.split('/').includes('..'), { message: 'a path below the cgroup v2 root, without ".."' })
      .optional(),
    /** Seconds between snapshots of the layer histograms into MySQL (0: only when the observer stops). */
    histogram_interval: finite('a number of seconds').min(0).max(86400).default(10),
  })
  .strict()
  .refine((s) => s.size > 0 || s.interval > 0, { message: 'size and interval are both 0: nothing would ever be sampled; set size (bytes between samples) or interval (seconds)', path: ['size'] });
export type SamplingInfo = z.output<typeof samplingInfo>;

/**
 * TLS to a server (redis_info.yaml and database_info.yaml `tls`): the server's certificate is
 * verified against ca_file; cert_file and key_file are this side's certificate when the server
 * asks for one (mutual TLS). Files are relative to the conf folder.
 */
export const tlsInfo = z
  .object({
    /** The certificate authority that signed the server's certificate (PEM). */
    ca_file: z.string().min(1),
    /** A client certificate (PEM) and its key (mode 600), together. */
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    /** The name the server's certificate must carry, when it is not the address connected to. */
    server_name: z.string().min(1).max(253).optional(),
  })
  .strict()
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), { message: 'cert_file and key_file go together: give both, or neither', path: ['cert_file'] });
export type TlsInfo = z.output<typeof tlsInfo>;

/** redis_info.yaml: the Redis that observers publish to. */
export const redisInfo = z
  .object({
    address: hostOrAddress,
    port: port.default(6379),
    /** The Redis user to connect as (absent: the default user). */
    username: z.string().regex(/^[\w.@-]{1,128}$/, 'expected a Redis user name (letters, digits, . _ @ -)').optional(),
    /** The password itself (prefer password_file or password_env). */
    password: z.string().optional(),
    /** A file holding the password (mode 600). */
    password_file: z.string().optional(),
    /** An environment variable holding the password. */
    password_env: z.string().optional(),
    /**
     * Backpressure: observers add nothing to the record stream while it holds this many entries
     * (256 records, about 40 KB each) and spool instead, until the ingest catches up. Keep
     * entries × 40 KB well under Redis's maxmemory. 0: no bound.
     */
    max_stream_entries: z.number({ invalid_type_error: 'expected a number of stream entries' }).int('expected a whole number of entries').min(0).max(10_000_000).default(10_000),
    /**
     * Record streams the records are sharded into, by flow (both ends of a sample in one shard),
     * each analyzed by one manager at a time (analysis_info.yaml engine stream). 1: one stream.
     */
    record_shards: z.number({ invalid_type_error: 'expected a number of shards' }).int('expected a whole number of shards').min(1).max(MAX_RECORD_SHARDS).default(1),
    /** TLS to Redis (absent: plain text, fine on loopback or a trusted segment only). */
    tls: tlsInfo.optional(),
    /**
     * 1: the manager gives every observer a Redis user of its own (ACL SETUSER: it may only add
     * to latscope's streams, no other command), with a password derived from the manager's, and
     * every entry an observer adds is signed, so no observer can write as another server. Needs
     * a password, and a manager user allowed to run ACL. 0: observers share the manager's
     * password (a private Redis, or observers started by hand).
     */
    observer_users: flag.default(1),
  })
  .strict()
  .refine(...oneSecretSource('password'));
export type RedisInfo = z.output<typeof redisInfo>;

const hexKey = z.string().regex(/^([0-9a-fA-F]{16}){1,2}$/, 'expected 32 hex digits (make one with: openssl rand -hex 16)');

/** ping_info.yaml: the time-sync responder on each observer, and where the manager probes it. */
export const pingInfo = z
  .object({
    /** The address probes go to (default: each server's address from connect_info). */
    address: ipv4.optional(),
    /** UDP port the responder answers on. */
    port: port.default(5005),
    /** Interface the responder's XDP program attaches to. */
    eth: ifname,
    /** auto: native XDP where it can transmit, generic on veth and other virtual devices. */
    mode: z.enum(['auto', 'native', 'generic', 'user-space']).default('auto'),
    /** The addresses the responder answers besides the manager's (management_server_info
     * address, which the manager adds itself): another prober, e.g. \`latscope timesync probe\`
     * run from another host. A responder run by hand needs at least one. */
    probers: z.array(ipv4).max(16_000).optional(),
    /** Replies per second a responder sends one prober at most. */
    rate_limit: z.number().int().min(1).max(4294967295).default(50000),
    /** The per-deployment probe key, 32 hex digits (prefer key_file or key_env); 16 still work. */
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
    /**
     * The probe mesh: every observer probes some peers' responders, which gives each pair's
     * one-way delay and loss without application traffic, and clocks solved over the whole mesh;
     * the manager then probes only a few anchors.
     */
    mesh: z
      .object({
        /** 1: observers probe their peers, and the manager probes only `anchors` servers. */
        enabled: flag.default(0),
        /** Seconds between an observer's mesh rounds (rounds start together, on the wall clock). */
        interval: z.number().min(1).max(3600).default(10),
        /** Probes per peer per round. */
        probes: z.number().int().min(3).max(10_000).default(50),
        /** Every server probes every other while the fleet has at most this many servers. */
        full_mesh: z.number().int().min(2).max(64).default(16),
        /** In larger fleets: this many ring neighbours on each side ... */
        ring: z.number().int().min(1).max(8).default(2),
        /** ... and this many random peers, chosen anew each round. */
        random: z.number().int().min(0).max(32).default(4),
        /** Servers the manager probes itself (spread over connect_info's list): they tie the mesh to the manager's clock. */
        anchors: z.number().int().min(1).max(64).default(4),
        /** Probes a second one observer sends at most (its replies as many): 2,000 of about 100 bytes stay near 0.03% of a 10 Gbit/s link. */
        max_probe_rate: z.number().int().min(10).max(100_000).default(2000),
      })
      .strict()
      .default({}),
  })
  .strict();
export type TimeSync = z.output<typeof timeSync>;

const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a server name (letters, digits, _.-; at most 63)');

/**
 * mesh_info.yaml: what an observer's probe mesh needs, written by the manager beside ping_info.yaml
 * when time_sync.yaml has mesh enabled (not a file operators write).
 */
export const meshInfo = z
  .object({
    /** Every server of the fleet (this one too): its name and the address its responder answers on. */
    nodes: z.array(z.object({ name: hostname, address: ipv4 }).strict()).min(2).max(16_000),
    interval: z.number().min(1).max(3600),
    probes: z.number().int().min(3).max(10_000),
    full_mesh: z.number().int().min(2).max(64),
    ring: z.number().int().min(1).max(8),
    random: z.number().int().min(0).max(32),
    timeout_ms: z.number().int().min(1).max(60_000),
    max_probe_rate: z.number().int().min(10).max(100_000),
    /** For an anchor: the manager's address; it probes the manager's responder too. */
    manager: ipv4.optional(),
  })
  .strict();
export type MeshInfo = z.output<typeof meshInfo>;
const absPath = z.string().regex(/^\/[^\0]*$/, 'expected an absolute path');

/** A login name as Linux and ssh take it: letters, digits, '_', '.', '-', at most 32 characters. */
const userName = z
  .string()
  .min(1, 'must not be empty')
  .max(32, 'at most 32 characters (a Linux user name)')
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, 'a user name has letters, digits, "_", "." and "-" only (no spaces), and starts with a letter or "_"');

/** ssh -J syntax: [user@]host[:port], comma-separated, nearest hop first. */
const proxyJump = z
  .string()
  .max(1024)
  .regex(/^(?:ssh:\/\/)?(?:[A-Za-z_][A-Za-z0-9_.-]*@)?[A-Za-z0-9_.:\[\]-]+(?::\d{1,5})?(?:,(?:ssh:\/\/)?(?:[A-Za-z_][A-Za-z0-9_.-]*@)?[A-Za-z0-9_.:\[\]-]+(?::\d{1,5})?)*$/, 'expected [user@]host[:port], several separated by commas (as ssh -J)');

/** One server of connect_info.yaml: how the manager reaches it over SSH, and what it is. */
const server = z
  .object({
    /** Server name, used in reports (the analyzer's node name). */
    hostname,
    /** Address the manager reaches over SSH. */
    address: ipv4,
    /** SSH port (default: defaults.port, then 22). */
    port: port.optional(),
    /** SSH user (default: the ssh config's User, defaults.username, then root); the observer needs root, so another user must be allowed sudo without a password. */
    username: userName.optional(),
    /** Hops to reach the server through, nearest first: "[user@]host[:port],…" as ssh -J (default: the ssh config's ProxyJump, then defaults.proxy_jump). */
    proxy_jump: proxyJump.optional(),
    /** Unique key of this server; VMs and containers name their host's. */
    metadata_key: z.union([z.number().int().min(0), z.string().min(1).max(64)], { errorMap: (i) => ({ message: i.code === 'invalid_union' && (i as { received?: unknown }).received === undefined ? 'missing: every server needs its metadata_key (a number or a name, unique)' : 'expected a number or a name (at most 64 characters)' }) }).transform(String),
    /** A bare-metal server (the default when neither isvm nor iscontainer is given). */
    novm: flag.optional(),
    /** This server is a VM on the server with this metadata_key. */
    isvm: z.union([z.number().int().min(0), z.string().min(1).max(64)], { errorMap: () => ({ message: "expected the host's metadata_key (a number or a name)" }) }).transform(String).optional(),
    /** This server is a container on the server with this metadata_key. */
    iscontainer: z.union([z.number().int().min(0), z.string().min(1).max(64)], { errorMap: () => ({ message: "expected the host's metadata_key (a number or a name)" }) }).transform(String).optional(),
    /** Interfaces the observer watches (default: every interface that is up). */
    eth: ifnames.optional(),
    /** Other addresses of the server (e.g. a data-plane address), used to name flows' ends. */
    other_address: oneOrList(ipv4, ['an', 'IPv4 address'], 64).optional().transform((v) => v ?? []),
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
    /**
     * The operator's OpenSSH client config: Host blocks give HostName, Port, User, IdentityFile and
     * ProxyJump for a server whose hostname or address they match (default: ~/.ssh/config when it exists).
     */
    ssh_config: z.string().min(1).optional(),
    /** Record host keys of servers not yet in known_hosts (a changed key is refused always). */
    accept_new_host_keys: flag.default(0),
    /** Values every server takes unless it sets its own. */
    defaults: z
      .object({
        port: port.optional(),
        username: userName.optional(),
        key_file: z.string().min(1).optional(),
        proxy_jump: proxyJump.optional(),
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
        // names are compared without case: the servers table's unique key ignores it
        const v = what === 'address' ? `${s.address}:${s.port ?? c.defaults.port ?? 22}` : what === 'hostname' ? s.hostname.toLowerCase() : s[what];
        const caseOnly = what === 'hostname' && first.has(v) && c.servers[first.get(v)!]!.hostname !== s.hostname;
        if (first.has(v)) ctx.addIssue({ code: 'custom', path: ['servers', i, what], message: `duplicate ${what} "${what === 'hostname' ? s.hostname : v}" (also servers.${first.get(v)}${caseOnly ? ', which differs only in case' : ''})` });
        else first.set(v, i);
      });
      return first;
    };
    seen('hostname');
    const addresses = seen('address');
    // another address of a server must not be some other server's address: flows would get two owners
    const byAddress = new Map(c.servers.map((s, i) => [s.address, i]));
    c.servers.forEach((s, i) =>
      s.other_address.forEach((a, j) => {
        const other = byAddress.get(a);
        if (other !== undefined && other !== i) ctx.addIssue({ code: 'custom', path: ['servers', i, 'other_address', j], message: `${a} is the address of servers.${other} (${c.servers[other]!.hostname}): an address belongs to one server` });
      }),
    );
    void addresses;
    const keys = seen('metadata_key');
    c.servers.forEach((s, i) => {
      for (const rel of ['isvm', 'iscontainer'] as const) {
        const host = s[rel];
        if (host === undefined) continue;
        if (!keys.has(host)) ctx.addIssue({ code: 'custom', path: ['servers', i, rel], message: `no server has metadata_key "${host}"` });
        else if (host === s.metadata_key) ctx.addIssue({ code: 'custom', path: ['servers', i, rel], message: 'a server cannot be its own host' });
      }
    });
    // a guest's host may itself be a guest (a container in a VM), but the chain must end at a machine
    const byKey = new Map(c.servers.map((s) => [s.metadata_key, s]));
    c.servers.forEach((s, i) => {
      const chain = [s.metadata_key];
      for (let h = s.isvm ?? s.iscontainer; h !== undefined && byKey.has(h); h = byKey.get(h)!.isvm ?? byKey.get(h)!.iscontainer) {
        if (chain.includes(h)) {
          if (h !== s.metadata_key || chain.length > 1)
            ctx.addIssue({ code: 'custom', path: ['servers', i, s.isvm !== undefined ? 'isvm' : 'iscontainer'], message: `hosts form a loop (${[...chain, h].join(' -> ')}): a VM or container's host chain must end at a bare-metal server` });
          break;
        }
        chain.push(h);
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
    /**
     * Host-jitter modules every observer runs (host/): their statistics and outliers go to MySQL
     * (host_stats, host_events), and a slow packet's report lists what its host was doing.
     */
    jitter: z
      .array(z.enum(HOST_MODULES, { errorMap: () => ({ message: `expected one of ${HOST_MODULES.join(', ')}` }) }))
      .max(HOST_MODULES.length)
      .refine((v) => new Set(v).size === v.length, { message: 'a module is listed twice' })
      .default([]),
    /** Each observer's Prometheus endpoint: address (default 127.0.0.1, loopback only) and port (default 9478; 0: none). */
    metrics: z
      .object({
        address: ipv4.default('127.0.0.1'),
        port: z.number({ invalid_type_error: 'expected a port number (0: no endpoint)' }).int().min(0).max(65535).default(9478),
      })
      .strict()
      .default({}),
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
    /** Seconds between analysis runs of the manager (engine batch). */
    interval: z.number().min(1).max(3600).default(10),
    /**
     * stream: records analyzed as they arrive, from the Redis stream (analyzer/stream/stage.ts), no row per record;
     * batch: every record loaded into packets, analyzed every interval (analyzer/analyze.ts).
     */
    engine: z.enum(['stream', 'batch']).default('batch'),
    /** engine stream: share of samples whose raw records are kept in packets (0 to 1; both ends of a sample together). */
    raw_sample: z.number().min(0).max(1).default(0),
    /**
     * engine stream: records a step analyzes at most, per shard (analyzer/stream/stage.ts
     * DEFAULT_STEP_RECORDS says why this default). Larger steps hold more in memory (about 420 MB
     * per shard at 250,000 in bench/analyze); smaller ones write each window's statistics more often.
     */
    step_records: z.number({ invalid_type_error: 'expected a number of records' }).int('expected a whole number of records').min(1000, 'at least 1000 records a step').max(2_000_000, 'at most 2000000 records a step').default(250_000),
    /**
     * engine stream: records that may wait for their other end, per shard (the rows of a server
     * whose peers' come later: a replayed backlog). Beyond, the oldest are dropped and counted
     * (latscope_stream_evicted_records_total); each takes about 300 bytes of memory.
     */
    max_waiting: z.number({ invalid_type_error: 'expected a number of records' }).int('expected a whole number of records').min(1000, 'at least 1000 waiting records').max(10_000_000, 'at most 10000000 waiting records').default(200_000),
    /**
     * engine stream: steps per commit at most while a shard has a backlog (analyzer/stream/stage.ts
     * DEFAULT_COMMIT_STEPS says why this default): a full step holds its results for the next, so
     * each window is merged with the stored one and written once for several steps. Results show
     * in MariaDB within about 5 s either way; 1 commits every step.
     */
    commit_steps: z.number({ invalid_type_error: 'expected a number of steps' }).int('expected a whole number of steps').min(1, 'at least 1 step a commit').max(16, 'at most 16 steps a commit').default(4),
  })
  .strict();
export type AnalysisInfo = z.output<typeof analysisInfo>;

/** database_info.yaml: the MySQL (or MariaDB) database results go to. */
const days = z.number({ invalid_type_error: 'expected a number of days (0: keep forever)' }).int('expected a whole number of days').min(0, 'expected a number of days (0: keep forever)').max(36_500, 'at most 36500 days (100 years); 0 keeps forever');

export const databaseInfo = z
  .object({
    host: hostOrAddress,
    port: port.default(3306),
    user: z.string().min(1),
    /** The password itself (prefer passwd_file or passwd_env). */
    passwd: z.string().optional(),
    passwd_file: z.string().optional(),
    passwd_env: z.string().optional(),
    db: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'expected a database name (letters, digits, _)'),
    /** TLS to the database (absent: plain text, fine on loopback or a trusted segment only). */
    tls: tlsInfo.optional(),
    /** Days of data kept (0: forever); old days are dropped whole, every hour (db/retention.ts). */
    retention: z
      .object({
        /** packets and the paths joined from them. */
        packets: days.default(7),
        /** layer_histograms snapshots, and the host-jitter figures and outliers. */
        histograms: days.default(30),
        /** the analyzer's statistics, flows, unmatched counts, spikes, and the clock offsets. */
        results: days.default(365),
      })
      .strict()
      .default({}),
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
