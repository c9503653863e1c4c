/**
 * A Redis user per observer (redis_info observer_users: 1). Each observer may only add entries
 * to latscope's observer streams and read their length (backpressure): no other command, no other
 * key, no channel, so it can neither flush Redis, change its configuration, read other entries,
 * nor publish on the manager's control channel. Its password is derived from the manager's (so
 * nothing more needs keeping), and the entries it adds are signed with a key derived from that
 * password (protocol/entry-mac.ts), which the manager checks.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Deployment } from '../conf/deployment.js';
import { EntryVerifier, observerPassword, observerUser } from '../protocol/entry-mac.js';
import { MESH_STREAM, HEARTBEAT_STREAM, HISTOGRAM_STREAM, RECORD_STREAM } from '../protocol/redis.js';
import { HOST_STREAM } from '../protocol/host.js';

/** The ACL rules of an observer's user: reset first, so a rerun leaves exactly these. */
export function observerRules(password: string): string[] {
  return [
    'reset', // off, no password, no keys, no channels, no commands
    'on',
    `#${createHash('sha256').update(password).digest('hex')}`, // the hash only: the password never goes over the wire here
    `~${RECORD_STREAM}`,
    `~${RECORD_STREAM}:{*}`, // the shards, not latscope:records:bad
    `~${HISTOGRAM_STREAM}`,
    `~${HOST_STREAM}`,
    `~${MESH_STREAM}`,
    `~${HEARTBEAT_STREAM}`,
    '+xadd',
    '+xlen',
    '+ping',
  ];
}

/** What an observer connects with: its user and password. */
export function observerCredentials(d: Deployment, node: string): { username: string; password: string } {
  if (d.redis.secret === undefined) throw new Error('redis_info.yaml: observer_users needs the manager\'s password');
  return { username: observerUser(node), password: observerPassword(d.redis.secret, node) };
}

/** The manager's check of every entry, when observers have users of their own (else none: entries are not signed). */
export const entryVerifier = (d: Deployment): EntryVerifier | undefined => (d.redis.observer_users && d.redis.secret !== undefined ? new EntryVerifier(d.redis.secret) : undefined);

/** Creates (or resets) every server's observer user, in one round trip. A clear error when the manager may not. */
export async function ensureObserverUsers(redis: Redis, d: Deployment): Promise<void> {
  const p = redis.pipeline();
  for (const s of d.servers) {
    const { username, password } = observerCredentials(d, s.hostname);
    p.call('ACL', 'SETUSER', username, ...observerRules(password));
  }
  const refused = ((await p.exec()) ?? []).find(([e]) => e)?.[0];
  if (refused)
    throw new Error(
      `redis at ${d.redis.address}:${d.redis.port}: the manager's user may not create ACL users (${refused.message}); observer_users: 1 in redis_info.yaml needs a manager user with ACL rights (the default user has them), or set observer_users: 0`,
    );
}

/** Removes every server's observer user (after its observer stopped). Returns how many there were. */
export async function removeObserverUsers(redis: Redis, d: Deployment): Promise<number> {
  if (!d.servers.length) return 0;
  return Number(await redis.call('ACL', 'DELUSER', ...d.servers.map((s) => observerUser(s.hostname))));
}
