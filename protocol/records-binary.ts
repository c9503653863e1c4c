/**
 * The binary record format ("rb1"): one stream entry holds a batch of one observer's records in
 * a fixed little-endian layout, each flow's addresses written once per entry, so the stream stage
 * decodes a record with a few typed-array reads instead of splitting and parsing text. The text
 * format ("rows2", records.ts) stays accepted for one release.
 *
 *   header   16 bytes   magic "LSR1", u16 version (1), u16 reserved, u32 records, u16 flows, u16 reserved
 *   flows    40 bytes each: u8 family (4|6), u8 reserved, u16 sport, u16 dport, u16 reserved,
 *            16 bytes src, 16 bytes dst (IPv4 in the first 4)
 *   records  RECORD_BYTES each (offsets below): observer_seq, the flow's index, direction, flags,
 *            attempt, which layers are present, the number of device hops, the sample's sequence
 *            numbers, and per layer (sock, tcp, ip, dev) u64 ns, u32 thread, u16 cpu
 *   hops     24 bytes each, in record order: u32 ifindex, u32 netns, u8 rx, 3 reserved, u64 ns
 *
 * Every entry is checked in full before anything is read from it (sizes, counts, indexes, enum
 * values); a bad one throws RecordFormatError saying what is wrong, so the stage can set it aside.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { LAYERS, type Direction, type Layer } from './layers.js';
import { decodeRow, F_ROW_COMPLETE, F_ROW_INTERVAL, F_ROW_RETRANS, ROW_FORMAT, type DeviceHop, type Flow, type PacketRecord } from './records.js';

export const BINARY_FORMAT = 'rb1';
export const BINARY_VERSION = 1;
const MAGIC = 0x3152534c; // "LSR1" read as a little-endian u32
export const HEADER_BYTES = 16;
export const FLOW_BYTES = 40;
export const HOP_BYTES = 24;
/** Largest entry accepted: 65,535 flows and what a batch of records can hold, well below Redis' limits. */
export const MAX_ENTRY_BYTES = 8 << 20;

/** Byte offsets within a record. */
export const REC = {
  seqLo: 0, seqHi: 4, flow: 8, dir: 12, flags: 13, attempt: 14, layerMask: 15, hops: 16,
  sampleSeq: 20, streamOffset: 24, segStart: 28, segEnd: 32,
  /** Layer i's u64 ns at layers + 16 i, its thread at + 8, its CPU at + 12. */
  layers: 36,
} as const;
export const RECORD_BYTES = REC.layers + 16 * LAYERS.length; // 100
/** Each layer's bit in a record's layer mask, and the offset of its time within the record. */
export const LAYER_BIT = Object.fromEntries(LAYERS.map((l, i) => [l, 1 << i])) as Readonly<Record<Layer, number>>;
export const LAYER_AT = Object.fromEntries(LAYERS.map((l, i) => [l, REC.layers + 16 * i])) as Readonly<Record<Layer, number>>;

export class RecordFormatError extends Error {
  override readonly name = 'RecordFormatError';
}

function addressBytes(family: 4 | 6, text: string): Buffer {
  const out = Buffer.alloc(16);
  if (family === 4) {
    if (!isIPv4(text)) throw new RecordFormatError(`flow address ${JSON.stringify(text)} is not IPv4`);
    text.split('.').forEach((p, i) => (out[i] = Number(p)));
    return out;
  }
  if (!isIPv6(text)) throw new RecordFormatError(`flow address ${JSON.stringify(text)} is not IPv6`);
  // expand "::" and write 8 groups
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

function addressText(family: number, b: Uint8Array, at: number): string {
  if (family === 4) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!).toString(16));
  // the shortest form, as the observer's text format writes it (longest run of zero groups as "::")
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

const flowKey = (f: Flow) => `${f.family}|${f.src}|${f.sport}|${f.dst}|${f.dport}`;

