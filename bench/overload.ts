/**
 * bench/overload: two observers record every segment of a bulk transfer between two test hosts
 * while nothing consumes the record stream, for --seconds. Measured against the documented
 * bounds, side by side: each observer's peak resident memory (kernel VmHWM) and Redis's, the
 * time a stop under full load takes (SIGTERM to exit) against limits.stopMs, and the counts:
 * records produced, stored in MySQL once the ingest starts (after each observer started again
 * and sent its disk spool), and dropped by reason, with produced − stored = dropped records.
 * Real parts: the observer command as provisioning starts it (its heap bound), the project's
 * Redis (maxmemory, noeviction) and MariaDB, the kernel's TCP over veth.
 *
 *   node dist/bench/overload.js [--seconds 60] [--size 1000]
 *
 * Uses the local Redis's latscope:records stream (emptied first) and its own database.
 * SIGTERM and Ctrl-C stop it; its observers, testbed, database and the servers it started are removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { checkStop, localServers, numberArg, onStop, stopOnSignals } from './common.js';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { startRedis, startMariaDb, REDIS_MAXMEMORY } from '../local/servers.js';
import { writeTestbedConf } from '../local/conf.js';
import { openPool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { Ingest } from '../ingest/ingest.js';
import { INGEST_GROUP, RECORD_STREAM, HISTOGRAM_STREAM } from '../protocol/redis.js';
import { OBSERVER_HEAP_MB, OBSERVER_LIMITS } from '../observer/limits.js';
import { projectRoot, workDir } from '../lib/paths.js';

const seconds = numberArg('seconds', 60);
const size = numberArg('size', 1000);
const DB = 'latscope_bench_overload';
const PORT = 9100;
/** The resident memory an observer stays under (README: bounded memory). */
const OBSERVER_RSS_BOUND_MB = 256;

const cli = join(projectRoot, 'dist', 'cli.js');
const traffic = join(projectRoot, 'dist', 'local', 'traffic.js');

interface ObserverSummary { node: string; records: number; published: number; spooled: number; evicted: number; drops: Record<string, number>; heldBack: number; redisFull: number; stopMs: number }

const status = (pid: number, key: string): number => {
  try {
    return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
};

function startObserver(tb: Testbed, i: number, conf: string): { child: ChildProcess; running: () => boolean; done: Promise<ObserverSummary> } {
  const h = tb.hosts[i]!;
  // as provisioning starts it: node with the observer's heap bound
  const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, `--max-old-space-size=${OBSERVER_HEAP_MB}`, cli, 'observer', '--conf', conf, '--node', `${tb.id}-${h.name}`,
    '--interfaces', h.iface, '--metrics-port', '0', '--spool-dir', workDir('spool', `${tb.id}-${h.name}`), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<ObserverSummary>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`observer ${h.name} exited ${code ?? signal}: ${out}`));
      else resolve(JSON.parse(line) as ObserverSummary);
    }),
  );
  done.catch(() => {}); // a run cut short does not wait for it: its failure is not an unhandled one
  return { child, running: () => out.includes(': running'), done };
}

async function waitFor(what: string, ms: number, ok: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    checkStop();
    if (Date.now() > end) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const spoolBytes = (dir: string) => (existsSync(dir) ? readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0) : 0);

