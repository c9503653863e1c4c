/**
 * Each server's state as the manager sees it, and the observers' heartbeats. A server's state
 * lives in the Redis hash latscope:servers (one JSON value per server, which `manager status`
 * reads) and is changed only by ServerStates.set, which also logs the change.
 */
import type { Redis } from 'ioredis';
import { decodeHeartbeat, HEARTBEAT_STREAM, SERVERS_KEY } from '../protocol/redis.js';
import type { EntryVerifier } from '../protocol/entry-mac.js';

export type ServerState = 'queued' | 'connecting' | 'installing' | 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';

export interface ServerStatus {
  state: ServerState;
  detail: string;
  atMs: number;
  supervisorPid?: number;
}

export class ServerStates {
  constructor(
    private readonly redis: Redis | undefined,
    private readonly log: (line: string) => void,
  ) {}

  /** The one place a server's state changes. Without Redis (it is away), only logged. */
  async set(server: string, state: ServerState, detail = '', supervisorPid?: number): Promise<ServerStatus> {
    const st: ServerStatus = { state, detail, atMs: Date.now(), supervisorPid };
    this.log(`${server}: ${state}${detail ? ` (${detail})` : ''}`);
    await this.redis?.hset(SERVERS_KEY, server, JSON.stringify(st));
    return st;
  }

  async all(): Promise<Map<string, ServerStatus>> {
    const h = this.redis ? await this.redis.hgetall(SERVERS_KEY) : {};
    return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as ServerStatus]));
  }
}

/** The newest heartbeat per node among those sent at or after sinceMs (with observer users: only those signed by their node). */
export async function latestHeartbeats(redis: Redis, sinceMs: number, verify?: EntryVerifier): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  const entries = await redis.xrevrange(HEARTBEAT_STREAM, '+', String(sinceMs), 'COUNT', 5000);
  for (const [id, f] of entries) {
    if (verify?.check(f)) continue; // a forged heartbeat must not hide a dead observer
    const m = decodeHeartbeat(id, f);
    if (m.node && !out.has(m.node)) out.set(m.node, m);
  }
  return out;
}

/** Heartbeats in the stream since a stream id (e.g. `${Date.now()}-0`), oldest first (with observer users: only those signed by their node). */
export async function readHeartbeats(redis: Redis, sinceId: string, verify?: EntryVerifier): Promise<Record<string, string>[]> {
  return (await redis.xrange(HEARTBEAT_STREAM, sinceId, '+')).filter(([, f]) => !verify?.check(f)).map(([id, f]) => decodeHeartbeat(id, f));
}

/** The newest heartbeat of `node` at or after sinceMs, within timeoutMs. */
export async function waitForHeartbeat(redis: Redis, node: string, sinceMs: number, timeoutMs: number, verify?: EntryVerifier): Promise<Record<string, string> | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const hb = (await latestHeartbeats(redis, sinceMs, verify)).get(node);
    if (hb) return hb;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}
