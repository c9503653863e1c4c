/**
 * Synthetic but realistic collection data for the analyzer's tests and benchmark: servers with
 * their own clocks (offset and drift from the manager's), time-sync rounds, flows between every
 * pair in both directions, and each sample byte's sender and receiver records with plausible
 * layer delays, retransmissions and, on request, a slow link or a slow reader whose extra delay
 * is known. Rows are in the packets table's own format (protocol/records.ts), written with LOAD
 * DATA in ingest batches, exactly as the ingest would have written them.
 */
import { Readable } from 'node:stream';
import type { Pool } from '../db/pool.js';
import { encodeRow, flowId, type Flow, type PacketRecord } from '../protocol/records.js';
import { ROW_COLUMNS, ROW_FORMAT } from '../protocol/records.js';
import { BINARY_FORMAT, encodeBinary } from '../protocol/records-binary.js';
import type { Cluster, Redis } from 'ioredis';
import { recordStream, shardOf } from '../protocol/redis.js';

export interface SyntheticOptions {
  servers: number;
  /** Flows per ordered pair of servers. */
  flowsPerPair: number;
  /** Sample bytes in all (each gives a sender and a receiver record). */
  samples: number;
  /** Manager time of the first sample (ns) and the span the samples cover. */
  startNs: bigint;
  spanNs: number;
  /** Fraction of samples that are retransmitted once. */
  retransRate: number;
  /** Extra wire delay (ns) on the link from server a to server b (indices), for a share of its samples. */
  slowLink?: { from: number; to: number; extraNs: number; share: number };
  /** Extra receiver TCP -> socket delay (ns) on one server, for a share of its samples. */
  slowReader?: { server: number; extraNs: number; share: number };
  /** Each server's clock: server = manager + offsetNs + driftPpb·(t − startNs). */
  clocks?: { offsetNs: bigint; driftPpb: number }[];
  /** Records per ingest batch; senders' and receivers' records go in separate batches, as they come from different observers. */
  batchRecords?: number;
  seed?: number;
  /** Keep every true one-way delay in `truth` (default); false keeps counts only (ten million records need no list). */
  keepTruth?: boolean;
}

export interface SyntheticServer {
  id: number;
  name: string;
  address: string;
}

export interface SyntheticResult {
  servers: SyntheticServer[];
  records: number;
  batches: number;
  /** Per ordered pair "a>b": samples, and the true one-way delays (ns, device to device) of the first transmissions. */
  truth: Map<string, { samples: number; oneWayNs: number[] }>;
}

const SIZE = 65536;

/** One record as an observer would send it: its server (index), side, and row line (protocol/records.ts, no server_id). */
export interface SyntheticRecord {
  server: number;
  dir: 'tx' | 'rx';
  /** Its flow id (protocol/records.ts flowId), which picks its shard. */
  flow: number;
  /** The record, and its row line (made when asked for). */
  packet: PacketRecord;
  readonly line: string;
}

/**
 * The fleet's servers and clock rounds into MySQL, then its records one at a time, in time order
 * (a generator: ten million records need not be in memory at once). `truth` fills as it goes.
 */
