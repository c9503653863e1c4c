/**
 * Schemas of the conf/ files, with their defaults. Field names follow seed 002; units are in
 * the descriptions. Unknown keys are errors (a typo must not silently fall back to a default).
 */
import { z } from 'zod';

const port = z.number({ invalid_type_error: 'expected a port number' }).int().min(1).max(65535);
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
  .refine((r) => [r.password, r.password_file, r.password_env].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of password, password_file, password_env',
  });
export type RedisInfo = z.output<typeof redisInfo>;

const hexKey = z.string().regex(/^[0-9a-fA-F]{1,16}$/, 'expected up to 16 hex digits');

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
  .refine((r) => [r.key, r.key_file, r.key_env].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of key, key_file, key_env',
  });
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
