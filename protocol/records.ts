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
  flow: col('flow_id'), sampleSeq: col('sample_seq'), offset: col('stream_offset'), attempt: col('attempt'), flags: col('flags'),
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

/** The fields of a row line that the analysis needs (scanRow fills one, reused line after line). */
export interface ScannedRow {
  seq: number;
  tx: boolean;
  flow: number;
  sampleSeq: number;
  offset: number;
  attempt: number;
  flags: number;
  /** Layer times: a number when exact (below 2^53), else the digits; null when the layer was not seen. */
  sock: number | string | null;
  tcp: number | string | null;
  ip: number | string | null;
  dev: number | string | null;
  /** The last device crossing's time (null without crossings), and every crossing when there were several. */
  last: number | string | null;
  hops: string | null;
}

export const scannedRow = (): ScannedRow => ({ seq: 0, tx: false, flow: 0, sampleSeq: 0, offset: 0, attempt: 0, flags: 0, sock: null, tcp: null, ip: null, dev: null, last: null, hops: null });

// scanRow's cursor: the start of the next field (-1: the line ended early or a field was bad)
let P = 0;
// where scanRow's line ends (its text may go on: a line read in place within an entry's rows)
let END = 0;

/** The field at P as 1 to 20 digits (a leading '-' when `signed`), as a double; NaN when it is anything else. Moves P past its tab. */
function num(line: string, signed: boolean): number {
  if (P < 0) return NaN;
  let i = P, v = 0, neg = false;
  if (signed && line.charCodeAt(i) === 45) (neg = true), i++;
  const from = i;
  const n = END;
  let c = 0;
  while (i < n && (c = line.charCodeAt(i)) >= 48 && c <= 57) (v = v * 10 + (c - 48)), i++;
  if (i === from || i - from > 20 || i >= n || c !== 9) {
    P = -1;
    return NaN;
  }
  P = i + 1;
  return neg ? -v : v;
}

/** A time, cpu or tid field: digits (a number when exact, else the digits) or \N (null); undefined when malformed. Moves P past its tab. */
function time(line: string): number | string | null | undefined {
  if (P < 0) return undefined;
  const p = P;
  if (line.charCodeAt(p) === 92) {
    if (line.charCodeAt(p + 1) !== 78 || line.charCodeAt(p + 2) !== 9) return (P = -1), undefined;
    P = p + 3;
    return null;
  }
  const v = num(line, false);
  if (v !== v) return undefined;
  return v <= Number.MAX_SAFE_INTEGER ? v : line.slice(p, P - 1);
}

/** An address field: 2 to 45 of [0-9A-Fa-f.:]. Moves P past its tab. */
function addr(line: string): boolean {
  if (P < 0) return false;
  let i = P;
  const n = END;
  let c = 0;
  while (i < n && (((c = line.charCodeAt(i)) >= 48 && c <= 58) || c === 46 || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) i++;
  if (i - P < 2 || i - P > 45 || i >= n || c !== 9) return (P = -1), false;
  P = i + 1;
  return true;
}

/**
 * One row line checked and read in a single pass, without splitting it: exactly the lines the
 * row format's regex accepts pass (a test holds the two together); anything else returns false
 * and leaves `r` half-filled. The stream stage's hot path: a split and the regex cost ~2 µs a
 * line, and their garbage as much again. `from` and `to` read a line in place within a longer
 * text (an entry's rows, `to` at its newline), without slicing it out.
 */
export function scanRow(line: string, r: ScannedRow, from = 0, to = line.length): boolean {
  P = from;
  END = to;
  r.seq = num(line, false);
  if (P < 0) return false;
  const d0 = line.charCodeAt(P);
  if ((d0 !== 116 && d0 !== 114) || line.charCodeAt(P + 1) !== 120 || line.charCodeAt(P + 2) !== 9) return false;
  r.tx = d0 === 116;
  const f0 = line.charCodeAt(P + 3);
  if ((f0 !== 52 && f0 !== 54) || line.charCodeAt(P + 4) !== 9) return false;
  P += 5;
  if (!addr(line)) return false;
  const sport = num(line, false);
  if (!addr(line)) return false;
  const dport = num(line, false);
  r.flow = num(line, false);
  r.sampleSeq = num(line, false);
  r.offset = num(line, true);
  const segStart = num(line, false), segEnd = num(line, false);
  r.attempt = num(line, false);
  r.flags = num(line, false);
  if (P < 0 || (r.seq + sport + dport + r.flow + r.sampleSeq + r.offset + segStart + segEnd + r.attempt + r.flags) !== (r.seq + sport + dport + r.flow + r.sampleSeq + r.offset + segStart + segEnd + r.attempt + r.flags)) return false;
  const sock = time(line), c0 = time(line), t0 = time(line);
  const tcp = time(line), c1 = time(line), t1 = time(line);
  const ip = time(line), c2 = time(line), t2 = time(line);
  const dev = time(line), c3 = time(line), t3 = time(line);
  if (P < 0 || c0 === undefined || t0 === undefined || c1 === undefined || t1 === undefined || c2 === undefined || t2 === undefined || c3 === undefined || t3 === undefined) return false;
  // cpu and tid are digits or \N, never past 20 digits (time() already checked), so only the times are kept
  r.sock = sock!;
  r.tcp = tcp!;
  r.ip = ip!;
  r.dev = dev!;
  r.last = null;
  r.hops = null;
  const p = P, n = END;
  if (p === n) return true;
  // crossings "ifindex:netns:rx:ns" joined by commas: parts of 1 to 20 digits, rx 0 or 1
  let colons = 0, partLen = 0, lastFrom = -1, several = false;
  for (let i = p; i <= n; i++) {
    const c = i < n ? line.charCodeAt(i) : 44;
    if (c >= 48 && c <= 57) {
      partLen++;
      continue;
    }
    if ((c !== 58 && c !== 44) || partLen === 0 || partLen > 20) return false;
    if (colons === 2 && c === 58 && (partLen !== 1 || line.charCodeAt(i - 1) > 49)) return false;
    partLen = 0;
    if (c === 58) {
      if (++colons === 3) lastFrom = i + 1;
      else if (colons > 3) return false;
    } else {
      if (colons !== 3) return false;
      if (i < n) several = true;
      colons = 0;
    }
  }
  let v = 0;
  for (let i = lastFrom; i < n; i++) v = v * 10 + (line.charCodeAt(i) - 48);
  r.last = v <= Number.MAX_SAFE_INTEGER ? v : line.slice(lastFrom, n);
  r.hops = several ? line.slice(p, n) : null;
  return true;
}
