/**
 * The schema as numbered migrations (db/migrations/NNN_name.ts, each owned by the feature whose
 * tables it makes), applied in order, each once (recorded in schema_migrations), under a lock so
 * two managers never race. Each migration is idempotent by itself too (IF NOT EXISTS), so a crash
 * between a migration and its record is harmless. Tables are documented in their COMMENTs
 * (SHOW CREATE TABLE shows them).
 */
import type { Pool } from './pool.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';

export type { Migration } from './migration.js';

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
