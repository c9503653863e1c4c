/** A fresh test database with the schema, on the project's MariaDB: latscope_test_NAME, dropped first if there. */
import { openPool, type Pool } from '../../db/pool.js';
import { migrate } from '../../db/migrate.js';
import type { MariaDbInfo } from '../../local/servers.js';

export async function freshDatabase(db: MariaDbInfo, name: string): Promise<Pool> {
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query(`DROP DATABASE IF EXISTS latscope_test_${name}`);
  await admin.query(`CREATE DATABASE latscope_test_${name}`);
  await admin.end();
  const pool = openPool({ ...db, database: `latscope_test_${name}` });
  await migrate(pool);
  return pool;
}
