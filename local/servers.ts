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
import { livePid, run, sleep, waitFor } from './exec.js';
import { workDir } from '../lib/paths.js';
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

/** Starts argv detached, its output in logFile; the process writes its own pid file. */
function spawnDaemon(argv: string[], logFile: string): void {
  const out = openSync(logFile, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
}

async function stopByPidFile(pidFile: string, what: string, timeoutMs = 20_000): Promise<boolean> {
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
  const dir = workDir('redis');
  const pidFile = join(dir, 'redis.pid');
  const info: RedisInfo = { host: '127.0.0.1', port: REDIS_PORT, password: secret('redis') };
  const bind = ['127.0.0.1', ...extraBind];
  const confPath = join(dir, 'redis.conf');
  const conf = [
    `port ${info.port}`,
    `bind ${bind.join(' ')}`,
    'protected-mode yes',
    `requirepass ${info.password}`,
    `dir ${dir}`,
    `pidfile ${pidFile}`,
    'daemonize no',
    'save ""',
    // Streams are the pipeline's buffer: they must survive a restart of Redis.
    'appendonly yes',
    'appendfsync everysec',
    // a hard bound, and never a silent eviction of queued records or jobs: a full Redis refuses
    // writes, and the observers spool and count (they hold back long before, at max_stream_entries)
    `maxmemory ${REDIS_MAXMEMORY}`,
    'maxmemory-policy noeviction',
    '',
  ].join('\n');
  const running = livePid(pidFile);
  if (running && existsSync(confPath) && readFileSync(confPath, 'utf8') === conf) {
    await waitForRedis(info);
    return info;
  }
  if (running) await stopByPidFile(pidFile, 'redis');
  writeFileSync(confPath, conf, { mode: 0o600 }); // holds the password
  spawnDaemon(['redis-server', confPath], join(dir, 'redis.log'));
  await waitForRedis(info);
  return info;
}

async function waitForRedis(info: RedisInfo): Promise<void> {
  await waitFor(`redis on ${info.host}:${info.port}`, 15_000, async () => {
    const r = new Redis({ host: info.host, port: info.port, password: info.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
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

export function mariadbRunning(): boolean {
  return livePid(mariadbPaths().pidFile) !== undefined;
}
