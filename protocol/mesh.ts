/**
 * The probe mesh on the wire (issue 26): after each mesh round, an observer adds one entry to the
 * mesh stream with what it measured to each peer; the ingest checks it in full and loads it into
 * mesh_edges. Times are each host's CLOCK_MONOTONIC, as the responders stamp them.
 */

/** Stream of mesh rounds from the observers. */
export const MESH_STREAM = 'latscope:mesh';
export const MESH_FORMAT = 'mesh1';
/** Entries the mesh stream keeps at most (an observer's rounds are small and few). */
export const MESH_STREAM_ENTRIES = 10_000;

/** What one observer measured to one peer in one round. */
export interface MeshEdgeRow {
  /** The peer's server name. */
  peer: string;
  /** Probes sent (after the warm-up) and lost. */
  sent: number;
  lost: number;
  /** The peer's clock minus this observer's, from the round's lowest-delay probes (a decimal: clocks may be far apart), and its causality bound. */
  offsetNs?: string;
  boundNs?: number;
  /** This observer's clock at the estimate (decimal). */
  atNs?: string;
  /** Round trip without the responder's hold: lowest and median. */
  rttMinNs?: number;
  rttP50Ns?: number;
  /**
   * One-way delays as if the offset above were the truth (t2 − t1 − offset, t4 − t3 + offset):
   * lowest and median of each direction. The analysis corrects them with the clocks solved over
   * the whole mesh.
   */
  fwdMinNs?: number;
  fwdP50Ns?: number;
  bwdMinNs?: number;
  bwdP50Ns?: number;
}

/** A stream entry's fields. */
export interface MeshBatch {
  node: string;
  format: typeof MESH_FORMAT;
  /** The round: floor(wall clock / interval), the same on every observer. */
  epoch: number;
  /** The mesh interval in ms (epoch × interval is the round's start on the wall clock). */
  intervalMs: number;
  /** Unix ms when the round ended. */
  at: number;
  edges: string;
}

/** Largest mesh entry accepted. */
export const MESH_ENTRY_MAX_BYTES = 1 << 20;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1e9;
const isNs = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= 1e15);
const isBig = (v: unknown): boolean => v === undefined || (typeof v === 'string' && /^-?\d{1,20}$/.test(v));
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A mesh entry checked in full before anything uses it; or why it is refused (set aside and counted by the ingest). */
export function parseMeshBatch(fields: Map<string, string>): { batch: MeshBatch; edges: MeshEdgeRow[] } | { refused: string } {
  const get = (k: string) => fields.get(k) ?? '';
  const text = get('edges');
  if (text.length > MESH_ENTRY_MAX_BYTES) return { refused: `larger than ${MESH_ENTRY_MAX_BYTES} bytes` };
  if (get('format') !== MESH_FORMAT) return { refused: `format ${JSON.stringify(get('format').slice(0, 16))}, expected ${MESH_FORMAT}` };
  const node = get('node');
  if (!NAME.test(node)) return { refused: 'node: not a server name' };
  const epoch = Number(get('epoch')), intervalMs = Number(get('intervalMs')), at = Number(get('at'));
  if (!Number.isSafeInteger(epoch) || epoch < 0) return { refused: 'epoch: not a round number' };
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1000) return { refused: 'intervalMs: not an interval of 1 s or more' };
  if (!Number.isSafeInteger(at) || at < 0) return { refused: 'at: not a time' };
  let edges: unknown;
  try {
    edges = JSON.parse(text);
  } catch {
    return { refused: 'edges: not JSON' };
  }
  if (!Array.isArray(edges)) return { refused: 'edges: not a list' };
  for (const [i, e] of edges.entries()) {
    const r = e as MeshEdgeRow;
    const ok =
      typeof e === 'object' && e !== null && typeof r.peer === 'string' && NAME.test(r.peer) && isCount(r.sent) && isCount(r.lost) && r.lost <= r.sent &&
      isBig(r.offsetNs) && isBig(r.atNs) && [r.boundNs, r.rttMinNs, r.rttP50Ns, r.fwdMinNs, r.fwdP50Ns, r.bwdMinNs, r.bwdP50Ns].every(isNs) &&
      (r.offsetNs === undefined) === (r.boundNs === undefined) && (r.boundNs === undefined || r.boundNs >= 0);
    if (!ok) return { refused: `edges[${i}]: not a mesh edge` };
  }
  return { batch: { node, format: MESH_FORMAT, epoch, intervalMs, at, edges: text }, edges: edges as MeshEdgeRow[] };
}