export async function syntheticFleet(pool: Pool, o: SyntheticOptions): Promise<{ servers: SyntheticServer[]; truth: SyntheticResult['truth']; records: Generator<SyntheticRecord> }> {
  let seed = o.seed ?? 1;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const servers: SyntheticServer[] = Array.from({ length: o.servers }, (_, i) => ({ id: 0, name: `syn${i + 1}`, address: `10.77.${1 + (i >> 8)}.${(i & 255) + 1}` }));
  await pool.query('INSERT INTO servers (name, address, kind) VALUES ? ON DUPLICATE KEY UPDATE address = VALUES(address)', [servers.map((s) => [s.name, s.address, 'bare-metal'])]);
  const [ids] = (await pool.query('SELECT id, name FROM servers WHERE name IN (?)', [servers.map((s) => s.name)])) as any;
  for (const r of ids as any[]) servers.find((s) => s.name === r.name)!.id = Number(r.id);
  await pool.query('INSERT INTO server_addresses (address, server_id) VALUES ? ON DUPLICATE KEY UPDATE server_id = VALUES(server_id)', [servers.map((s) => [s.address, s.id])]);
  const clocks = o.clocks ?? servers.map((_, i) => ({ offsetNs: BigInt(i) * 1_000_000_000_000n + 123_456n, driftPpb: (i % 3) * 7000 - 7000 }));
  const serverTime = (i: number, t: number): bigint => o.startNs + BigInt(Math.round(t)) + clocks[i]!.offsetNs + BigInt(Math.round((t * clocks[i]!.driftPpb) / 1e9));

  // time-sync rounds every 10 s across the span and beyond it, exact (bound 200 ns)
  const rounds: unknown[][] = [];
  for (let i = 0; i < o.servers; i++)
    for (let k = -1, t = -10e9; t <= o.spanNs + 20e9; k++, t += 10e9)
      rounds.push([servers[i]!.name, k + 2, (o.startNs + BigInt(t)).toString(), 1_700_000_000_000 + Math.round(t / 1e6), (serverTime(i, t) - o.startNs - BigInt(t)).toString(), 200, clocks[i]!.driftPpb, 1, 200, 50, 0, 4000, 4200]);
  for (let i = 0; i < rounds.length; i += 5000)
    await pool.query('INSERT IGNORE INTO clock_offsets (server, round, at_ns, at_unix_ms, offset_ns, bound_ns, drift_ppb, drift_bound_ppb, samples, kept, lost, min_delay_ns, median_delay_ns) VALUES ?', [rounds.slice(i, i + 5000)]);

  const flows: { flow: Flow; id: number; src: number; dst: number; seq: number; offset: number }[] = [];
  for (let a = 0; a < o.servers; a++)
    for (let b = 0; b < o.servers; b++)
      if (a !== b)
        for (let k = 0; k < o.flowsPerPair; k++) {
          const flow: Flow = { family: 4, src: servers[a]!.address, sport: 30000 + k + b * 100, dst: servers[b]!.address, dport: 5000 + (k % 4) };
          flows.push({ flow, id: flowId(flow), src: a, dst: b, seq: Math.floor(rnd() * 2 ** 32), offset: 0 });
        }
  const perServerSeq = servers.map((_, i) => 1_700_000_000_000_000 + i * 1_000_000_000);
  const truth = new Map<string, { samples: number; oneWayNs: number[] }>();
  const record = (server: number, dir: 'tx' | 'rx', f: (typeof flows)[number], sampleSeq: number, attempt: number, retrans: boolean, t: { sock: bigint | null; tcp: bigint; ip: bigint; dev: bigint; last: bigint }): SyntheticRecord => {
    const rx = dir === 'rx';
    const packet: PacketRecord = {
      node: servers[server]!.name, observerSeq: ++perServerSeq[server]!, dir, flow: f.flow, sampleSeq, streamOffset: f.offset >>> 0, segStart: (sampleSeq - 1000) >>> 0, segEnd: (sampleSeq + 448) >>> 0,
      attempt, retrans, interval: false, complete: true,
      layers: { ...(t.sock === null ? {} : { sock: { tsNs: t.sock, cpu: 1, tid: 100 } }), tcp: { tsNs: t.tcp, cpu: 1, tid: 100 }, ip: { tsNs: t.ip, cpu: 0, tid: 0 }, dev: { tsNs: t.dev, cpu: 0, tid: 0 } },
      devices: t.last === t.dev ? [{ ifindex: 2, netns: 4026531840, rx, tsNs: t.dev }] : [{ ifindex: 2, netns: 4026531840, rx, tsNs: t.dev }, { ifindex: 5, netns: 4026531841, rx, tsNs: t.last }],
    };
    return {
      server, dir, flow: f.id, packet,
      get line() {
        return encodeRow(packet);
      },
    };
  };
  function* records(): Generator<SyntheticRecord> {
    for (let n = 0; n < o.samples; n++) {
      const f = flows[Math.floor(rnd() * flows.length)]!;
      const t = (n / o.samples) * o.spanNs; // samples in time order, as observers send them
      f.offset += SIZE;
      const sampleSeq = (f.seq + f.offset - 1) >>> 0;
      const jitter = () => 200 + rnd() ** 4 * 20_000;
      const d = { sockTcp: 1000 + jitter(), tcpIp: 1500 + jitter() / 4, ipDev: 800 + jitter() / 4, hop: 400 + jitter() / 8, wire: 20_000 + jitter(), rxHop: 300 + jitter() / 8, devIp: 2000 + jitter() / 2, ipTcp: 600 + jitter() / 4, tcpSock: 15_000 + jitter() * 2 };
      if (o.slowLink && f.src === o.slowLink.from && f.dst === o.slowLink.to && rnd() < o.slowLink.share) d.wire += o.slowLink.extraNs;
      if (o.slowReader && f.dst === o.slowReader.server && rnd() < o.slowReader.share) d.tcpSock += o.slowReader.extraNs;
      const hopped = f.src % 2 === 1;
      const tx = { sock: t, tcp: t + d.sockTcp, ip: t + d.sockTcp + d.tcpIp, dev: t + d.sockTcp + d.tcpIp + d.ipDev };
      const txLast = tx.dev + (hopped ? d.hop : 0);
      const rxDev = txLast + d.wire;
      const rxLast = rxDev + (f.dst % 2 === 1 ? d.rxHop : 0);
      const rx = { dev: rxDev, ip: rxLast + d.devIp, tcp: rxLast + d.devIp + d.ipTcp, sock: rxLast + d.devIp + d.ipTcp + d.tcpSock };
      const key = `${f.src}>${f.dst}`;
      const tr = truth.get(key) ?? { samples: 0, oneWayNs: [] };
      tr.samples++;
      if (o.keepTruth !== false) tr.oneWayNs.push(rxDev - tx.dev);
      truth.set(key, tr);
      const S = (i: number, x: number) => serverTime(i, x);
      yield record(f.src, 'tx', f, sampleSeq, 0, false, { sock: S(f.src, tx.sock), tcp: S(f.src, tx.tcp), ip: S(f.src, tx.ip), dev: S(f.src, tx.dev), last: S(f.src, txLast) });
      const lost = rnd() < o.retransRate;
      if (lost) {
        // the first transmission is lost on the wire; the retransmission 200 ms later arrives
        const r = tx.dev + 200e6;
        yield record(f.src, 'tx', f, sampleSeq, 1, true, { sock: null, tcp: S(f.src, r - 2300), ip: S(f.src, r - 800), dev: S(f.src, r), last: S(f.src, r + (hopped ? d.hop : 0)) });
        const a = r + (hopped ? d.hop : 0) + d.wire;
        yield record(f.dst, 'rx', f, sampleSeq, 0, true, { dev: S(f.dst, a), last: S(f.dst, a + (rxLast - rxDev)), ip: S(f.dst, a + (rx.ip - rxDev)), tcp: S(f.dst, a + (rx.tcp - rxDev)), sock: S(f.dst, a + (rx.sock - rxDev)) });
      } else yield record(f.dst, 'rx', f, sampleSeq, 0, false, { dev: S(f.dst, rx.dev), last: S(f.dst, rxLast), ip: S(f.dst, rx.ip), tcp: S(f.dst, rx.tcp), sock: S(f.dst, rx.sock) });
    }
  }
  return { servers, truth, records: records() };
}

