/**
 * Every name the processes share in Redis, and the fields of each stream's entries. Observers
 * write the streams, the manager's workers read them; nothing else names a key.
 *
 *   latscope:records      stream: record batches (RecordBatch), consumed by the ingest group
 *   latscope:histograms   stream: histogram snapshots (HistogramSnapshot), same group
 *   latscope:heartbeat    stream, capped: observers' heartbeats (Heartbeat)
 *   latscope:servers      hash: server name -> its state as the manager last set it (JSON)
 *   latscope:conf         string: the running deployment's configuration, without secrets
 *   latscope:jobs         hash: "failed:QUEUE:JOB" / "error:QUEUE" -> count, for `manager status`
 *   latscope:manager:control  pub/sub channel: "stop" ends every running manager
 *   latscope:timesync:round   counter: the last time-sync round number
 *   {latscope}:latscope-* BullMQ's own keys of the queues below (QUEUE_PREFIX: one hash tag, so a
 *                         Redis Cluster keeps each queue's keys in one slot, as BullMQ requires)
 */

import type { Redis } from 'ioredis';

export const RECORD_STREAM = 'latscope:records';
/** Record streams a fleet may be sharded into (redis_info.yaml record_shards). */
export const MAX_RECORD_SHARDS = 256;

/**
 * The records stream of a shard: with one shard, RECORD_STREAM itself; with several,
 * "latscope:records:{k}" (a hash tag per shard, so a Redis Cluster spreads the shards over its
 * masters while each shard's keys stay together).
 */
export const recordStream = (shard: number, shards: number, base = RECORD_STREAM): string => (shards <= 1 ? base : `${base}:{${shard}}`);

/**
 * The shard of a flow's records: both ends of a sample carry the same flow id (protocol/records.ts
 * flowId hashes the 5-tuple in the direction of the data), so they land in the same shard.
 */
export const shardOf = (flow: number, shards: number): number => (shards <= 1 ? 0 : flow % shards);
export const HISTOGRAM_STREAM = 'latscope:histograms';
export const HEARTBEAT_STREAM = 'latscope:heartbeat';
export const SERVERS_KEY = 'latscope:servers';
export const CONF_KEY = 'latscope:conf';
export const JOBS_KEY = 'latscope:jobs';
export const CONTROL_CHANNEL = 'latscope:manager:control';
export const TIMESYNC_ROUND_KEY = 'latscope:timesync:round';
/** BullMQ's key prefix: a hash tag (BullMQ on a Redis Cluster needs every key of a queue in one slot). */
export const QUEUE_PREFIX = '{latscope}';
/** The consumer group of the record and histogram streams. */
export const INGEST_GROUP = 'latscope-ingest';
/** Heartbeat entries kept (approximately): the stream is a liveness log, not a history. */
export const HEARTBEAT_MAXLEN = 10_000;
/** Records the ingest has loaded, all workers together (its rate is the ingest's speed). */
export const INGESTED_KEY = 'latscope:ingest:records';
/** Entries the ingest could not use, kept for a person to look at (capped: the newest). */
export const BAD_RECORD_STREAM = 'latscope:records:bad';
export const BAD_RECORD_MAXLEN = 1000;

/** BullMQ queues, one per kind of work. */
export const QUEUES = {
  provision: 'latscope-provision',
  ingest: 'latscope-ingest',
  analysis: 'latscope-analysis',
  timesync: 'latscope-timesync',
  retention: 'latscope-retention',
  mesh: 'latscope-mesh',
} as const;

/** A stream entry's field list (k1, v1, k2, v2, ...) as a map. */
export function entryFields(fields: readonly string[] | null | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (fields) for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!, fields[i + 1]!);
  return m;
}

/** A stream entry read binary-safe: its id, and its fields as Buffers (null: deleted since it was delivered). */
export type BufferEntry = [id: string, fields: Buffer[] | null];

/** The text fields `names` of an entry read as Buffers, as a map (a large body is never decoded as text unasked). */
export function bufferFields(fields: readonly Buffer[] | null | undefined, names: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const name of names) {
    const v = bufferField(fields, name);
    if (v !== undefined) m.set(name, v.toString());
  }
  return m;
}

/** The value of field `name` of an entry read as Buffers. */
export function bufferField(fields: readonly Buffer[] | null | undefined, name: string): Buffer | undefined {
  if (fields) for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.length === name.length && fields[i]!.toString('latin1') === name) return fields[i + 1];
  return undefined;
}

/**
 * XREADGROUP of one stream with Buffers: a binary record entry (protocol/records-binary.ts)
 * comes through whole (read as strings, its bytes would be decoded as UTF-8 and changed).
 * `args` are everything before STREAMS.
 */
export async function readGroupBuffers(redis: Pick<Redis, 'callBuffer'>, args: (string | number)[], stream: string, from: string): Promise<BufferEntry[]> {
  const res = (await redis.callBuffer('XREADGROUP', [...args, 'STREAMS', stream, from])) as [Buffer, [Buffer, Buffer[] | null][]][] | null;
  return res?.[0]?.[1].map(([id, f]): BufferEntry => [id.toString('latin1'), f]) ?? [];
}

/** A map or object as a stream entry's field list. */
/** Stream of probe mesh rounds from the observers (protocol/mesh.ts MeshBatch), and the entries it keeps at most (rounds are small and few). */
export const MESH_STREAM = 'latscope:mesh';
export const MESH_STREAM_ENTRIES = 10_000;

export const toFields = (o: Record<string, string | number>): string[] => Object.entries(o).flatMap(([k, v]) => [k, String(v)]);

/** An entry of latscope:records: one batch of one observer's records. */
export interface RecordBatch {
  node: string;
  /** Observer sequence numbers of the first and last record. */
  first: number;
  last: number;
  n: number;
  /** BINARY_FORMAT of protocol/records-binary.ts (field `records`, the entry's bytes), or ROW_FORMAT of protocol/records.ts (field `rows`, text; read for one release more). */
  format: string;
  rows?: string;
  records?: Buffer;
}

/** An entry of latscope:histograms. */
export interface HistogramSnapshot {
  node: string;
  /** Unix time in ms when the observer read its histograms. */
  at: number;
  /** HIST_FORMAT of protocol/histograms.ts. */
  format: string;
  rows: string;
}

/** An entry of latscope:heartbeat. */
export interface Heartbeat {
  node: string;
  seq: number;
  pid: number;
  state: 'running' | 'stopped';
  /** Records assembled, published to Redis, waiting in memory. */
  records: number;
  published: number;
  backlog: number;
  /** Everything lost so far, all reasons together. */
  dropped: number;
  /** The same by reason, as JSON (observer/observer.ts Drops). */
  drops: string;
  retransTx: number;
  retransRx: number;
  /** The Prometheus endpoint: HOST:PORT, 'off', or 'unavailable' (it could not bind; logged, counted). */
  metrics?: string;
}

/** A heartbeat entry's fields, with the entry's time (ms) as atMs. */
export function decodeHeartbeat(id: string, fields: readonly string[]): Record<string, string> {
  const m = Object.fromEntries(entryFields(fields));
  m.atMs = id.split('-')[0]!;
  return m;
}
