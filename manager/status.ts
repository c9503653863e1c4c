/**
 * What `latscope manager status` shows: each server's state and its observer's last heartbeat
 * (records, drops by reason, publish rate), and whether the ingest keeps up: records per second
 * in (observers publishing) and out (the ingest loading), the backlog in Redis and how many
 * seconds of ingest it holds.
 */
import type { Redis } from 'ioredis';
import type { Deployment } from '../conf/deployment.js';
import { entryVerifier } from './observer-users.js';
import { decodeHeartbeat, HEARTBEAT_STREAM, INGEST_GROUP, INGESTED_KEY, RECORD_STREAM, SERVERS_KEY } from '../protocol/redis.js';
import { jobFailures } from './queues.js';
import type { ServerStatus } from './state.js';

/** Records in one stream entry as observers write them (the backlog in records is about entries × this). */
const RECORDS_PER_ENTRY = 256;
/** Heartbeats this far apart give a node's publish rate. */
const RATE_WINDOW_MS = 15_000;

export interface ServerLine {
  hostname: string;
  state: string;
  detail?: string;
  /** Seconds since the last heartbeat (null: none in the last hour). */
  heartbeatAgeS: number | null;
  records?: number;
  published?: number;
  dropped?: number;
  drops?: Record<string, number>;
  /** Records per second published over the last RATE_WINDOW_MS. */
  publishPerS?: number;
}

export interface DeploymentStatus {
  servers: ServerLine[];
  ingest: {
    streamEntries: number;
    /** Entries delivered to a worker and not yet acknowledged. */
    loading: number;
    backlogRecords: number;
    inPerS: number;
    outPerS: number;
    /** The backlog at the current out rate (null: nothing goes out). */
    backlogS: number | null;
    /** Observers holding back because the stream is at max_stream_entries. */
    heldBack: boolean;
  };
  /** Failed job attempts and worker errors since the deployment started, by job. */
  failures: Record<string, number>;
  /** Whether every server runs and heartbeats, and the observers need not hold back; else `problems` says why. */
  healthy: boolean;
  problems: string[];
}

/** A running server whose last heartbeat is older than this is silent (observers beat every second by default). */
export const SILENT_AFTER_S = 30;

