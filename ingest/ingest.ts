/**
 * Ingest: the record stream in Redis into MySQL. A consumer group shares the stream between
 * every manager worker; each batch of entries goes into `packets` with one LOAD DATA (the rows
 * arrive in the table's own format, see protocol/records.ts) inside a transaction, and the
 * entries are acknowledged and deleted only after the commit. Each load is an ingest batch (a
 * row of ingest_batches, committed with its records): the analyzer takes the batches it has not
 * seen. A crash after the commit and before the acknowledgement delivers the entries again;
 * LOAD DATA ... IGNORE skips the rows already there (primary key server_id + observer_seq), so a
 * retry never duplicates or loses a row.
 *
 * Two lanes (two consumers, two connections) load at once: MariaDB turns text into rows on one
 * core per statement, so one lane tops out near 160,000 rows/s on the 2-core test machine and
 * two reach about 250,000. Entries of a consumer that died stay pending; `reclaim` (a BullMQ
 * repeatable job, ingest/jobs.ts) takes over those idle for longer than a limit. While MySQL is
 * away the loop backs off and retries its own pending entries first; nothing is acknowledged
 * that is not committed.
 */
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Pool, PoolConnection } from 'mysql2/promise';
import { inTransaction } from '../db/pool.js';
import { ensureServers } from '../db/servers.js';
import { MESH_STREAM, BAD_RECORD_MAXLEN, BAD_RECORD_STREAM, entryFields, INGESTED_KEY, HISTOGRAM_STREAM, INGEST_GROUP, RECORD_STREAM } from '../protocol/redis.js';
import { HIST_COLUMNS, HIST_FORMAT, MAX_HIST_BODY, validHistogramRows } from '../protocol/histograms.js';
import { MESH_MANAGER, parseMeshBatch, type MeshBatch, type MeshEdgeRow } from '../protocol/mesh.js';
import { HOST_STREAM, parseHostBatch, type HostBatch, type HostEventRow, type HostStatRow } from '../protocol/host.js';
import { encodeRows, ROW_COLUMNS, ROW_FORMAT, validRows } from '../protocol/records.js';
import { BINARY_FORMAT, decodeBinary } from '../protocol/records-binary.js';
import type { EntryVerifier } from '../protocol/entry-mac.js';

export interface IngestOptions {
  /** The record stream (default latscope:records). */
  stream?: string;
  /** The histogram snapshot stream (default latscope:histograms). */
  histogramStream?: string;
  /** The host-jitter stream (default latscope:host). */
  hostStream?: string;
  /** The probe mesh's stream (default latscope:mesh). */
  meshStream?: string;
  group?: string;
  /** This worker's name in the group (unique per worker process); lane k consumes as NAME/k. */
  consumer: string;
  /** Reads and loads in flight at once, each on its own Redis and MySQL connection. */
  lanes?: number;
  /** Stream entries per read (each holds up to the observer's batch of records). */
  entriesPerRead: number;
  /** Milliseconds a read waits for new entries. */
  blockMs: number;
  /** Milliseconds to wait after a database error before retrying, doubled up to 10 s. */
  retryMs: number;
  /** Load the records stream into packets (the batch analysis); false when the stream stage reads it (analyzer/stream/stage.ts). */
  records?: boolean;
  /** With observer users: every entry must be signed by the node it names (else set aside, counted in forgedEntries). */
  verify?: EntryVerifier;
}

export interface IngestCounters {
  entries: number;
  rows: number;
  /** Histogram bucket rows (layer_histograms). */
  histogramRows: number;
  /** Host-module figures and outliers (host_stats, host_events). */
  hostRows: number;
  /** Probe mesh edges (mesh_edges). */
  meshRows: number;
  /** Rows already in MySQL when they came again (redelivery after a crash or an error). */
  duplicates: number;
  dbErrors: number;
  /** Entries that are not well-formed record batches: acknowledged, counted, copied to BAD_RECORD_STREAM, kept out of MySQL. */
  badEntries: number;
  /** Entries not signed by the node they name (observer users): acknowledged, counted, set aside in BAD_RECORD_STREAM. */
  forgedEntries: number;
  reclaimed: number;
  /** Consumer groups created again after the stream vanished (deleted, or Redis lost its data). */
  groupsRecreated: number;
  lastError: string;
}

