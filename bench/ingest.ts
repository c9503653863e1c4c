/**
 * bench/ingest: rows per second from the Redis record stream into MySQL, on the local Redis and
 * MariaDB. The stream is filled first with --rows records in entries of 256, as observers
 * publish them (4 nodes); then the ingest drains it: consumer group reads, LOAD DATA of the
 * wire rows in one transaction per read, acknowledgement after commit. Side by side in the same
 * run, the reference: the same records published as JSON and ingested the usual way (parse,
 * then a multi-row INSERT IGNORE through mysql2). And ours again with TLS to both Redis (a local
 * Redis that speaks TLS only) and MariaDB, certificates verified (local/pki.ts); and ours with
 * every entry signed by its node and checked by the ingest (redis_info observer_users). Rounds
 * interleave the four; medians, JSON and one line. Target: at least 200,000 rows/s.
 *
 * SIGTERM and Ctrl-C stop it after the step in progress; its database and streams, and the
 * servers it started, are removed.
 *
 *   node dist/bench/ingest.js [--rows 400000] [--rounds 3] [--entries 64]
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { checkStop, localServers, median, numberArg, stopOnSignals, stopRequested } from './common.js';
import { startMariaDb, startRedis, startRedisTls, stopRedisTls, redisTlsRunning } from '../local/servers.js';
import { loadTls } from '../conf/tls.js';
import { EntryVerifier, entryKey, observerPassword, signFields } from '../protocol/entry-mac.js';
import { openPool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { Ingest } from '../ingest/ingest.js';
import { ROW_COLUMNS, ROW_FORMAT, encodeRows, flowId } from '../protocol/records.js';
import type { PacketRecord } from '../observer/records.js';

const rows = numberArg('rows', 400_000);
const rounds = numberArg('rounds', 3);
const entries = numberArg('entries', 64);
const BATCH = 256;
const DB = 'latscope_bench';
const NODES = ['bench-n1', 'bench-n2', 'bench-n3', 'bench-n4'];

function record(node: string, seq: number): PacketRecord {
  const t = 1_000_000_000_000n + BigInt(seq) * 10_000n;
  const tx = seq % 2 === 0;
  const stamp = (d: bigint, cpu: number) => ({ tsNs: t + d, cpu, tid: 4000 + (seq % 7) });
  return {
    node,
    observerSeq: seq,
    dir: tx ? 'tx' : 'rx',
    flow: { family: 4, src: '10.231.100.11', sport: 40000 + (seq % 16), dst: '10.231.100.12', dport: 5000 },
    sampleSeq: (seq * 65536) >>> 0,
    streamOffset: (seq * 65536) >>> 0,
    segStart: (seq * 65536 - 1448) >>> 0,
    segEnd: (seq * 65536 + 1448) >>> 0,
    attempt: 0,
    retrans: seq % 97 === 0,
    interval: false,
    complete: true,
    layers: { sock: stamp(0n, 1), tcp: stamp(1400n, 1), ip: stamp(4000n, 1), dev: stamp(5300n, 1) },
    devices: [
      { ifindex: 2, netns: 4026532000, rx: false, tsNs: t + 5300n },
      { ifindex: 7, netns: 4026531840, rx: true, tsNs: t + 6100n },
      { ifindex: 5, netns: 4026531840, rx: false, tsNs: t + 6900n },
    ],
  };
}

/** Fills `stream` with rows records, 256 per entry, in the given format. */
async function fill(redis: Redis, stream: string, json: boolean, sign?: (node: string, fields: string[]) => string[]): Promise<void> {
  await redis.del(stream);
  const perNode = Math.ceil(rows / NODES.length);
  let p = redis.pipeline();
  let queued = 0;
  for (const node of NODES) {
    for (let first = 0; first < perNode; first += BATCH) {
      const recs = Array.from({ length: Math.min(BATCH, perNode - first) }, (_, i) => record(node, first + i));
      const body = json ? JSON.stringify(recs, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : encodeRows(recs);
      const fields = ['node', node, 'first', String(first), 'last', String(first + recs.length - 1), 'n', String(recs.length), 'format', json ? 'json' : ROW_FORMAT, 'rows', body];
      p.xadd(stream, '*', ...(sign ? sign(node, fields) : fields));
      if (++queued % 200 === 0) {
        await p.exec();
        p = redis.pipeline();
      }
    }
  }
  await p.exec();
}

/** The reference ingest: JSON records, parsed, inserted with a multi-row INSERT IGNORE; ack after commit. */
async function referenceIngest(redis: Redis, pool: mysql.Pool, stream: string): Promise<number> {
  await redis.xgroup('CREATE', stream, 'ref', '0');
  const ids = new Map<string, number>();
  const [srv] = (await pool.query('SELECT id, name FROM servers')) as any;
  for (const r of srv) ids.set(r.name, Number(r.id));
  let n = 0;
  const cols = ['server_id', ...ROW_COLUMNS].join(', ');
  for (;;) {
    const res = (await redis.xreadgroup('GROUP', 'ref', 'c', 'COUNT', entries, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
    const list = res?.[0]?.[1] ?? [];
    if (!list.length) break;
    const values: unknown[][] = [];
    for (const [, f] of list) {
      const node = f[f.indexOf('node') + 1]!;
      for (const r of JSON.parse(f[f.indexOf('rows') + 1]!) as any[]) {
        const layer = (l: string) => (r.layers[l] ? [r.layers[l].tsNs, r.layers[l].cpu, r.layers[l].tid] : [null, null, null]);
        values.push([
          ids.get(node), r.observerSeq, r.dir, r.flow.family, r.flow.src, r.flow.sport, r.flow.dst, r.flow.dport, flowId(r.flow), r.sampleSeq, r.streamOffset, r.segStart, r.segEnd,
          r.attempt, (r.retrans ? 1 : 0) | (r.interval ? 2 : 0) | (r.complete ? 4 : 0), ...layer('sock'), ...layer('tcp'), ...layer('ip'), ...layer('dev'),
          r.devices.map((h: any) => `${h.ifindex}:${h.netns}:${h.rx ? 1 : 0}:${h.tsNs}`).join(','),
        ]);
      }
    }
    if (values.length && values[0]!.length !== ROW_COLUMNS.length + 1) throw new Error(`reference ingest: ${values[0]!.length} values for ${ROW_COLUMNS.length + 1} columns: bench/ingest.ts is behind protocol/records.ts ROW_COLUMNS`);
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      for (let i = 0; i < values.length; i += 4096) await conn.query(`INSERT IGNORE INTO packets (${cols}) VALUES ?`, [values.slice(i, i + 4096)]);
      await conn.commit();
    } finally {
      conn.release();
    }
    n += values.length;
    const idl = list.map((e) => e[0]);
    await redis.multi().xack(stream, 'ref', ...idl).xdel(stream, ...idl).exec();
  }
  return n;
}

async function main(): Promise<void> {
  stopOnSignals();
  const servers = localServers();
  const r = await startRedis();
  const m = await startMariaDb();
  const admin = await mysql.createConnection({ host: m.host, port: m.port, user: m.user, password: m.password });
  await admin.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
  await admin.end();
  const pool = openPool({ ...m, database: DB });
  const redis = new Redis({ host: r.host, port: r.port, password: r.password });
  // the same work over TLS: a Redis that speaks only TLS, and the pool's sessions encrypted
  const tlsWasUp = redisTlsRunning();
  const rt = await startRedisTls();
  const tls = loadTls('/', 'bench', { ca_file: rt.pki.caFile });
  const tlsPool = openPool({ ...m, database: DB, tls });
  const tlsRedis = new Redis({ host: rt.host, port: rt.port, password: rt.password, tls });
  const ours: number[] = [];
  const oursTls: number[] = [];
  const oursSigned: number[] = [];
  const ref: number[] = [];
  // observer users: each node's entries signed with its own key, every one checked by the ingest
  const verifier = new EntryVerifier(r.password!);
  const sign = (node: string, fields: string[]) => signFields(entryKey(observerPassword(r.password!, node)), fields);
  try {
    await migrate(pool);
    await pool.query('INSERT IGNORE INTO servers (name) VALUES ?', [NODES.map((n) => [n])]);
    for (let round = 1; round <= rounds; round++) {
      for (const which of ['ours', 'ours-tls', 'ours-signed', 'reference'] as const) {
        checkStop();
        await pool.query('TRUNCATE TABLE packets');
        const stream = `latscope:bench:${which}`;
        const [rc, pc] = which === 'ours-tls' ? [tlsRedis, tlsPool] : [redis, pool];
        await fill(rc, stream, which === 'reference', which === 'ours-signed' ? sign : undefined);
        const t0 = performance.now();
        let n: number;
        if (which !== 'reference') {
          const ingest = new Ingest(rc, pc, { stream, histogramStream: `${stream}:histograms`, group: 'bench', consumer: `${hostname()}-bench`, entriesPerRead: entries, blockMs: 100, retryMs: 100, ...(which === 'ours-signed' ? { verify: verifier } : {}) });
          await ingest.ensureGroup();
          ingest.start();
          while ((await rc.xlen(stream)) > 0 && !stopRequested()) await new Promise((res) => setTimeout(res, 5));
          await ingest.stop();
          n = ingest.counters.rows;
          if (ingest.counters.dbErrors) throw new Error(`ingest: ${ingest.counters.lastError}`);
          if (ingest.counters.forgedEntries) throw new Error(`ingest: ${ingest.counters.forgedEntries} entries refused as not signed by their node`);
        } else {
          n = await referenceIngest(redis, pool, stream);
        }
        const s = (performance.now() - t0) / 1000;
        const [[{ c }]] = (await pool.query('SELECT COUNT(*) AS c FROM packets')) as any;
        if (Number(c) !== n) throw new Error(`${which}: ${n} rows reported, ${c} in the table`);
        (which === 'ours' ? ours : which === 'ours-tls' ? oursTls : which === 'ours-signed' ? oursSigned : ref).push(n / s);
        process.stderr.write(`round ${round} ${which}: ${n} rows in ${s.toFixed(2)} s\n`);
        await rc.del(stream, `${stream}:histograms`);
      }
    }
    const result = {
      bench: 'ingest',
      rows,
      rounds,
      entriesPerRead: entries,
      recordsPerEntry: BATCH,
      oursRowsPerS: Math.round(median(ours)),
      oursTlsRowsPerS: Math.round(median(oursTls)),
      oursSignedRowsPerS: Math.round(median(oursSigned)),
      referenceRowsPerS: Math.round(median(ref)),
      ratio: median(ours) / median(ref),
      tlsRatio: median(oursTls) / median(ours),
      signedRatio: median(oursSigned) / median(ours),
      runs: { ours: ours.map(Math.round), oursTls: oursTls.map(Math.round), oursSigned: oursSigned.map(Math.round), reference: ref.map(Math.round) },
      target: { rowsPerSMin: 200_000 },
    };
    console.log(JSON.stringify(result));
    console.log(
      `ingest: ${result.oursRowsPerS} rows/s from Redis Streams into MariaDB (wire rows, LOAD DATA, ack after commit) vs ${result.referenceRowsPerS} rows/s ` +
        `for JSON + multi-row INSERT (x${result.ratio.toFixed(2)}); with TLS to Redis and MariaDB ${result.oursTlsRowsPerS} rows/s (x${result.tlsRatio.toFixed(2)} of plain); with every entry signed and checked (observer users) ${result.oursSignedRowsPerS} rows/s (x${result.signedRatio.toFixed(2)}); median of ${rounds} rounds of ${rows} rows; target >= 200000 rows/s`,
    );
  } finally {
    const streams = ['ours', 'ours-tls', 'ours-signed', 'reference'].flatMap((w) => [`latscope:bench:${w}`, `latscope:bench:${w}:histograms`]);
    for (const rc of [redis, tlsRedis]) await rc.del(...streams).catch(() => {}); // a stopped run's
    await pool.query(`DROP DATABASE IF EXISTS ${DB}`).catch(() => {});
    await pool.end();
    await tlsPool.end();
    redis.disconnect();
    tlsRedis.disconnect();
    if (!tlsWasUp) await stopRedisTls();
    await servers.stop();
  }
}

main().catch((e) => {
  console.error(`bench ingest: ${(e as Error).message}`);
  process.exitCode = 1;
});
