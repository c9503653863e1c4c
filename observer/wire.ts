/**
 * The record wire format between observers and the ingest ("rows1"): one line per record,
 * fields separated by tabs, a missing layer as \N. It is also the column order of the MySQL
 * `packets` table after its server_id, so the ingest loads a stream entry with LOAD DATA as it
 * is, with no parsing in the middle: the fleet formats, the one ingest only forwards.
 *
 *   observer_seq dir family src sport dst dport sample_seq stream_offset seg_start seg_end
 *   attempt flags  (sock tcp ip dev) x (ns cpu tid)  hops
 *
 * flags: 1 retransmission, 2 sampled by the interval rule, 4 complete. hops: the device
 * crossings in order, "ifindex:netns:rx:ns" joined by commas (rx 1: entering the device).
 */
import type { DeviceHop, LayerStamp, PacketRecord } from './records.js';
import { LAYERS, type Direction, type PairHistogram } from './probe.js';

export const ROW_FORMAT = 'rows1';

/** The packets table's columns in row order (server_id comes first, added by the ingest). */
export const ROW_COLUMNS = [
  'observer_seq', 'dir', 'family', 'src', 'sport', 'dst', 'dport', 'sample_seq', 'stream_offset', 'seg_start', 'seg_end',
  'attempt', 'flags',
  ...LAYERS.flatMap((l) => [`${l}_ns`, `${l}_cpu`, `${l}_tid`]),
  'hops',
] as const;

export const F_ROW_RETRANS = 1;
export const F_ROW_INTERVAL = 2;
export const F_ROW_COMPLETE = 4;

export function encodeRow(r: PacketRecord): string {
  const flags = (r.retrans ? F_ROW_RETRANS : 0) | (r.interval ? F_ROW_INTERVAL : 0) | (r.complete ? F_ROW_COMPLETE : 0);
  let line = `${r.observerSeq}\t${r.dir}\t${r.flow.family}\t${r.flow.src}\t${r.flow.sport}\t${r.flow.dst}\t${r.flow.dport}\t${r.sampleSeq}\t${r.streamOffset}\t${r.segStart}\t${r.segEnd}\t${r.attempt}\t${flags}`;
  for (const l of LAYERS) {
    const s = r.layers[l];
    line += s ? `\t${s.tsNs}\t${s.cpu}\t${s.tid}` : '\t\\N\t\\N\t\\N';
  }
  return `${line}\t${r.devices.map((h) => `${h.ifindex}:${h.netns}:${h.rx ? 1 : 0}:${h.tsNs}`).join(',')}`;
}

/** Lines of one stream entry. */
export const encodeRows = (records: PacketRecord[]): string => records.map(encodeRow).join('\n') + '\n';

/** Parses one line back into a record (for tests, the demo and tools; the ingest never does). */
export function decodeRow(node: string, line: string): PacketRecord {
  const f = line.split('\t');
  if (f.length !== ROW_COLUMNS.length) throw new Error(`record row: ${f.length} fields, expected ${ROW_COLUMNS.length}`);
  const flags = Number(f[12]);
  const layers: PacketRecord['layers'] = {};
  LAYERS.forEach((l, i) => {
    const [ns, cpu, tid] = f.slice(13 + 3 * i, 16 + 3 * i);
    if (ns !== '\\N') layers[l] = { tsNs: BigInt(ns!), cpu: Number(cpu), tid: Number(tid) } satisfies LayerStamp;
  });
  const hops = f[25] ? f[25].split(',') : [];
  return {
    node,
    observerSeq: Number(f[0]),
    dir: f[1] as Direction,
    flow: { family: Number(f[2]) as 4 | 6, src: f[3]!, sport: Number(f[4]), dst: f[5]!, dport: Number(f[6]) },
    sampleSeq: Number(f[7]),
    streamOffset: Number(f[8]),
    segStart: Number(f[9]),
    segEnd: Number(f[10]),
    attempt: Number(f[11]),
    retrans: !!(flags & F_ROW_RETRANS),
    interval: !!(flags & F_ROW_INTERVAL),
    complete: !!(flags & F_ROW_COMPLETE),
    layers,
    devices: hops.map((h): DeviceHop => {
      const [ifindex, netns, rx, ns] = h.split(':');
      return { ifindex: Number(ifindex), netns: Number(netns), rx: rx === '1', tsNs: BigInt(ns!) };
    }),
  };
}

/** The records of a stream entry's field list (node, first, last, n, format, rows). */
export function decodeEntry(fields: string[]): PacketRecord[] {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!, fields[i + 1]!);
  if (m.get('format') !== ROW_FORMAT) throw new Error(`record stream entry: format ${m.get('format') ?? '(none)'}, expected ${ROW_FORMAT}`);
  return m.get('rows')!.split('\n').filter(Boolean).map((l) => decodeRow(m.get('node')!, l));
}

/**
 * Histogram snapshots ("hist1"): one line per non-empty log2 bucket of each in-kernel
 * adjacent-layer histogram, cumulative since the observer started, in the column order of the
 * layer_histograms table after its server_id and taken_at.
 */
export const HIST_FORMAT = 'hist1';
export const HIST_COLUMNS = ['port', 'dir', 'from_layer', 'to_layer', 'bucket', 'count'] as const;

export function encodeHistograms(hists: PairHistogram[]): string {
  let out = '';
  for (const h of hists) h.buckets.forEach((c, b) => c > 0n && (out += `${h.port}\t${h.dir}\t${h.from}\t${h.to}\t${b}\t${c}\n`));
  return out;
}
