/**
 * MySQL connections: the pool every feature uses, transactions, and creating the database.
 * BIGINT columns come back exact: as a number when it is a safe integer, else as a string.
 */
import mysql, { type Connection, type Pool, type PoolConnection } from 'mysql2/promise';

export type { Connection, Pool, PoolConnection } from 'mysql2/promise';

export interface DbInfo {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** TLS, the server's certificate verified against `ca` (conf/tls.ts TlsFiles); absent: plain text. */
  tls?: { ca: string; cert?: string; key?: string; servername?: string };
}

const settings = (info: DbInfo) => ({
  host: info.host,
  port: info.port,
  user: info.user,
  password: info.password,
  database: info.database,
  ...(info.tls ? { ssl: { ...info.tls, rejectUnauthorized: true } } : {}),
  supportBigNumbers: true,
  bigNumberStrings: false, // a BIGINT beyond 2^53 comes back as a string, never rounded
});
/** Each pool's settings, for connections of its database outside it (pool.ts only). */
const infoOf = new WeakMap<Pool, DbInfo>();

export function openPool(info: DbInfo, connectionLimit = 8): Pool {
  const pool = mysql.createPool({ ...settings(info), connectionLimit });
  infoOf.set(pool, info);
  return pool;
}

/**
 * A connection to a pool's database that does not take one of the pool's: for what is held for
 * a process's life (a lease), so that it never starves the work that needs the pool.
 */
export function connectionBeside(pool: Pool): Promise<Connection> {
  const info = infoOf.get(pool);
  if (!info) throw new Error('connectionBeside: a pool not made by openPool');
  return mysql.createConnection(settings(info));
}

/** Runs fn on one connection inside a transaction: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: Pool, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const v = await fn(conn);
    await conn.commit();
    return v;
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  } finally {
    conn.release();
  }
}

/** Creates the database if it is missing and the user may (else the pool says what is wrong). */
export async function createDatabase(info: DbInfo): Promise<void> {
  const c = await mysql.createConnection({ host: info.host, port: info.port, user: info.user, password: info.password, ...(info.tls ? { ssl: { ...info.tls, rejectUnauthorized: true } } : {}) });
  try {
    await c.query(`CREATE DATABASE IF NOT EXISTS \`${info.database}\``).catch(() => {});
  } finally {
    await c.end();
  }
}

/** A BIGINT as it comes back (number or string) as a bigint. */
export const big = (v: number | string | bigint): bigint => (typeof v === 'bigint' ? v : BigInt(v));