export async function deploymentStatus(redis: Redis, d: Deployment, sampleMs = 1000): Promise<DeploymentStatus> {
  const ingested0 = Number((await redis.get(INGESTED_KEY)) ?? 0);
  const t0 = Date.now();
  const states = await redis.hgetall(SERVERS_KEY);
  const verify = entryVerifier(d);
  const raw = await redis.xrevrange(HEARTBEAT_STREAM, '+', String(Date.now() - 3_600_000), 'COUNT', 20_000);
  // with observer users, a heartbeat not signed by its node is no sign of life: not used, and one
  // naming a server of ours in the last SILENT_AFTER_S is a problem (older ones may be from before
  // observer users were turned on)
  const ours = new Set(d.servers.map((s) => s.hostname));
  const recent = Date.now() - SILENT_AFTER_S * 1000;
  const beats: Record<string, string>[] = [];
  let forgedBeats = 0;
  for (const [id, f] of raw) {
    const b = decodeHeartbeat(id, f);
    if (!verify?.check(f)) beats.push(b);
    else if (Number(b.atMs) >= recent && ours.has(b.node ?? '')) forgedBeats++;
  }
  const servers = d.servers.map((s): ServerLine => {
    const st = states[s.hostname] ? (JSON.parse(states[s.hostname]!) as ServerStatus) : undefined;
    const mine = beats.filter((b) => b.node === s.hostname);
    const hb = mine[0];
    const line: ServerLine = { hostname: s.hostname, state: st?.state ?? 'unknown', detail: st?.detail || undefined, heartbeatAgeS: hb ? +((Date.now() - Number(hb.atMs)) / 1000).toFixed(1) : null };
    if (!hb) return line;
    const old = mine.find((b) => Number(hb.atMs) - Number(b.atMs) >= RATE_WINDOW_MS && b.pid === hb.pid);
    return {
      ...line,
      records: Number(hb.records), published: Number(hb.published), dropped: Number(hb.dropped),
      drops: hb.drops ? (JSON.parse(hb.drops) as Record<string, number>) : undefined,
      publishPerS: old ? Math.round(((Number(hb.published) - Number(old.published)) * 1000) / (Number(hb.atMs) - Number(old.atMs))) : undefined,
    };
  });
  const entries = await redis.xlen(RECORD_STREAM);
  const loading = Number(((await redis.xpending(RECORD_STREAM, INGEST_GROUP).catch(() => [0])) as [number])[0] ?? 0);
  const failures = await jobFailures(redis);
  // the ingest's rate: its counter over a short wait
  await new Promise((r) => setTimeout(r, Math.max(0, sampleMs - (Date.now() - t0))));
  const outPerS = Math.round(((Number((await redis.get(INGESTED_KEY)) ?? 0) - ingested0) * 1000) / (Date.now() - t0));
  const inPerS = servers.reduce((s, l) => s + (l.publishPerS ?? 0), 0);
  const backlogRecords = entries * RECORDS_PER_ENTRY;
  const problems: string[] = [];
  for (const l of servers)
    if (l.state !== 'running') problems.push(`${l.hostname} is ${l.state}${l.detail ? ` (${l.detail})` : ''}`);
    else if (l.heartbeatAgeS === null || l.heartbeatAgeS > SILENT_AFTER_S) problems.push(`${l.hostname} runs but ${l.heartbeatAgeS === null ? 'has sent no heartbeat in the last hour' : `has been silent for ${l.heartbeatAgeS} s`}`);
  const heldBack = d.redis.max_stream_entries > 0 && entries >= d.redis.max_stream_entries;
  if (heldBack) problems.push('the record stream is at max_stream_entries: observers hold back and spool');
  if (forgedBeats) problems.push(`${forgedBeats} heartbeats in the last ${SILENT_AFTER_S} s were not signed by the server they name: something with access to Redis writes as a server of this deployment`);
  return {
    healthy: problems.length === 0,
    problems,
    servers,
    ingest: {
      streamEntries: entries, loading, backlogRecords, inPerS, outPerS,
      backlogS: outPerS > 0 ? +(backlogRecords / outPerS).toFixed(1) : entries ? null : 0,
      heldBack,
    },
    failures,
  };
}

/** The status as lines for a person. */
export function statusLines(s: DeploymentStatus): string[] {
  const lines = s.servers.map((l) => {
    const drops = Object.entries(l.drops ?? {}).filter(([, n]) => n > 0);
    return (
      `${l.hostname.padEnd(16)} ${l.state.padEnd(11)} heartbeat ${l.heartbeatAgeS === null ? 'none in the last hour' : `${l.heartbeatAgeS} s ago`}` +
      (l.records !== undefined ? `, ${l.records} records, ${l.published} published${l.publishPerS !== undefined ? ` (${l.publishPerS}/s)` : ''}, ${drops.length ? `dropped ${drops.map(([k, n]) => `${k} ${n}`).join(', ')}` : 'nothing dropped'}` : '') +
      (l.detail ? `  (${l.detail})` : '')
    );
  });
  const i = s.ingest;
  lines.push(
    `ingest: ${i.inPerS} records/s in, ${i.outPerS} records/s out; backlog ${i.streamEntries} entries (about ${i.backlogRecords} records` +
      (i.backlogS === null ? ', and nothing is being loaded: is a manager running?)' : i.backlogS > 0 ? `, ${i.backlogS} s of ingest)` : ')') +
      (i.loading ? `, ${i.loading} being loaded` : '') +
      (i.heldBack ? '; the stream is at max_stream_entries: observers hold back and spool' : ''),
  );
  const f = Object.entries(s.failures);
  lines.push(s.healthy ? 'health: ok' : `health: DEGRADED: ${s.problems.join('; ')}`);
  lines.push(`jobs: ${f.length ? f.map(([k, n]) => `${k.replace(/^failed:/, '').replace(/^error:/, 'worker errors ')} ${n}`).join(', ') + ' (failed attempts since the deployment started)' : 'no failure'}`);
  return lines;
}