/** The synthetic records into packets, in ingest batches (senders' and receivers' records apart), as the ingest would have written them. */
export async function writeSynthetic(pool: Pool, o: SyntheticOptions): Promise<SyntheticResult> {
  const fleet = await syntheticFleet(pool, o);
  const batchRecords = o.batchRecords ?? 16384;
  const [[{ b: firstBatch }]] = (await pool.query('SELECT COALESCE(MAX(id), 0) + 1 AS b FROM ingest_batches')) as any;
  let batch = Number(firstBatch), records = 0, batches = 0;
  const sides = { tx: [] as string[], rx: [] as string[] };
  const flush = async (lines: string[]) => {
    if (!lines.length) return;
    const text = lines.join('').replace(/\t@batch\n/g, `\t${batch}\n`);
    await pool.query('INSERT INTO ingest_batches (id, records) VALUES (?, ?)', [batch, lines.length]);
    lines.length = 0;
    await pool.query({
      sql: `LOAD DATA LOCAL INFILE 'synthetic' INTO TABLE packets CHARACTER SET ascii FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (server_id, ${ROW_COLUMNS.join(', ')}, batch_id)`,
      infileStreamFactory: () => Readable.from([Buffer.from(text, 'latin1')]),
    } as any);
    batches++;
    batch++;
  };
  for (const r of fleet.records) {
    sides[r.dir].push(`${fleet.servers[r.server]!.id}\t${r.line}\t@batch\n`);
    records++;
    for (const side of [sides.tx, sides.rx]) if (side.length >= batchRecords) await flush(side);
  }
  await flush(sides.tx);
  await flush(sides.rx);
  return { servers: fleet.servers, records, batches, truth: fleet.truth };
}

