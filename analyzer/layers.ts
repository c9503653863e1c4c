/**
 * Per-layer delays on each server: for every server, direction and pair of adjacent layers,
 * the p50/p99/max of the time a packet took from one layer to the next, per window of the
 * server's own clock (no clock offset is involved within one server, so bound_ns is 0). Only
 * complete first transmissions count. A run recomputes the windows it touches and replaces
 * their rows in one transaction, so running it again (a BullMQ retry, a second worker) gives
 * the same rows. Runs as the manager's `layer-delays` analysis job.
 */
import { big, inTransaction, type Pool } from '../db/pool.js';
import { quantileSorted } from '../lib/stats.js';
import { LAYER_ORDER, type Direction, type Layer } from '../protocol/layers.js';

export const LAYER_ANALYSIS = 'layer-delays';

/** Adjacent layers of each direction, in the order a segment meets them. */
const PAIRS: Record<Direction, [Layer, Layer][]> = {
  tx: LAYER_ORDER.tx.slice(1).map((to, i) => [LAYER_ORDER.tx[i]!, to]),
  rx: LAYER_ORDER.rx.slice(1).map((to, i) => [LAYER_ORDER.rx[i]!, to]),
};

export interface LayerDelayOptions {
  /** Window length in ns of the server's clock. */
  windowNs: bigint;
  /** Only windows that end after this many ns before each server's newest packet are recomputed. */
  lookbackNs: bigint;
}

export interface LayerDelayRow {
  server: number;
  dir: 'tx' | 'rx';
  from: string;
  to: string;
  windowStartNs: bigint;
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** Recomputes the recent windows of every server; returns the rows written. */
export async function analyzeLayerDelays(pool: Pool, o: LayerDelayOptions): Promise<LayerDelayRow[]> {
  const w = o.windowNs;
  const [servers] = (await pool.query(
    `SELECT server_id, MAX(COALESCE(sock_ns, dev_ns)) AS newest FROM packets WHERE flags & 4 AND NOT flags & 1 GROUP BY server_id`,
  )) as any;
  const out: LayerDelayRow[] = [];
  for (const s of servers as { server_id: number; newest: string }[]) {
    const from = ((big(s.newest) - o.lookbackNs) / w) * w; // first window recomputed, aligned
    const [rows] = (await pool.query(
      `SELECT dir, sock_ns, tcp_ns, ip_ns, dev_ns FROM packets
       WHERE server_id = ? AND flags & 4 AND NOT flags & 1 AND attempt = 0 AND COALESCE(sock_ns, dev_ns) >= ?`,
      [s.server_id, from.toString()],
    )) as any;
    const groups = new Map<string, number[]>();
    for (const r of rows as Record<string, string | number>[]) {
      const dir = r.dir as 'tx' | 'rx';
      const t0 = big(r[`${LAYER_ORDER[dir][0]}_ns`]!);
      const win = (t0 / w) * w;
      for (const [a, b] of PAIRS[dir]) {
        if (r[`${a}_ns`] == null || r[`${b}_ns`] == null) continue;
        const key = `${dir}|${a}|${b}|${win}`;
        const list = groups.get(key) ?? [];
        list.push(Number(big(r[`${b}_ns`]!) - big(r[`${a}_ns`]!)));
        groups.set(key, list);
      }
    }
    const mine: LayerDelayRow[] = [...groups].map(([key, d]) => {
      const [dir, a, b, win] = key.split('|');
      d.sort((x, y) => x - y);
      return { server: Number(s.server_id), dir: dir as 'tx' | 'rx', from: a!, to: b!, windowStartNs: BigInt(win!), samples: d.length, p50: quantileSorted(d, 0.5), p99: quantileSorted(d, 0.99), max: d[d.length - 1]! };
    });
    await inTransaction(pool, async (conn) => {
      await conn.query(`DELETE FROM delay_results WHERE analysis = ? AND kind = 'layer' AND src_server_id = ? AND window_start_ns >= ?`, [LAYER_ANALYSIS, s.server_id, from.toString()]);
      if (mine.length)
        await conn.query(
          `INSERT INTO delay_results (analysis, kind, src_server_id, dst_server_id, from_layer, to_layer, window_start_ns, window_end_ns, samples, p50_ns, p99_ns, max_ns, bound_ns) VALUES ?`,
          [mine.map((r) => [LAYER_ANALYSIS, 'layer', r.server, r.server, `${r.dir}:${r.from}`, `${r.dir}:${r.to}`, r.windowStartNs.toString(), (r.windowStartNs + w).toString(), r.samples, r.p50, r.p99, r.max, 0])],
        );
    });
    out.push(...mine);
  }
  return out;
}
