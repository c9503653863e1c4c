/** The deployment's Redis, as the manager's processes reach it. */
import { Redis } from 'ioredis';
import type { Deployment } from '../conf/deployment.js';
import type { TlsFiles } from '../conf/tls.js';

/** Connection options for BullMQ and ioredis from redis_info. */
export function redisConnection(d: Deployment): { host: string; port: number; username?: string; password?: string; tls?: TlsFiles; maxRetriesPerRequest: null } {
  return { host: d.redis.address, port: d.redis.port, ...(d.redis.username ? { username: d.redis.username } : {}), password: d.redis.secret, ...(d.redis.tlsFiles ? { tls: d.redis.tlsFiles } : {}), maxRetriesPerRequest: null };
}

/**
 * A connected client of the deployment's Redis, or an error saying what is wrong (and no
 * client left retrying in the background). Once connected, it reconnects by itself.
 */
export async function connectRedis(d: Deployment): Promise<Redis> {
  const redis = new Redis({ ...redisConnection(d), lazyConnect: true });
  let last = '';
  redis.on('error', (e: Error) => (last = e.message));
  try {
    await redis.connect();
    return redis;
  } catch (e) {
    redis.disconnect();
    throw new Error(`redis at ${d.redis.address}:${d.redis.port} (redis_info.yaml): ${last || (e as Error).message}; check that it runs, that this machine can reach it, the password, and with tls its ca_file`);
  }
}

/** The configuration every worker may read: no secrets. */
export function publicConf(d: Deployment): string {
  return JSON.stringify({
    dir: d.dir,
    servers: d.servers.map((s) => ({ hostname: s.hostname, address: s.address, kind: s.kind, hostKey: s.hostKey, installDir: s.installDir })),
    sampling: d.sampling,
    timeSync: d.ping ? d.timeSync : undefined,
    functions: d.functions,
  });
}