/** An entry as the lanes read it: every field text, but a binary records body (protocol/records-binary.ts) a Buffer. */
type Entry = [id: string, fields: (string | Buffer)[]];

/** Entries read as Buffers made text, all but the binary records body (its bytes, as the MAC covers them). */
function textFields(entries: [Buffer, Buffer[] | null][]): Entry[] {
  const out: Entry[] = [];
  for (const [id, f] of entries) {
    if (!f) continue; // a deleted entry comes back as [id, null]
    const fields: (string | Buffer)[] = [];
    for (let i = 0; i < f.length; i += 2) {
      const k = f[i]!.toString();
      fields.push(k, k === 'records' && f[i + 1] ? f[i + 1]! : (f[i + 1]?.toString() ?? ''));
    }
    out.push([id.toString('latin1'), fields]);
  }
  return out;
}

/**
 * The rows of a records entry in the text format the packets table loads: as they came (rows2),
 * or made from a binary entry (rb1); undefined for any other format or a binary entry that does
 * not read (then set aside).
 */
function rowsOf(m: Map<string, string | Buffer>, node: string): string | undefined {
  const format = text(m.get('format'));
  if (format === ROW_FORMAT) return text(m.get('rows'));
  const b = m.get('records');
  if (format !== BINARY_FORMAT || !Buffer.isBuffer(b)) return undefined;
  try {
    return encodeRows(decodeBinary(node, b));
  } catch {
    return undefined;
  }
}

/** The fields of an entry as a map; a binary body stays a Buffer. */
function fieldsOf(fields: readonly (string | Buffer)[]): Map<string, string | Buffer> {
  const m = new Map<string, string | Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), fields[i + 1]!);
  return m;
}
const text = (v: string | Buffer | undefined): string => (v === undefined ? '' : typeof v === 'string' ? v : v.toString());

const loadSql = (table: string, columns: readonly string[]) => `LOAD DATA LOCAL INFILE 'latscope-rows' IGNORE INTO TABLE ${table}
  CHARACTER SET ascii FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${columns.join(', ')})`;
const LOAD_PACKETS = loadSql('packets', ['server_id', ...ROW_COLUMNS]) + ' SET batch_id = ?';
const LOAD_HISTOGRAMS = loadSql('layer_histograms', ['server_id', '@at_ms', ...HIST_COLUMNS]) + ' SET taken_at = FROM_UNIXTIME(@at_ms / 1000)';

export class Ingest {
  readonly counters: IngestCounters = { entries: 0, rows: 0, histogramRows: 0, hostRows: 0, meshRows: 0, duplicates: 0, dbErrors: 0, badEntries: 0, forgedEntries: 0, reclaimed: 0, groupsRecreated: 0, lastError: '' };
  private readonly serverIds = new Map<string, number>();
  private stopping = false;
  private running?: Promise<unknown>;
  private readonly o: Required<Omit<IngestOptions, 'verify'>> & { verify?: EntryVerifier };

  constructor(
    private readonly redis: Redis,
    private readonly pool: Pool,
    o: IngestOptions,
  ) {
    this.o = { stream: RECORD_STREAM, histogramStream: HISTOGRAM_STREAM, hostStream: HOST_STREAM, meshStream: MESH_STREAM, group: INGEST_GROUP, lanes: 2, records: true, ...o };
  }

  /** Creates the consumer group on both streams (from their start) unless it exists. */
  async ensureGroup(): Promise<void> {
    for (const stream of this.streams())
      try {
        await this.redis.xgroup('CREATE', stream, this.o.group, '0', 'MKSTREAM');
      } catch (e) {
        if (!/BUSYGROUP/.test((e as Error).message)) throw e;
      }
  }