/**
 * Up to `max` synthetic records into a Redis records stream, as observers publish them: an entry
 * per server holding up to entryRecords records, in the binary format (protocol/records-binary.ts
 * rb1, as observers send them) or the text one (protocol/records.ts rows2). Returns how many went.
 */
export async function publishSynthetic(
  redis: Redis | Cluster, stream: string, servers: SyntheticServer[], records: Iterator<SyntheticRecord>, max: number, entryRecords = 2048, shards = 1, format: typeof BINARY_FORMAT | typeof ROW_FORMAT = BINARY_FORMAT,
): Promise<number> {
  // a buffer per server and shard (index server * shards + shard), as an observer keeps them
  const per = Array.from({ length: servers.length * shards }, () => [] as SyntheticRecord[]);
  let n = 0;
  // a pipeline per shard: on a Redis Cluster, one pipeline's keys must share a slot
  let pipes = Array.from({ length: shards }, () => redis.pipeline());
  let queued = 0;
  const flush = (i: number) => {
    const lines = per[i]!;
    if (!lines.length) return;
    per[i] = [];
    const k = i % shards;
    const node = servers[Math.floor(i / shards)]!.name;
    if (format === BINARY_FORMAT) pipes[k]!.xadd(recordStream(k, shards, stream), '*', 'format', BINARY_FORMAT, 'node', node, 'n', lines.length, 'records', encodeBinary(lines.map((r) => r.packet)));
    else pipes[k]!.xadd(recordStream(k, shards, stream), '*', 'format', ROW_FORMAT, 'node', node, 'n', lines.length, 'rows', lines.map((r) => r.line).join('\n') + '\n');
    queued++;
  };
  const send = async () => {
    for (const [k, res] of (await Promise.all(pipes.map((p) => p.exec()))).entries())
      for (const [err] of res ?? []) if (err) throw new Error(`publishing to shard ${k}: ${err.message}`);
    pipes = Array.from({ length: shards }, () => redis.pipeline());
    queued = 0;
  };
  while (n < max) {
    const next = records.next();
    if (next.done) break;
    const r = next.value;
    const i = r.server * shards + shardOf(r.flow, shards);
    per[i]!.push(r);
    n++;
    if (per[i]!.length >= entryRecords) flush(i);
    if (queued >= 16) await send();
  }
  for (let i = 0; i < per.length; i++) flush(i);
  await send();
  return n;
}
