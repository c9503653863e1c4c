/**
 * The deployment's MySQL for the commands that read or write results directly (analyze, report,
 * graph). They need database_info.yaml and its secret only (analyze also reads sampling_info and
 * analysis_info when they are there): an analyst with database access needs no SSH key or Redis.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createDatabase, openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { loadTls, type TlsFiles } from '../conf/tls.js';
import { AggregateConfError, ConfError, loadConfFile, resolveSecret } from '../conf/load.js';
import { analysisInfo, databaseInfo, samplingInfo, type AnalysisInfo, type DatabaseInfo, type SamplingInfo } from '../conf/schema.js';

export interface ResultsConf {
  dir: string;
  database: DatabaseInfo & { secret?: string; tlsFiles?: TlsFiles };
  /** Defaults when the file is not there. */
  sampling: Pick<SamplingInfo, 'filter_retrans' | 'size'>;
  analysis: AnalysisInfo;
}

/** database_info.yaml (required), sampling_info.yaml and analysis_info.yaml (optional) of a conf folder. */
export function loadConf(dir: string): ResultsConf {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfError(`${dir}: no such folder; give --conf the folder that holds database_info.yaml (or set LATSCOPE_CONF)`, dir);
  if (!existsSync(join(dir, 'database_info.yaml')))
    throw new ConfError(`${join(dir, 'database_info.yaml')}: missing: this command reads the results database; give --conf a folder with database_info.yaml (or set LATSCOPE_CONF)`, join(dir, 'database_info.yaml'));
  const errors: ConfError[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof ConfError)) throw e;
      errors.push(e);
      return undefined;
    }
  };
  const database = attempt(() => loadConfFile(dir, 'database_info.yaml', databaseInfo));
  const secret = database && attempt(() => resolveSecret(dir, 'database_info.yaml', 'passwd', { value: database.passwd, file: database.passwd_file, env: database.passwd_env }));
  const optional = <T>(file: string, load: () => T, fallback: T): T | undefined => (existsSync(join(dir, file)) ? attempt(load) : fallback);
  const sampling = optional('sampling_info.yaml', () => loadConfFile(dir, 'sampling_info.yaml', samplingInfo), samplingInfo.parse({ ports: [1] }));
  const analysis = optional('analysis_info.yaml', () => loadConfFile(dir, 'analysis_info.yaml', analysisInfo), analysisInfo.parse({}));
  const tlsFiles = database?.tls && attempt(() => loadTls(dir, 'database_info.yaml', database.tls!));
  if (errors.length) throw new AggregateConfError(errors);
  return { dir, database: { ...database!, secret, ...(tlsFiles ? { tlsFiles } : {}) }, sampling: sampling!, analysis: analysis! };
}

/** A pool on database_info's database; with `prepare`, the schema is brought up to date first. */
export async function openDb(d: Pick<ResultsConf, 'database'>, prepare = false): Promise<Pool> {
  const db = d.database;
  const info = { host: db.host, port: db.port, user: db.user, password: db.secret, database: db.db, tls: db.tlsFiles };
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
