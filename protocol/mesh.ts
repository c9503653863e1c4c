/**
 * The probe mesh between observers and the manager (issue 26): who probes whom in each round
 * (every observer and the manager compute the same from the same names and round), and the wire:
 * after each mesh round an observer adds one entry to the mesh stream with what it measured to
 * each peer; the ingest checks it in full and loads it into mesh_edges. Times are each host's
 * CLOCK_MONOTONIC, as the responders stamp them.
 */

export const MESH_FORMAT = 'mesh1';
/** The manager as a peer of the mesh (its node in the solve: timesync/mesh.ts MANAGER). */
export const MESH_MANAGER = '@manager';

/** What one observer measured to one peer in one round. */
export interface MeshEdgeRow {
  /** The peer's server name, or MESH_MANAGER (an anchor probing the manager). */
  peer: string;
  /** Probes sent (after the warm-up) and lost. */
  sent: number;
  lost: number;
  /** The peer's clock minus this observer's, from the round's lowest-delay probes (a decimal: clocks may be far apart), and its causality bound. */
  offsetNs?: string;
  boundNs?: number;
  /** This observer's clock at the estimate (decimal). */
  atNs?: string;
  /** The same moment on this observer's wall clock (Unix ms): the analysis dates each edge of a round, whose peers are probed one after another, to carry it along the clocks' drift (absent from older observers: the round's end is used). */
  atUnixMs?: number;
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
      typeof e === 'object' && e !== null && typeof r.peer === 'string' && (NAME.test(r.peer) || r.peer === MESH_MANAGER) && isCount(r.sent) && isCount(r.lost) && r.lost <= r.sent &&
      isBig(r.offsetNs) && isBig(r.atNs) && (r.atUnixMs === undefined || (Number.isSafeInteger(r.atUnixMs) && r.atUnixMs >= 0)) && [r.boundNs, r.rttMinNs, r.rttP50Ns, r.fwdMinNs, r.fwdP50Ns, r.bwdMinNs, r.bwdP50Ns].every(isNs) &&
      (r.offsetNs === undefined) === (r.boundNs === undefined) && (r.boundNs === undefined || r.boundNs >= 0);
    if (!ok) return { refused: `edges[${i}]: not a mesh edge` };
  }
  return { batch: { node, format: MESH_FORMAT, epoch, intervalMs, at, edges: text }, edges: edges as MeshEdgeRow[] };
}

/**
 * The peers a node probes: every other node in a fleet of at most `fullMesh` nodes; else its
 * `ring` neighbours on each side of a ring in name order, and `random` others drawn anew each
 * `epoch`. Symmetric: a node also probes every node that drew it, so every pair is probed both
 * ways (which cancels the probes' common stamping bias). Every node computes the same mesh for
 * the same epoch, and so does the manager.
 */
export function meshPeers(nodes: string[], self: string, o: { fullMesh?: number; ring?: number; random?: number; epoch?: number } = {}): string[] {
  const sorted = [...new Set(nodes)].sort();
  const at = sorted.indexOf(self);
  if (at < 0) throw new RangeError(`mesh: ${self} is not one of the nodes`);
  if (sorted.length <= (o.fullMesh ?? 16)) return sorted.filter((n) => n !== self);
  const out = new Set<string>();
  const ring = Math.min(o.ring ?? 2, Math.floor((sorted.length - 1) / 2));
  for (let k = 1; k <= ring; k++) {
    out.add(sorted[(at + k) % sorted.length]!);
    out.add(sorted[(at - k + sorted.length) % sorted.length]!);
  }
  const random = o.random ?? 3;
  sorted.forEach((n, i) => {
    for (const d of draw(sorted.length, i, random, `${n}/${o.epoch ?? 0}`)) {
      if (i === at) out.add(sorted[d]!);
      else if (d === at) out.add(n);
    }
  });
  out.delete(self);
  return [...out];
}

/** `k` distinct indexes other than `self` out of n, from a seed. */
function draw(n: number, self: number, k: number, seed: string): number[] {
  const out: number[] = [];
  let h = hash32(seed);
  while (out.length < Math.min(k, n - 1)) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    const d = h % n;
    if (d !== self && !out.includes(d)) out.push(d);
  }
  return out;
}

function hash32(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The `count` servers the manager probes itself when the mesh runs: spread evenly over the list, so that they sit in different parts of the network. */
export function meshAnchors(servers: string[], count: number): string[] {
  if (count >= servers.length) return [...servers];
  return Array.from({ length: count }, (_, k) => servers[Math.floor((k * servers.length) / count)]!);
}

/**
 * The peers a node of a fleet of `n` probes in a round at most (meshPeers), for planning: its
 * ring and its own random draws, and the nodes that drew it, a Poisson count of mean `random`
 * taken at its far tail (mean + 6 standard deviations + 3), which no node of even 100,000 reaches in practice.
 */
export function maxMeshPeers(n: number, o: { fullMesh: number; ring: number; random: number }): number {
  return n <= o.fullMesh ? n - 1 : Math.min(n - 1, 2 * o.ring + 2 * o.random + Math.ceil(6 * Math.sqrt(o.random)) + 3);
}