/** Encodes one observer's batch of records as one entry. */
export function encodeBinary(records: readonly PacketRecord[]): Buffer {
  const flows = new Map<string, number>();
  const flowList: Flow[] = [];
  let hops = 0;
  for (const r of records) {
    const k = flowKey(r.flow);
    if (!flows.has(k)) {
      flows.set(k, flowList.length);
      flowList.push(r.flow);
    }
    hops += r.devices.length;
    if (r.devices.length > 255) throw new RecordFormatError(`a record has ${r.devices.length} device hops; at most 255`);
  }
  if (flowList.length > 0xffff) throw new RecordFormatError(`${flowList.length} flows in one entry; at most 65535`);
  const size = HEADER_BYTES + FLOW_BYTES * flowList.length + RECORD_BYTES * records.length + HOP_BYTES * hops;
  if (size > MAX_ENTRY_BYTES) throw new RecordFormatError(`an entry of ${size} bytes; at most ${MAX_ENTRY_BYTES}: send smaller batches`);
  const b = Buffer.alloc(size);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(BINARY_VERSION, 4);
  b.writeUInt32LE(records.length, 8);
  b.writeUInt16LE(flowList.length, 12);
  let at = HEADER_BYTES;
  for (const f of flowList) {
    b[at] = f.family;
    b.writeUInt16LE(f.sport, at + 2);
    b.writeUInt16LE(f.dport, at + 4);
    addressBytes(f.family, f.src).copy(b, at + 8);
    addressBytes(f.family, f.dst).copy(b, at + 24);
    at += FLOW_BYTES;
  }
  let hopAt = at + RECORD_BYTES * records.length;
  for (const r of records) {
    b.writeUInt32LE(r.observerSeq % 2 ** 32, at + REC.seqLo);
    b.writeUInt32LE(Math.floor(r.observerSeq / 2 ** 32), at + REC.seqHi);
    b.writeUInt32LE(flows.get(flowKey(r.flow))!, at + REC.flow);
    b[at + REC.dir] = r.dir === 'rx' ? 1 : 0;
    b[at + REC.flags] = (r.retrans ? F_ROW_RETRANS : 0) | (r.interval ? F_ROW_INTERVAL : 0) | (r.complete ? F_ROW_COMPLETE : 0);
    b[at + REC.attempt] = Math.min(r.attempt, 255);
    let mask = 0;
    LAYERS.forEach((l, i) => {
      const s = r.layers[l];
      if (!s) return;
      mask |= 1 << i;
      const o = at + REC.layers + 16 * i;
      b.writeBigUInt64LE(s.tsNs, o);
      b.writeUInt32LE(s.tid >>> 0, o + 8);
      b.writeUInt16LE(s.cpu, o + 12);
    });
    b[at + REC.layerMask] = mask;
    b[at + REC.hops] = r.devices.length;
    b.writeUInt32LE(r.sampleSeq >>> 0, at + REC.sampleSeq);
    b.writeUInt32LE(r.streamOffset >>> 0, at + REC.streamOffset);
    b.writeUInt32LE(r.segStart >>> 0, at + REC.segStart);
    b.writeUInt32LE(r.segEnd >>> 0, at + REC.segEnd);
    for (const h of r.devices) {
      b.writeUInt32LE(h.ifindex >>> 0, hopAt);
      b.writeUInt32LE(h.netns >>> 0, hopAt + 4);
      b[hopAt + 8] = h.rx ? 1 : 0;
      b.writeBigUInt64LE(h.tsNs, hopAt + 16);
      hopAt += HOP_BYTES;
    }
    at += RECORD_BYTES;
  }
  return b;
}

/** A checked entry: where its parts start, for the readers below. */
export interface BinaryEntry {
  buf: Buffer;
  view: DataView;
  records: number;
  flows: number;
  flowsAt: number;
  recordsAt: number;
  hopsAt: number;
}

/** Checks an entry in full and returns it ready to read; throws RecordFormatError otherwise. */
export function openBinary(buf: Buffer): BinaryEntry {
  const bad = (what: string) => new RecordFormatError(`binary record entry (${buf.length} bytes): ${what}`);
  if (buf.length > MAX_ENTRY_BYTES) throw bad(`larger than ${MAX_ENTRY_BYTES} bytes`);
  if (buf.length < HEADER_BYTES) throw bad('shorter than its header');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw bad('not a latscope binary record entry (magic)');
  const version = view.getUint16(4, true);
  if (version !== BINARY_VERSION) throw bad(`version ${version}; this latscope reads version ${BINARY_VERSION}: upgrade it`);
  const records = view.getUint32(8, true);
  const flows = view.getUint16(12, true);
  const flowsAt = HEADER_BYTES;
  const recordsAt = flowsAt + FLOW_BYTES * flows;
  const hopsAt = recordsAt + RECORD_BYTES * records;
  if (hopsAt > buf.length) throw bad(`${records} records and ${flows} flows do not fit`);
  for (let f = 0; f < flows; f++) {
    const fam = buf[flowsAt + FLOW_BYTES * f]!;
    if (fam !== 4 && fam !== 6) throw bad(`flow ${f}: family ${fam}`);
  }
  let hops = 0;
  for (let r = 0, at = recordsAt; r < records; r++, at += RECORD_BYTES) {
    if (view.getUint32(at + REC.flow, true) >= flows) throw bad(`record ${r}: flow index beyond the ${flows} flows`);
    if (buf[at + REC.dir]! > 1) throw bad(`record ${r}: direction ${buf[at + REC.dir]}`);
    if (buf[at + REC.flags]! > 7) throw bad(`record ${r}: flags ${buf[at + REC.flags]}`);
    if (buf[at + REC.layerMask]! > 15) throw bad(`record ${r}: layer mask ${buf[at + REC.layerMask]}`);
    hops += buf[at + REC.hops]!;
  }
  if (hopsAt + HOP_BYTES * hops !== buf.length) throw bad(`${hops} device hops need ${HOP_BYTES * hops} bytes after the records, ${buf.length - hopsAt} are there`);
  for (let h = 0; h < hops; h++) if (buf[hopsAt + HOP_BYTES * h + 8]! > 1) throw bad(`device hop ${h}: rx ${buf[hopsAt + HOP_BYTES * h + 8]}`);
  return { buf, view, records, flows, flowsAt, recordsAt, hopsAt };
}

