/**
 * Local Redis and MariaDB, started from Debian's packages as latscope's own processes: data in
 * the work directory, listening on loopback (and, for Redis, on the testbed bridge address so
 * observers in the test hosts can publish), passwords generated once and kept in 0600 files.
 * Nothing here touches the system's own redis or mariadb services.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { livePid, run, sleep, waitFor } from './exec.js';
import { workDir } from '../lib/paths.js';
import { testPki, type TestPki } from './pki.js';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';

export interface RedisInfo {
  host: string;
  port: number;
  password: string;
}

export interface MariaDbInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** A password kept in work/secrets/NAME.password (made on first use, readable by root only). */
export function secret(name: string): string {
  const p = join(workDir('secrets'), `${name}.password`);
  if (!existsSync(p)) writeFileSync(p, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
  return readFileSync(p, 'utf8').trim();
}

/** Starts argv detached, its output in logFile; the process writes its own pid file, or we write `pidFile` for one that does not. */
export function spawnDaemon(argv: string[], logFile: string, pidFile?: string): void {
  const out = openSync(logFile, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
  if (pidFile && child.pid) writeFileSync(pidFile, `${child.pid}\n`);
}

export async function stopByPidFile(pidFile: string, what: string, timeoutMs = 20_000): Promise<boolean> {
  const pid = livePid(pidFile);
  if (!pid) return false;
  process.kill(pid, 'SIGTERM');
  try {
    await waitFor(`${what} (pid ${pid}) to stop`, timeoutMs, () => (livePid(pidFile) ? undefined : true));
  } catch {
    process.kill(pid, 'SIGKILL');
    await sleep(200);
  }
  return true;
}

// ---- Redis -------------------------------------------------------------------------------------

export const REDIS_PORT = Number(process.env.LATSCOPE_REDIS_PORT ?? 6390);
/** The local Redis's memory bound: room for the default max_stream_entries (10 000 entries of about 60 KB) and the jobs. */
export const REDIS_MAXMEMORY = '1gb';

/** Starts the local Redis (or returns the running one). `extraBind` adds listen addresses. */
export async function startRedis(extraBind: string[] = []): Promise<RedisInfo> {
  const info: RedisInfo = { host: '127.0.0.1', port: REDIS_PORT, password: secret('redis') };
  await runRedis('redis', workDir('redis'), info, [
    `port ${info.port}`,
    `bind ${['127.0.0.1', ...extraBind].join(' ')}`,
    // Streams are the pipeline's buffer: they must survive a restart of Redis.
    'appendonly yes',
    'appendfsync everysec',
    // a hard bound, and never a silent eviction of queued records or jobs: a full Redis refuses
    // writes, and the observers spool and count (they hold back long before, at max_stream_entries)
    `maxmemory ${REDIS_MAXMEMORY}`,
  ]);
  return info;
}

/** Whether something answers on 127.0.0.1:port. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

/** The variable that moves a local server's port. */
const portVariable = (port: number): string =>
  port === MARIADB_PORT ? 'LATSCOPE_MARIADB_PORT' : port === REDIS_TLS_PORT ? 'LATSCOPE_REDIS_TLS_PORT' : port === REDIS_PORT ? 'LATSCOPE_REDIS_PORT' : 'LATSCOPE_REDIS_CLUSTER_PORT';

/** Refuses to start a server on a port another process holds (it would wait for a daemon that cannot bind, then time out). */
async function portFree(what: string, port: number): Promise<void> {
  if (await portTaken(port))
    throw new Error(`${what}: 127.0.0.1:${port} is taken by another process, so ours cannot start (the local servers of another checkout? \`latscope servers down\` there stops them; or choose another port with ${portVariable(port)})`);
}

/**
 * One local redis-server of latscope's own in `dir` (config, pid file, log): the lines every
 * instance has (the password, no snapshots, never an eviction) and its own. A running one is
 * kept when its config is the same, else restarted (`before` runs first); then it must answer.
 */
async function runRedis(what: string, dir: string, info: RedisInfo & { tls?: { ca: Buffer } }, own: string[], before?: () => void): Promise<void> {
  const pidFile = join(dir, 'redis.pid');
  const confPath = join(dir, 'redis.conf');
  const conf = [
    ...own,
    'protected-mode yes',
    `requirepass ${info.password}`,
    `dir ${dir}`,
    `pidfile ${pidFile}`,
    'daemonize no',
    'save ""',
    'maxmemory-policy noeviction',
    '',
  ].join('\n');
  const running = livePid(pidFile);
  if (!(running && existsSync(confPath) && readFileSync(confPath, 'utf8') === conf)) {
    if (running) await stopByPidFile(pidFile, what);
    await portFree(what, info.port);
    before?.();
    writeFileSync(confPath, conf, { mode: 0o600 }); // holds the password
    spawnDaemon(['redis-server', confPath], join(dir, 'redis.log'));
  }
  await waitForRedis(info);
}

async function waitForRedis(info: RedisInfo & { tls?: { ca: Buffer } }): Promise<void> {
  await waitFor(`redis on ${info.host}:${info.port}`, 15_000, async () => {
    const r = new Redis({ host: info.host, port: info.port, password: info.password, ...(info.tls ? { tls: info.tls } : {}), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return (await r.ping()) === 'PONG' ? true : undefined;
    } finally {
      r.disconnect();
    }
  });
}

export async function stopRedis(): Promise<boolean> {
  return stopByPidFile(join(workDir('redis'), 'redis.pid'), 'redis');
}

export function redisRunning(): boolean {
  return livePid(join(workDir('redis'), 'redis.pid')) !== undefined;
}

// ---- a Redis speaking TLS only --------------------------------------------------------------------

export const REDIS_TLS_PORT = Number(process.env.LATSCOPE_REDIS_TLS_PORT ?? 6394);

/**
 * A second local Redis that speaks TLS only (no plain-text port), its certificate from
 * local/pki.ts, client certificates optional: for the tests and the benchmark of TLS.
 */
export async function startRedisTls(): Promise<RedisInfo & { pki: TestPki }> {
  const pki = testPki();
  const info = { host: '127.0.0.1', port: REDIS_TLS_PORT, password: secret('redis'), pki };
  await runRedis('redis (tls)', workDir('redis-tls'), { ...info, tls: { ca: readFileSync(pki.caFile) } }, [
    'port 0',
    `tls-port ${info.port}`,
    `tls-cert-file ${pki.serverCertFile}`,
    `tls-key-file ${pki.serverKeyFile}`,
    `tls-ca-cert-file ${pki.caFile}`,
    'tls-auth-clients optional',
    'bind 127.0.0.1',
    'appendonly no',
    'maxmemory 512mb',
  ]);
  return info;
}

export async function stopRedisTls(): Promise<boolean> {
  return stopByPidFile(join(workDir('redis-tls'), 'redis.pid'), 'redis (tls)');
}

export function redisTlsRunning(): boolean {
  return livePid(join(workDir('redis-tls'), 'redis.pid')) !== undefined;
}

// ---- a Redis Cluster -----------------------------------------------------------------------------

/** The first port of the local Redis Cluster's masters (three: this one and the next two). */
export const REDIS_CLUSTER_PORT = Number(process.env.LATSCOPE_REDIS_CLUSTER_PORT ?? 6391);
const CLUSTER_MASTERS = 3;

export interface RedisClusterInfo {
  nodes: { host: string; port: number }[];
  password: string;
}

const clusterDir = (k: number) => workDir('redis-cluster', String(k));

/**
 * A real Redis Cluster of three masters (Debian's redis-server in cluster mode) on loopback, as
 * latscope's own processes, for the tests of sharded streams: started (and the cluster formed
 * with redis-cli --cluster create) unless it runs already; waits until every slot is served.
 */
export async function startRedisCluster(): Promise<RedisClusterInfo> {
  const info: RedisClusterInfo = { nodes: Array.from({ length: CLUSTER_MASTERS }, (_, k) => ({ host: '127.0.0.1', port: REDIS_CLUSTER_PORT + k })), password: secret('redis-cluster') };
  let fresh = false;
  for (const [k, n] of info.nodes.entries()) {
    const dir = clusterDir(k);
    await runRedis('redis cluster node', dir, { host: n.host, port: n.port, password: info.password }, [
      `port ${n.port}`,
      'bind 127.0.0.1',
      `masterauth ${info.password}`,
      'appendonly no',
      'cluster-enabled yes',
      'cluster-config-file nodes.conf',
      'cluster-node-timeout 5000',
      'maxmemory 256mb',
    ], () => {
      rmSync(join(dir, 'nodes.conf'), { force: true }); // a node of an earlier cluster would not join a new one
      fresh = true;
    });
  }
  const state = async () => {
    const r = new Redis({ ...info.nodes[0]!, password: info.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      const text = String(await r.call('CLUSTER', 'INFO'));
      return { ok: /cluster_state:ok/.test(text), known: Number(/cluster_known_nodes:(\d+)/.exec(text)?.[1] ?? 0) };
    } finally {
      r.disconnect();
    }
  };
  if (fresh || (await state()).known < CLUSTER_MASTERS)
    run(['redis-cli', '--no-auth-warning', '-a', info.password, '--cluster', 'create', ...info.nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  await waitFor('the redis cluster to serve every slot', 30_000, async () => ((await state()).ok ? true : undefined));
  return info;
}

/** Stops the cluster's nodes and forgets the cluster (the next start forms a new one). */
export async function stopRedisCluster(): Promise<boolean> {
  let any = false;
  for (let k = 0; k < CLUSTER_MASTERS; k++) {
    if (await stopByPidFile(join(clusterDir(k), 'redis.pid'), 'redis cluster node')) any = true;
    rmSync(join(clusterDir(k), 'nodes.conf'), { force: true });
  }
  return any;
}

export function redisClusterRunning(): boolean {
  return Array.from({ length: CLUSTER_MASTERS }, (_, k) => livePid(join(clusterDir(k), 'redis.pid'))).some((p) => p !== undefined);
}

// ---- MariaDB -----------------------------------------------------------------------------------

export const MARIADB_PORT = Number(process.env.LATSCOPE_MARIADB_PORT ?? 3307);

function mariadbPaths() {
  const dir = workDir('mariadb');
  return { dir, data: join(dir, 'data'), socket: join(dir, 'mysqld.sock'), pidFile: join(dir, 'mysqld.pid'), log: join(dir, 'mysqld.log') };
}

/**
 * Starts the local MariaDB (initialising its data directory the first time), and makes sure the
 * `latscope` user owns the `latscope` database and any `latscope_*` (test) database.
 */
export async function startMariaDb(): Promise<MariaDbInfo> {
  const p = mariadbPaths();
  const info: MariaDbInfo = { host: '127.0.0.1', port: MARIADB_PORT, user: 'latscope', password: secret('mariadb'), database: 'latscope' };
  if (!livePid(p.pidFile)) {
    await portFree('mariadb', info.port);
    const pki = testPki();
    if (!existsSync(join(p.data, 'mysql'))) {
      rmSync(p.data, { recursive: true, force: true });
      run(['mariadb-install-db', '--no-defaults', `--datadir=${p.data}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db']);
    }
    spawnDaemon(
      [
        'mariadbd', '--no-defaults', `--datadir=${p.data}`, `--socket=${p.socket}`, `--port=${info.port}`,
        '--bind-address=127.0.0.1', '--user=root', `--pid-file=${p.pidFile}`, `--log-error=${p.log}`,
        '--skip-name-resolve', '--innodb-buffer-pool-size=4G', '--innodb-flush-log-at-trx-commit=2',
        // a large redo log: bulk ingest checkpoints (flushes pages) far less often
        '--innodb-log-file-size=1G', '--innodb-log-buffer-size=64M',
        '--max-connections=500', '--max-allowed-packet=64M',
        // TLS for whoever asks (plain text on loopback stays the local default)
        `--ssl-ca=${pki.caFile}`, `--ssl-cert=${pki.serverCertFile}`, `--ssl-key=${pki.serverKeyFile}`,
      ],
      p.log,
    );
    await waitFor('mariadb socket', 30_000, () => (existsSync(p.socket) && livePid(p.pidFile) ? true : undefined));
  }
  // Root logs in over the socket by unix identity; the SQL (with the password) goes on stdin.
  const pw = info.password.replace(/'/g, "''");
  const sql = `
    CREATE DATABASE IF NOT EXISTS latscope;
    CREATE USER IF NOT EXISTS 'latscope'@'127.0.0.1' IDENTIFIED BY '${pw}';
    CREATE USER IF NOT EXISTS 'latscope'@'localhost' IDENTIFIED BY '${pw}';
    ALTER USER 'latscope'@'127.0.0.1' IDENTIFIED BY '${pw}';
    ALTER USER 'latscope'@'localhost' IDENTIFIED BY '${pw}';
    GRANT ALL PRIVILEGES ON \`latscope\`.* TO 'latscope'@'127.0.0.1', 'latscope'@'localhost';
    GRANT ALL PRIVILEGES ON \`latscope\\_%\`.* TO 'latscope'@'127.0.0.1', 'latscope'@'localhost';
    FLUSH PRIVILEGES;`;
  await waitFor('mariadb to accept root over its socket', 30_000, () => {
    run(['mariadb', '--no-defaults', `--socket=${p.socket}`, '-u', 'root'], { input: sql });
    return true;
  });
  await waitFor(`mariadb on ${info.host}:${info.port}`, 15_000, async () => {
    const c = await mysql.createConnection({ host: info.host, port: info.port, user: info.user, password: info.password, database: info.database });
    await c.end();
    return true;
  });
  return info;
}

export async function stopMariaDb(): Promise<boolean> {
  return stopByPidFile(mariadbPaths().pidFile, 'mariadb', 60_000);
}

/** The pids of the local Redis and MariaDB, where they run (benchmarks weigh their CPU). */
export function serverPids(): { redis?: number; mariadb?: number } {
  return { redis: livePid(join(workDir('redis'), 'redis.pid')), mariadb: livePid(mariadbPaths().pidFile) };
}

export function mariadbRunning(): boolean {
  return livePid(mariadbPaths().pidFile) !== undefined;
}
