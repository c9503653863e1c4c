/** The deployment's MySQL for the commands that read or write results directly (analyze, report, graph). */
import { createDatabase, openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { loadDeployment, type Deployment } from '../conf/deployment.js';

export function loadConf(dir: string): Deployment {
  const d = loadDeployment(dir);
  for (const w of d.warnings) console.error(`warning: ${w}`);
  return d;
}

/** A pool on database_info's database; with `prepare`, the schema is brought up to date first. */
export async function openDb(d: Deployment, prepare = false): Promise<Pool> {
  const db = d.database;
  const info = { host: db.host, port: db.port, user: db.user, password: db.secret, database: db.db };
  const pool = openPool(info, 4);
  try {
    if (prepare) {
      await createDatabase(info);
      await migrate(pool);
    } else await pool.query('SELECT 1 FROM path_stats LIMIT 0');
    return pool;
  } catch (e) {
    await pool.end().catch(() => {});
    const msg = (e as Error).message;
    const hint = /doesn't exist/.test(msg) ? ': the analyzer has not run on this database yet (latscope manager, or latscope analyze)' : '';
    throw new Error(`mysql at ${db.host}:${db.port} database ${db.db} (database_info.yaml): ${msg}${hint}`);
  }
}
