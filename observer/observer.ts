/**
 * The observer process on one server. For now it loads the liveness probe (netcount), and
 * publishes a heartbeat with the host's packet counters to Redis every interval, so the manager
 * can see that it runs, where, and that its kernel hooks fire. The cross-layer probes join it
 * here as they land.
 */
import { Redis } from 'ioredis';
import { BpfObject, netnsInode } from '../native/bpf.js';
import { sweepLeftovers } from '../native/leftovers.js';

export interface ObserverOptions {
  /** This server's name (connect_info hostname). */
  node: string;
  redis: { host: string; port: number; password?: string };
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
}

export const HEARTBEAT_STREAM = 'latscope:heartbeat';

export interface Heartbeat {
  node: string;
  seq: number;
  pid: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  state: 'running' | 'stopped';
}

/** Heartbeats in the stream since a stream id (e.g. `${Date.now()}-0`), oldest first. */
export async function readHeartbeats(redis: Redis, sinceId: string): Promise<Record<string, string>[]> {
  const entries = await redis.xrange(HEARTBEAT_STREAM, sinceId, '+');
  return entries.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, k) => [f[2 * k]!, f[2 * k + 1]!])));
}

export class Observer {
  private bpf?: BpfObject;
  private redis?: Redis;
  private timer?: NodeJS.Timeout;
  private seq = 0;

  constructor(private readonly opts: ObserverOptions) {}

  /** Loads and attaches the probes and connects to Redis; throws a clear error if it cannot. */
  async start(): Promise<void> {
    const { host, port, password } = this.opts.redis;
    // A killed predecessor may have left netlink attachments behind: remove them first.
    for (const what of sweepLeftovers()) console.error(`observer ${this.opts.node}: removed leftover ${what}`);
    try {
      this.bpf = BpfObject.open('netcount', { settings: { netns_ino: netnsInode() } });
      this.bpf.attach('count_tx');
      this.bpf.attach('count_rx');
      this.redis = new Redis({ host, port, password, lazyConnect: true, maxRetriesPerRequest: 1 });
      this.redis.on('error', () => {}); // reported through the failing command instead
      await this.redis.connect().catch((e: Error) => {
        throw new Error(`observer ${this.opts.node}: connecting to redis at ${host}:${port}: ${e.message}; check that it runs and that this server can reach it`);
      });
      await this.beat('running');
    } catch (e) {
      this.bpf?.close();
      this.redis?.disconnect();
      throw e;
    }
    this.timer = setInterval(() => void this.beat('running').catch(() => {}), this.opts.heartbeatMs);
  }

  counters(): Omit<Heartbeat, 'node' | 'seq' | 'pid' | 'state'> {
    const c = this.bpf!.map('counters');
    return { txPackets: Number(c.u64At(0)), txBytes: Number(c.u64At(1)), rxPackets: Number(c.u64At(2)), rxBytes: Number(c.u64At(3)) };
  }

  private async beat(state: Heartbeat['state']): Promise<void> {
    const hb: Heartbeat = { node: this.opts.node, seq: ++this.seq, pid: process.pid, ...this.counters(), state };
    await this.redis!.xadd(HEARTBEAT_STREAM, 'MAXLEN', '~', '10000', '*', ...Object.entries(hb).flat().map(String));
  }

  /** Sends a last heartbeat, detaches every probe, disconnects. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.redis && this.bpf) await this.beat('stopped');
    } finally {
      this.bpf?.close();
      this.redis?.disconnect();
    }
  }
}
