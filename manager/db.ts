/**
 * The MySQL side: connection pools and the schema, as numbered migrations applied in order,
 * each once (recorded in schema_migrations), under a lock so two managers never race. Each
 * migration is idempotent by itself too (IF NOT EXISTS), so a crash between a migration and its
 * record is harmless. Tables are documented in their COMMENTs (SHOW CREATE TABLE shows them).
 */
import mysql, { type Pool } from 'mysql2/promise';

export interface DbInfo {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export function openPool(info: DbInfo): Pool {
  return mysql.createPool({
    host: info.host,
    port: info.port,
    user: info.user,
    password: info.password,
    database: info.database,
    connectionLimit: 8,
    supportBigNumbers: true,
    bigNumberStrings: true, // BIGINT comes back exact, as a string
  });
}

interface Migration {
  version: number;
  name: string;
  up: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'clock offsets',
    up: [
      `CREATE TABLE IF NOT EXISTS clock_offsets (
        server VARCHAR(255) NOT NULL COMMENT 'server name (connect_info)',
        round INT UNSIGNED NOT NULL COMMENT 'time-sync round, increasing per deployment',
        at_ns BIGINT UNSIGNED NOT NULL COMMENT 'manager CLOCK_MONOTONIC time the offset refers to',
        offset_ns BIGINT NOT NULL COMMENT 'server clock minus manager clock at at_ns',
        bound_ns DOUBLE NOT NULL COMMENT '|offset error| <= bound_ns (causality bound)',
        drift_ppb DOUBLE NOT NULL COMMENT 'offset change per manager second, in ns/s, over the fit window ending here',
        drift_bound_ppb DOUBLE NOT NULL COMMENT '|drift error| <= drift_bound_ppb',
        samples INT UNSIGNED NOT NULL COMMENT 'completed probes in the round',
        kept INT UNSIGNED NOT NULL COMMENT 'probes kept by the minimum-delay filter',
        lost INT UNSIGNED NOT NULL COMMENT 'probes without a reply',
        min_delay_ns DOUBLE NOT NULL COMMENT 'lowest round trip (responder time removed)',
        median_delay_ns DOUBLE NOT NULL,
        created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (server, round)
      ) ENGINE=InnoDB COMMENT='one row per server and time-sync round'`,
    ],
  },
];

/** Applies the migrations not yet applied; returns the versions it applied. */
export async function migrate(pool: Pool, migrations: Migration[] = MIGRATIONS): Promise<number[]> {
  const conn = await pool.getConnection();
  try {
    const [[lock]] = (await conn.query(`SELECT GET_LOCK('latscope.migrate', 60) AS ok`)) as any;
    if (lock.ok !== 1) throw new Error('database: another manager holds the migration lock for more than 60 s');
    try {
      await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT UNSIGNED NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
      ) ENGINE=InnoDB COMMENT='latscope schema versions applied'`);
      const [rows] = (await conn.query('SELECT version FROM schema_migrations')) as any;
      const done = new Set<number>(rows.map((r: { version: number }) => Number(r.version)));
      const applied: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        for (const sql of m.up) await conn.query(sql);
        await conn.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [m.version, m.name]);
        applied.push(m.version);
      }
      return applied;
    } finally {
      await conn.query(`SELECT RELEASE_LOCK('latscope.migrate')`);
    }
  } finally {
    conn.release();
  }
}