  /** Runs the consume loops until stop(). */
  start(): void {
    this.stopping = false;
    this.running ??= Promise.all(
      Array.from({ length: this.o.lanes }, async (_, k) => {
        const conn = this.redis.duplicate(); // a blocking read holds its connection
        try {
          await this.loop(conn, `${this.o.consumer}/${k}`);
        } finally {
          conn.disconnect();
        }
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
  }

  private async loop(redis: Redis, consumer: string): Promise<void> {
    let backlog = true; // first our own pending entries (a restart, a database error), then new ones
    let wait = this.o.retryMs;
    while (!this.stopping) {
      try {
        const got = await this.read(redis, consumer, backlog ? '0' : '>');
        if (backlog && got.every(([, e]) => e.length === 0)) {
          backlog = false;
          continue;
        }
        for (const [stream, entries] of got) if (entries.length) await this.handle(stream, entries);
        wait = this.o.retryMs;
      } catch (e) {
        this.counters.dbErrors++;
        this.counters.lastError = (e as Error).message;
        // the stream was deleted or Redis lost its data: the group comes back, counted, and reading goes on
        if (/NOGROUP/.test(this.counters.lastError)) await this.ensureGroup().then(() => this.counters.groupsRecreated++, () => {});
        backlog = true;
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 10_000);
      }
    }
  }

  private async read(redis: Redis, consumer: string, from: '0' | '>'): Promise<[string, Entry[]][]> {
    const args = ['GROUP', this.o.group, consumer, 'COUNT', this.o.entriesPerRead] as const;
    const streams = this.streams();
    // read as Buffers: a binary records entry comes through whole (strings would be decoded as UTF-8)
    const res = (await redis.callBuffer('XREADGROUP', [...args, ...(from === '>' ? ['BLOCK', this.o.blockMs] : []), 'STREAMS', ...streams, ...streams.map(() => from)])) as [Buffer, [Buffer, Buffer[] | null][]][] | null;
    return (res ?? []).map(([stream, entries]) => [stream.toString(), textFields(entries)]);
  }

  /**
   * Takes over entries another consumer left pending for more than minIdleMs (it died) and
   * ingests them. Returns how many it took.
   */
  async reclaim(minIdleMs: number): Promise<number> {
    let n = 0;
    for (const stream of this.streams()) {
      let cursor = '0-0';
      do {
        const [next, entries] = (await this.redis.callBuffer('XAUTOCLAIM', [stream, this.o.group, `${this.o.consumer}/reclaim`, minIdleMs, cursor, 'COUNT', this.o.entriesPerRead])) as [Buffer, [Buffer, Buffer[] | null][]];
        const live = textFields(entries);
        if (live.length) await this.handle(stream, live);
        n += live.length;
        cursor = next.toString();
      } while (cursor !== '0-0');
    }
    this.counters.reclaimed += n;
    return n;
  }

  private streams(): string[] {
    const others = [this.o.histogramStream, this.o.hostStream, this.o.meshStream];
    return this.o.records ? [this.o.stream, ...others] : others;
  }

  private async handle(stream: string, entries: Entry[]): Promise<void> {
    const signed = await this.signedOnly(stream, entries);
    if (!signed.length) return;
    if (stream === this.o.meshStream) return this.ingestMesh(signed);
    return stream === this.o.stream ? this.ingest(signed) : stream === this.o.histogramStream ? this.ingestHistograms(signed) : this.ingestHost(signed);
  }

  /**
   * With observer users, before anything else: entries not signed by the node they name are set
   * aside, counted, acknowledged and deleted; the rest go on.
   */
  private async signedOnly(stream: string, entries: Entry[]): Promise<Entry[]> {
    if (!this.o.verify) return entries;
    const good: Entry[] = [];
    const forged: [string, string, (string | Buffer)[]][] = [];
    for (const e of entries) {
      const why = this.o.verify.check(e[1]);
      if (why) forged.push([e[0], why, e[1]]);
      else good.push(e);
    }
    if (forged.length) {
      const lane = stream === this.o.stream ? 'records' : stream === this.o.histogramStream ? 'histograms' : stream === this.o.meshStream ? 'mesh' : 'host';
      const tx = this.redis.multi();
      for (const [, why, f] of forged) tx.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', 'lane', lane, 'refused', `not signed by its node: ${why}`, ...(f.reduce((n, x) => n + x.length, 0) > 1 << 20 ? [] : f));
      const ids = forged.map(([id]) => id);
      await tx.xack(stream, this.o.group, ...ids).xdel(stream, ...ids).exec();
      this.counters.forgedEntries += forged.length;
      this.counters.entries += forged.length;
    }
    return good;
  }

  /** Loads host-module snapshots and outliers (host_stats, host_events), then acknowledges and deletes them. */
  async ingestHost(entries: Entry[]): Promise<void> {
    const stats: unknown[][] = [];
    const events: unknown[][] = [];
    let bad = 0;
    const batches: { node: string; b: HostBatch; stats: HostStatRow[]; events: HostEventRow[] }[] = [];
    const setAside: (string | Buffer)[][] = [];
    for (const [, f] of entries) {
      // checked in full first: an entry that would throw later would be re-read forever and stop the lane
      const parsed = parseHostBatch(entryFields(f as string[]));
      if ('refused' in parsed) {
        bad++;
        setAside.push(parsed.refused.startsWith('larger') ? ['lane', 'host', 'refused', parsed.refused] : ['lane', 'host', 'refused', parsed.refused, ...f]);
        continue;
      }
      batches.push({ node: parsed.batch.node, b: parsed.batch, stats: parsed.stats, events: parsed.events });
    }
    if (batches.length) {
      const ids = await this.ids([...new Set(batches.map((x) => x.node))]);
      for (const { node, b, stats: st, events: ev } of batches) {
        const sid = ids.get(node)!, at = Number(b.at), mono = BigInt(b.monoNs);
        for (const r of st) stats.push([sid, at / 1000, Number(b.since) / 1000, r.module, String(r.metric).slice(0, 48), String(r.key).slice(0, 96), r.count, r.sumNs, r.maxNs, r.p50Ns, r.p99Ns, r.p99999Ns, r.errors]);
        for (const e of ev) {
          const ts = BigInt(e.tsNs);
          events.push([sid, e.tsNs, e.kind, e.cpu, e.pid, e.tgid, String(e.comm).slice(0, 16), e.delayNs, e.otherPid, e.otherComm === null ? null : String(e.otherComm).slice(0, 16), e.detail === null ? null : String(e.detail).slice(0, 64), at - Number((mono - ts) / 1_000_000n)]);
        }
      }
      await inTransaction(this.pool, async (conn) => {
        for (let i = 0; i < stats.length; i += 1000)
          await conn.query('INSERT IGNORE INTO host_stats (server_id, taken_at, since_at, module, metric, k, count, sum_ns, max_ns, p50_ns, p99_ns, p99999_ns, errors) VALUES ' + stats.slice(i, i + 1000).map(() => '(?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', '), stats.slice(i, i + 1000).flat());
        for (let i = 0; i < events.length; i += 1000)
          await conn.query('INSERT IGNORE INTO host_events (server_id, ts_ns, kind, cpu, pid, tgid, comm, delay_ns, other_pid, other_comm, detail, at_unix_ms) VALUES ?', [events.slice(i, i + 1000)]);
      });
      this.counters.hostRows += stats.length + events.length;
    }
    this.counters.badEntries += bad;
    this.counters.entries += entries.length;
    const idl = entries.map((e) => e[0]);
    const tx = this.redis.multi();
    for (const f of setAside) tx.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', ...f);
    await tx.xack(this.o.hostStream, this.o.group, ...idl).xdel(this.o.hostStream, ...idl).exec();
  }

  /** Loads probe mesh rounds (mesh_edges), then acknowledges and deletes them; a malformed entry is set aside and counted. */
  async ingestMesh(entries: Entry[]): Promise<void> {
    const rounds: { batch: MeshBatch; edges: MeshEdgeRow[] }[] = [];
    const setAside: (string | Buffer)[][] = [];
    for (const [, f] of entries) {
      const parsed = parseMeshBatch(entryFields(f as string[]));
      if ('refused' in parsed) setAside.push(parsed.refused.startsWith('larger') ? ['lane', 'mesh', 'refused', parsed.refused] : ['lane', 'mesh', 'refused', parsed.refused, ...f]);
      else rounds.push(parsed);
    }
    const rows: unknown[][] = [];
    if (rounds.length) {
      // the manager as a peer (an anchor probing it) is server 0
      const ids = await this.ids([...new Set(rounds.flatMap((r) => [r.batch.node, ...r.edges.map((e) => e.peer).filter((p) => p !== MESH_MANAGER)]))]);
      for (const { batch: b, edges } of rounds)
        for (const e of edges)
          rows.push([b.epoch, ids.get(b.node)!, e.peer === MESH_MANAGER ? 0 : ids.get(e.peer)!, b.intervalMs, b.at, e.atUnixMs ?? null, e.sent, e.lost, e.offsetNs ?? null, e.boundNs ?? null, e.atNs ?? null, e.rttMinNs ?? null, e.rttP50Ns ?? null, e.fwdMinNs ?? null, e.fwdP50Ns ?? null, e.bwdMinNs ?? null, e.bwdP50Ns ?? null]);
      // a round read again (a restart before the acknowledgement) changes nothing
      for (let i = 0; i < rows.length; i += 1000)
        await this.pool.query('INSERT IGNORE INTO mesh_edges (epoch, server_id, peer_id, interval_ms, at_unix_ms, edge_unix_ms, sent, lost, offset_ns, bound_ns, at_ns, rtt_min_ns, rtt_p50_ns, fwd_min_ns, fwd_p50_ns, bwd_min_ns, bwd_p50_ns) VALUES ?', [rows.slice(i, i + 1000)]);
      this.counters.meshRows += rows.length;
    }
    this.counters.badEntries += setAside.length;
    this.counters.entries += entries.length;
    const idl = entries.map((e) => e[0]);
    const tx = this.redis.multi();
    for (const f of setAside) tx.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', ...f);
    await tx.xack(this.o.meshStream, this.o.group, ...idl).xdel(this.o.meshStream, ...idl).exec();
  }

  /** Loads the entries' rows in one transaction, then acknowledges and deletes the entries. */
  async ingest(entries: Entry[]): Promise<void> {
    const byNode = new Map<string, string[]>();
    const bad: (string | Buffer)[][] = [];
    let rows = 0;
    for (const [, f] of entries) {
      const m = fieldsOf(f);
      const node = text(m.get('node')), n = Number(text(m.get('n')));
      const body = rowsOf(m, node);
      if (body === undefined || !/^[\w.-]{1,64}$/.test(node) || !validRows(body, n)) {
        bad.push(f);
        continue;
      }
      const list = byNode.get(node) ?? [];
      list.push(body);
      byNode.set(node, list);
      rows += n;
    }
    if (byNode.size) {
      const ids = await this.ids([...byNode.keys()]);
      // each line gets its server id in front: the only change between the wire and the table
      const text = [...byNode].map(([node, bodies]) => bodies.join('').replace(/^(?=.)/gm, `${ids.get(node)}\t`)).join('');
      // the rows and their batch commit together: the analyzer takes what is new by batch
      const loaded = await inTransaction(this.pool, async (conn) => {
        const [b] = (await conn.query('INSERT INTO ingest_batches () VALUES ()')) as any;
        const n = await load(conn, LOAD_PACKETS, text, [b.insertId]);
        await conn.query('UPDATE ingest_batches SET records = ? WHERE id = ?', [n, b.insertId]);
        return n;
      });
      this.counters.rows += loaded;
      this.counters.duplicates += rows - loaded;
    }
    this.counters.badEntries += bad.length;
    this.counters.entries += entries.length;
    const ids = entries.map((e) => e[0]);
    const tx = this.redis.multi();
    // kept aside (the newest, capped) for a person to look at; counted either way
    for (const f of bad) tx.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', ...f);
    await tx.xack(this.o.stream, this.o.group, ...ids).xdel(this.o.stream, ...ids).incrby(INGESTED_KEY, rows).exec();
  }

  /** Loads histogram snapshots into layer_histograms, then acknowledges and deletes them. */
  async ingestHistograms(entries: Entry[]): Promise<void> {
    const parsed = entries.map(([, f]) => entryFields(f as string[]));
    // checked whole before anything is loaded: a row that is not exactly an observer's (a U+010A
    // that latin1 would make a line break, with a server chosen by the writer) refuses its entry
    const good: Map<string, string>[] = [];
    const setAside: (string | Buffer)[][] = [];
    for (const [i, m] of parsed.entries()) {
      if (m.get('format') === HIST_FORMAT && /^[\w.-]{1,64}$/.test(m.get('node') ?? '') && /^\d{1,15}$/.test(m.get('at') ?? '') && validHistogramRows(m.get('rows') ?? '')) good.push(m);
      else setAside.push((m.get('rows') ?? '').length > MAX_HIST_BODY ? ['lane', 'histograms', 'refused', 'larger than the snapshot cap'] : ['lane', 'histograms', ...entries[i]![1]]);
    }
    this.counters.badEntries += setAside.length;
    if (good.length) {
      const ids = await this.ids([...new Set(good.map((m) => m.get('node')!))]);
      const text = good.map((m) => m.get('rows')!.replace(/^(?=.)/gm, `${ids.get(m.get('node')!)}\t${m.get('at')}\t`)).join('');
      this.counters.histogramRows += await inTransaction(this.pool, (conn) => load(conn, LOAD_HISTOGRAMS, text));
    }
    this.counters.entries += entries.length;
    const idl = entries.map((e) => e[0]);
    const tx = this.redis.multi();
    for (const f of setAside) tx.xadd(BAD_RECORD_STREAM, 'MAXLEN', '~', BAD_RECORD_MAXLEN, '*', ...f);
    await tx.xack(this.o.histogramStream, this.o.group, ...idl).xdel(this.o.histogramStream, ...idl).exec();
  }

  /** servers.id of each node, adding nodes the manager did not provision. */
  private async ids(nodes: string[]): Promise<Map<string, number>> {
    const missing = nodes.filter((n) => !this.serverIds.has(n));
    if (missing.length) for (const [name, id] of await ensureServers(this.pool, missing)) this.serverIds.set(name, id);
    return this.serverIds;
  }

  /** Entries in the stream not yet delivered to the group, and delivered but not acknowledged. */
  async lag(): Promise<{ pending: number; undelivered: number }> {
    const pending = Number(((await this.redis.xpending(this.o.stream, this.o.group)) as [number])[0] ?? 0);
    const groups = (await this.redis.xinfo('GROUPS', this.o.stream)) as unknown[][];
    let lagN = 0;
    for (const g of groups) {
      const m = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) m.set(String(g[i]), g[i + 1]);
      if (m.get('name') === this.o.group) lagN = Number(m.get('lag') ?? 0);
    }
    return { pending, undelivered: lagN };
  }
}

/** LOAD DATA of `text` on conn; returns the rows inserted (duplicates skipped). */
async function load(conn: PoolConnection, sql: string, text: string, values: unknown[] = []): Promise<number> {
  const [res] = (await conn.query({ sql, values, infileStreamFactory: () => Readable.from([Buffer.from(text, 'latin1')]) } as any)) as any;
  return Number(res.affectedRows);
}
