/**
 * The servers table: every server latscope knows (from connect_info, or an observer that reported
 * records under a name the manager did not provision), and the addresses each one has.
 */
import type { Pool } from './pool.js';

export interface ServerRow {
  hostname: string;
  address: string;
  /** Further addresses (connect_info other_address). */
  otherAddresses?: string[];
  metadata_key: string;
  kind: string;
  hostKey?: string;
}

/** Upserts connect_info's servers and their addresses; returns name -> id. */
export async function upsertServers(pool: Pool, servers: ServerRow[]): Promise<Map<string, number>> {
  if (servers.length)
    await pool.query(
      `INSERT INTO servers (name, address, metadata_key, kind, host_key) VALUES ?
       ON DUPLICATE KEY UPDATE address = VALUES(address), metadata_key = VALUES(metadata_key), kind = VALUES(kind), host_key = VALUES(host_key)`,
      [servers.map((s) => [s.hostname, s.address, s.metadata_key, s.kind, s.hostKey ?? null])],
    );
  const ids = await serverIds(pool);
  const addresses = servers.flatMap((s) => [s.address, ...(s.otherAddresses ?? [])].map((a) => [a, ids.get(s.hostname)!]));
  if (addresses.length) await pool.query('INSERT INTO server_addresses (address, server_id) VALUES ? ON DUPLICATE KEY UPDATE server_id = VALUES(server_id)', [addresses]);
  return ids;
}

/** name -> id of every server. */
export async function serverIds(pool: Pool): Promise<Map<string, number>> {
  const [rows] = (await pool.query('SELECT id, name FROM servers')) as any;
  return new Map(rows.map((r: { id: number; name: string }) => [r.name, Number(r.id)]));
}

/** ids of these names, adding the ones not known yet (observers the manager did not provision). */
export async function ensureServers(pool: Pool, names: string[]): Promise<Map<string, number>> {
  if (names.length) await pool.query('INSERT IGNORE INTO servers (name) VALUES ?', [names.map((n) => [n])]);
  const [rows] = (await pool.query('SELECT id, name FROM servers WHERE name IN (?)', [names])) as any;
  return new Map(rows.map((r: { id: number; name: string }) => [r.name, Number(r.id)]));
}