async function main(): Promise<void> {
  stopOnSignals();
  const servers = localServers();
  const tb = await testbedUp({ id: 'ovl', hosts: 2 });
  const redisInfo = await startRedis([tb.managerAddress]);
  const db = await startMariaDb();
  const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const pool = openPool({ ...db, database: DB });
  const kids: ChildProcess[] = [];
  // SIGTERM or Ctrl-C: the traffic and the observers stop, and the next step ends the run (the finally removes the rest)
  onStop(() => kids.forEach((k) => k.exitCode === null && k.kill('SIGTERM')));
  // cleared in finally too: a failed run must not be kept alive by it
  let sampler: NodeJS.Timeout | undefined;
  let ingest: Ingest | undefined;
  try {
    await migrate(pool);
    await redis.del(RECORD_STREAM, HISTOGRAM_STREAM);
    for (const h of tb.hosts) rmSync(workDir('spool', `${tb.id}-${h.name}`), { recursive: true, force: true });
    const conf = writeTestbedConf(join(tb.dir, 'conf'), tb, redisInfo, db, { ports: [PORT], size, interval: 0, database: DB });
    const redisPid = Number(readFileSync(join(workDir('redis'), 'redis.pid'), 'utf8'));
    writeFileSync(`/proc/${redisPid}/clear_refs`, '5'); // its peak resident memory counts from now

    // 1. overload: every segment recorded, nothing consuming
    const obs = tb.hosts.map((_, i) => startObserver(tb, i, conf));
    kids.push(...obs.map((o) => o.child));
    await waitFor('observers running', 60_000, () => obs.every((o) => o.running()));
    process.stderr.write(`overload: observers running; every segment of ${seconds} s of bulk traffic, the stream unread\n`);
    const sink = spawn('ip', ['netns', 'exec', tb.hosts[1]!.netns, process.execPath, traffic, 'tcp-sink', String(PORT), '1'], { stdio: 'ignore' });
    kids.push(sink);
    await new Promise((r) => setTimeout(r, 500));
    const flood = spawn('ip', ['netns', 'exec', tb.hosts[0]!.netns, process.execPath, traffic, 'tcp-flood', tb.hosts[1]!.address, String(PORT), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    kids.push(flood);
    let floodOut = '';
    flood.stdout!.on('data', (d: Buffer) => (floodOut += d.toString()));
    const t0 = Date.now();
    let redisUsedPeak = 0, streamPeak = 0;
    sampler = setInterval(() => {
      void redis.info('memory').then((m) => (redisUsedPeak = Math.max(redisUsedPeak, Number(/used_memory:(\d+)/.exec(m)?.[1] ?? 0) / 1048576)));
      void redis.xlen(RECORD_STREAM).then((n) => (streamPeak = Math.max(streamPeak, n)));
      const s = Math.round((Date.now() - t0) / 1000);
      if (s % 10 === 0) process.stderr.write(`overload: ${s} s of ${seconds}, observers ${obs.map((o) => status(o.child.pid!, 'VmRSS').toFixed(0)).join(' / ')} MB, Redis ${redisUsedPeak.toFixed(0)} MB at most\n`);
    }, 1000);
    await new Promise((r) => flood.on('exit', r));
    checkStop();
    const observerPeakMb = obs.map((o) => status(o.child.pid!, 'VmHWM'));
    const tStop = Date.now();
    for (const o of obs) o.child.kill('SIGTERM');
    const run1 = await Promise.all(obs.map((o) => o.done));
    const stopWallMs = Date.now() - tStop;
    clearInterval(sampler);
    sink.kill();
    const redisPeakRssMb = status(redisPid, 'VmHWM');
    const bytes = Number(JSON.parse(floodOut.trim().split('\n').pop() ?? '{}').sent ?? 0);

    // 2. each observer starts again (no traffic) and sends its disk spool; then the ingest runs
    const spooledBytes = tb.hosts.map((h) => spoolBytes(workDir('spool', `${tb.id}-${h.name}`)));
    const again = tb.hosts.map((_, i) => startObserver(tb, i, conf));
    kids.push(...again.map((o) => o.child));
    ingest = new Ingest(redis, pool, { consumer: 'bench-overload', entriesPerRead: 64, blockMs: 500, retryMs: 200 });
    await ingest.ensureGroup();
    const tIngest = Date.now();
    ingest.start();
    await waitFor('observers running again', 60_000, () => again.every((o) => o.running()));
    await waitFor('the disk spools sent', 300_000, () => tb.hosts.every((h) => spoolBytes(workDir('spool', `${tb.id}-${h.name}`)) === 0));
    for (const o of again) o.child.kill('SIGTERM');
    const run2 = await Promise.all(again.map((o) => o.done));
    await waitFor('the stream ingested', 600_000, async () => (await redis.xlen(RECORD_STREAM)) === 0 && Number(((await redis.xpending(RECORD_STREAM, INGEST_GROUP)) as [number])[0]) === 0);
    const ingestSeconds = (Date.now() - tIngest) / 1000;
    await ingest.stop();

    const [stored] = (await pool.query('SELECT s.name AS node, COUNT(*) AS n, COUNT(DISTINCT p.observer_seq) AS distinct_seq FROM packets p JOIN servers s ON s.id = p.server_id GROUP BY s.name')) as any;
    const storedBy = new Map<string, { n: number; distinct: number }>((stored as any[]).map((r) => [r.node, { n: Number(r.n), distinct: Number(r.distinct_seq) }]));
    const observers = run1.map((a, i) => {
      const b = run2[i]!;
      const produced = a.records + b.records;
      const droppedRecords = a.drops.spool! + b.drops.spool!;
      const st = storedBy.get(a.node) ?? { n: 0, distinct: 0 };
      return {
        node: a.node, peakRssMb: Math.round(observerPeakMb[i]!), produced, stored: st.n, storedOnce: st.n === st.distinct,
        droppedRecords, droppedKernelEvents: { ring: a.drops.ring! + b.drops.ring!, stop: a.drops.stop! + b.drops.stop!, flow_table: a.drops.flow_table! },
        evicted: a.evicted, heldBackRounds: a.heldBack, redisFull: a.redisFull, spooledAtStop: a.spooled, spoolBytesAfterStop: spooledBytes[i],
        stopMs: a.stopMs, balanced: produced - st.n === droppedRecords,
      };
    });
    const result = {
      seconds, sampleSize: size, bytesSent: bytes, gbitPerSecond: +((bytes * 8) / seconds / 1e9).toFixed(2),
      bounds: { observerRssMb: OBSERVER_RSS_BOUND_MB, observerHeapMb: OBSERVER_HEAP_MB, stopMs: OBSERVER_LIMITS.stopMs, redisMaxmemory: REDIS_MAXMEMORY, maxStreamEntries: OBSERVER_LIMITS.streamEntries },
      observers,
      redis: { peakRssMb: Math.round(redisPeakRssMb), peakUsedMb: Math.round(redisUsedPeak), streamPeakEntries: streamPeak },
      stopWallMs, ingestSeconds: +ingestSeconds.toFixed(1), ingestDuplicatesSkipped: ingest.counters.duplicates,
      ok: {
        observerMemory: observers.every((o) => o.peakRssMb <= OBSERVER_RSS_BOUND_MB),
        redisMemory: redisUsedPeak <= 1024,
        stop: observers.every((o) => o.stopMs <= OBSERVER_LIMITS.stopMs),
        dropsBalance: observers.every((o) => o.balanced),
        exactlyOnce: observers.every((o) => o.storedOnce),
      },
    };
    console.log(JSON.stringify(result));
    console.log(
      `overload ${seconds} s at ${result.gbitPerSecond} Gbit/s, every ${size} B sampled, ingest stopped: observer peak RSS ${observers.map((o) => o.peakRssMb).join(' / ')} MB (bound ${OBSERVER_RSS_BOUND_MB}), ` +
        `Redis peak ${result.redis.peakUsedMb} MB used (maxmemory ${REDIS_MAXMEMORY}, stream at most ${streamPeak} entries), stop ${observers.map((o) => o.stopMs).join(' / ')} ms (bound ${OBSERVER_LIMITS.stopMs}); ` +
        `records produced ${observers.map((o) => o.produced).join(' / ')}, stored ${observers.map((o) => o.stored).join(' / ')}, dropped ${observers.map((o) => o.droppedRecords).join(' / ')} ` +
        `(produced − stored = dropped: ${result.ok.dropsBalance ? 'yes' : 'NO'}, each once: ${result.ok.exactlyOnce ? 'yes' : 'NO'}); kernel ring drops ${observers.map((o) => o.droppedKernelEvents.ring).join(' / ')} events`,
    );
    if (!Object.values(result.ok).every(Boolean)) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await ingest?.stop().catch(() => {}); // (stopped already after a run that finished)
    // what still runs (a run cut short) stops as an operator stops it, SIGKILL after 10 s
    const left = kids.filter((k) => k.exitCode === null && k.signalCode === null);
    for (const k of left) k.kill('SIGTERM');
    const killer = setTimeout(() => left.forEach((k) => k.kill('SIGKILL')), 10_000);
    await Promise.all(left.map((k) => new Promise((r) => (k.exitCode === null && k.signalCode === null ? k.once('exit', r) : r(null)))));
    clearTimeout(killer);
    redis.disconnect();
    await pool.end();
    await testbedDown(tb.id);
    await servers.stop();
  }
}

main().catch((e) => {
  console.error(`bench/overload: ${(e as Error).message}`);
  process.exitCode = 2;
});
