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
