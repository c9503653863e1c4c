/**
 * Per-packet records and their wire format between observers and the ingest ("rows2"): one line
 * per record, fields separated by tabs, a missing layer as \N. It is also the column order of the
 * MySQL `packets` table after its server_id, so the ingest loads a stream entry with LOAD DATA as
 * it is, with no parsing in the middle: the fleet formats, the one ingest only forwards.
 *
 *   observer_seq dir family src sport dst dport flow_id sample_seq stream_offset seg_start seg_end
 *   attempt flags  (sock tcp ip dev) x (ns cpu tid)  hops
 *
 * flags: 1 retransmission, 2 sampled by the interval rule, 4 complete. hops: the device
 * crossings in order, "ifindex:netns:rx:ns" joined by commas (rx 1: entering the device).
 * flow_id: a 52-bit hash of the flow in the direction of the data (flowId), the same on the
 * sender and the receiver, so the analyzer joins their records on (flow_id, sample_seq).
 */
import { LAYERS, type Direction, type Layer } from './layers.js';

export interface Flow {
  family: 4 | 6;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

export interface LayerStamp {
  tsNs: bigint;
  cpu: number;
  tid: number;
}

export interface DeviceHop {
  ifindex: number;
  netns: number;
  /** Seen entering the device (receive path) or leaving it (transmit path). */
  rx: boolean;
  tsNs: bigint;
}

export interface PacketRecord {
  node: string;
  /**
   * Per-observer sequence number, for idempotent ingest: (node, observerSeq) is unique, also
   * across restarts of the observer: numbering starts at the start time in ms times 1000, so a
   * new process begins above everything an earlier one numbered unless that one averaged more
   * than a million records per second over its whole life.
   */
  observerSeq: number;
  dir: Direction;
  flow: Flow;
  /** TCP sequence number of the sample byte, and its offset in the stream (mod 2^32). */
  sampleSeq: number;
  streamOffset: number;
  /** Sequence range of the segment that carried it over the first device. */
  segStart: number;
  segEnd: number;
  /** 0: first transmission; n >= 1: the bytes went by again (n counts while earlier records were pending). */
  attempt: number;
  retrans: boolean;
  /** Sampled by the interval rule rather than by size. */
  interval: boolean;
  complete: boolean;
  layers: Partial<Record<Layer, LayerStamp>>;
  /** Every device crossing, in order. */
  devices: DeviceHop[];
}

export const ROW_FORMAT = 'rows2';

/** The packets table's columns in row order (server_id comes first, added by the ingest). */
export const ROW_COLUMNS = [
  'observer_seq', 'dir', 'family', 'src', 'sport', 'dst', 'dport', 'flow_id', 'sample_seq', 'stream_offset', 'seg_start', 'seg_end',
  'attempt', 'flags',
  ...LAYERS.flatMap((l) => [`${l}_ns`, `${l}_cpu`, `${l}_tid`]),
  'hops',
] as const;

/** Where each field sits in a row line (0-based, without server_id), for readers that split a line. */
const col = (c: (typeof ROW_COLUMNS)[number]): number => ROW_COLUMNS.indexOf(c);
export const ROW = {
  seq: col('observer_seq'), dir: col('dir'), family: col('family'), src: col('src'), sport: col('sport'), dst: col('dst'), dport: col('dport'),
  flow: col('flow_id'), sample: col('sample_seq'), offset: col('stream_offset'), attempt: col('attempt'), flags: col('flags'),
  sock: col('sock_ns'), tcp: col('tcp_ns'), ip: col('ip_ns'), dev: col('dev_ns'), hops: col('hops'),
} as const;

export const F_ROW_RETRANS = 1;
export const F_ROW_INTERVAL = 2;
export const F_ROW_COMPLETE = 4;

const FIRST_LAYER_COLUMN = ROW_COLUMNS.indexOf('sock_ns');
const HOPS_COLUMN = ROW_COLUMNS.indexOf('hops');

/** 32-bit FNV-1a of a string, continuing from h. */
function fnv1a(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The flow's id: 52 bits of two FNV-1a hashes of its text form (a safe JavaScript integer, so MySQL's BIGINT comes back as a number). */
export function flowId(f: Flow): number {
  const text = `${f.family}|${f.src}|${f.sport}|${f.dst}|${f.dport}`;
  const hi = fnv1a(text, 0x811c9dc5) & 0xfffff;
  const lo = fnv1a(text, 0x050c5d1f);
  return hi * 2 ** 32 + lo;
}

export function encodeRow(r: PacketRecord): string {
  const flags = (r.retrans ? F_ROW_RETRANS : 0) | (r.interval ? F_ROW_INTERVAL : 0) | (r.complete ? F_ROW_COMPLETE : 0);
  let line = `${r.observerSeq}\t${r.dir}\t${r.flow.family}\t${r.flow.src}\t${r.flow.sport}\t${r.flow.dst}\t${r.flow.dport}\t${flowId(r.flow)}\t${r.sampleSeq}\t${r.streamOffset}\t${r.segStart}\t${r.segEnd}\t${r.attempt}\t${flags}`;
  for (const l of LAYERS) {
    const s = r.layers[l];
    line += s ? `\t${s.tsNs}\t${s.cpu}\t${s.tid}` : '\t\\N\t\\N\t\\N';
  }
  return `${line}\t${encodeHops(r.devices)}`;
}

export const encodeHops = (hops: DeviceHop[]): string => hops.map((h) => `${h.ifindex}:${h.netns}:${h.rx ? 1 : 0}:${h.tsNs}`).join(',');

export function decodeHops(text: string): DeviceHop[] {
  return text
    ? text.split(',').map((h): DeviceHop => {
        const [ifindex, netns, rx, ns] = h.split(':');
        return { ifindex: Number(ifindex), netns: Number(netns), rx: rx === '1', tsNs: BigInt(ns!) };
      })
    : [];
}

const NUM = '\\d{1,20}', OPT = `(?:${NUM}|\\\\N)`, ADDR = '[0-9A-Fa-f.:]{2,45}';
const HOP = `${NUM}:${NUM}:[01]:${NUM}`;
/** One row as encodeRow writes it: anything else would be bent into the table by LOAD DATA. */
const ROW_RE = new RegExp(
  `^${NUM}\t(?:tx|rx)\t[46]\t${ADDR}\t${NUM}\t${ADDR}\t${NUM}\t${NUM}\t${NUM}\t-?${NUM}\t${NUM}\t${NUM}\t${NUM}\t${NUM}` +
    `(?:\t${OPT}){${LAYERS.length * 3}}\t(?:${HOP}(?:,${HOP})*)?$`,
);

/** Whether `body` is exactly `n` rows of the current format (the ingest's check of an entry). */
export function validRows(body: string, n: number): boolean {
  if (!body.endsWith('\n')) return false;
  const lines = body.slice(0, -1).split('\n');
  return lines.length === n && lines.every((l) => ROW_RE.test(l));
}

/** Lines of one stream entry. */
export const encodeRows = (records: PacketRecord[]): string => records.map(encodeRow).join('\n') + '\n';

/** Parses one line back into a record (for tests, the demo and tools; the ingest never does). */
export function decodeRow(node: string, line: string): PacketRecord {
  const f = line.split('\t');
  if (f.length !== ROW_COLUMNS.length) throw new Error(`record row: ${f.length} fields, expected ${ROW_COLUMNS.length}`);
  const flags = Number(f[13]);
  const layers: PacketRecord['layers'] = {};
  LAYERS.forEach((l, i) => {
    const [ns, cpu, tid] = f.slice(FIRST_LAYER_COLUMN + 3 * i, FIRST_LAYER_COLUMN + 3 * i + 3);
    if (ns !== '\\N') layers[l] = { tsNs: BigInt(ns!), cpu: Number(cpu), tid: Number(tid) } satisfies LayerStamp;
  });
  return {
    node,
    observerSeq: Number(f[0]),
    dir: f[1] as Direction,
    flow: { family: Number(f[2]) as 4 | 6, src: f[3]!, sport: Number(f[4]), dst: f[5]!, dport: Number(f[6]) },
    sampleSeq: Number(f[8]),
    streamOffset: Number(f[9]),
    segStart: Number(f[10]),
    segEnd: Number(f[11]),
    attempt: Number(f[12]),
    retrans: !!(flags & F_ROW_RETRANS),
    interval: !!(flags & F_ROW_INTERVAL),
    complete: !!(flags & F_ROW_COMPLETE),
    layers,
    devices: decodeHops(f[HOPS_COLUMN]!),
  };
}