/** The flows of a checked entry. */
export function entryFlows(e: BinaryEntry): Flow[] {
  const out: Flow[] = [];
  for (let f = 0; f < e.flows; f++) {
    const at = e.flowsAt + FLOW_BYTES * f;
    const family = e.buf[at] as 4 | 6;
    out.push({ family, sport: e.view.getUint16(at + 2, true), dport: e.view.getUint16(at + 4, true), src: addressText(family, e.buf, at + 8), dst: addressText(family, e.buf, at + 24) });
  }
  return out;
}

/** Decodes an entry into records (the form the rest of the project uses). */
export function decodeBinary(node: string, buf: Buffer): PacketRecord[] {
  const e = openBinary(buf);
  const flows = entryFlows(e);
  const out: PacketRecord[] = [];
  let hopAt = e.hopsAt;
  for (let r = 0, at = e.recordsAt; r < e.records; r++, at += RECORD_BYTES) {
    out.push(binaryRecord(node, e, flows, r, hopAt));
    hopAt += HOP_BYTES * e.buf[at + REC.hops]!;
  }
  return out;
}

/** Record r of a checked entry, its device hops from byte hopAt (the hops of the records before it come first). */
export function binaryRecord(node: string, e: BinaryEntry, flows: Flow[], r: number, hopAt: number): PacketRecord {
  const { view, buf: b } = e;
  const at = e.recordsAt + RECORD_BYTES * r;
  const flags = b[at + REC.flags]!;
  const mask = b[at + REC.layerMask]!;
  const layers: PacketRecord['layers'] = {};
  LAYERS.forEach((l, i) => {
    if (!(mask & (1 << i))) return;
    const o = at + REC.layers + 16 * i;
    layers[l] = { tsNs: view.getBigUint64(o, true), tid: view.getUint32(o + 8, true), cpu: view.getUint16(o + 12, true) };
  });
  const devices: DeviceHop[] = [];
  for (let h = 0; h < b[at + REC.hops]!; h++, hopAt += HOP_BYTES)
    devices.push({ ifindex: view.getUint32(hopAt, true), netns: view.getUint32(hopAt + 4, true), rx: b[hopAt + 8] === 1, tsNs: view.getBigUint64(hopAt + 16, true) });
  return {
    node,
    observerSeq: view.getUint32(at + REC.seqHi, true) * 2 ** 32 + view.getUint32(at + REC.seqLo, true),
    dir: (b[at + REC.dir] ? 'rx' : 'tx') as Direction,
    flow: flows[view.getUint32(at + REC.flow, true)]!,
    sampleSeq: view.getUint32(at + REC.sampleSeq, true),
    streamOffset: view.getUint32(at + REC.streamOffset, true),
    segStart: view.getUint32(at + REC.segStart, true),
    segEnd: view.getUint32(at + REC.segEnd, true),
    attempt: b[at + REC.attempt]!,
    retrans: !!(flags & F_ROW_RETRANS),
    interval: !!(flags & F_ROW_INTERVAL),
    complete: !!(flags & F_ROW_COMPLETE),
    layers,
    devices,
  };
}

/**
 * The records of a records-stream entry read as Buffers (tests and tools): binary (rb1) or text
 * rows (rows2). Throws RecordFormatError for anything else.
 */
export function entryRecords(fields: readonly Buffer[]): PacketRecord[] {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!.toString(), fields[i + 1]!);
  const node = m.get('node')?.toString() ?? '', format = m.get('format')?.toString();
  if (format === BINARY_FORMAT) return decodeBinary(node, m.get('records') ?? Buffer.alloc(0));
  if (format === ROW_FORMAT) return (m.get('rows')?.toString('latin1') ?? '').split('\n').filter(Boolean).map((l) => decodeRow(node, l));
  throw new RecordFormatError(`a records entry of format ${JSON.stringify(format)}`);
}
