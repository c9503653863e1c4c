/**
 * bench/records-format: what decoding one record costs the stream stage, side by side in one
 * run on the same records: the text format ("rows2", split and parse each line into a record),
 * the binary format ("rb1", checked whole, then decoded into the same records), and a scan of
 * the binary entry's fixed layout without making objects (the flow, the sample and every
 * layer's time, as the join needs them). Rounds interleave the three; medians of ns per record,
 * JSON and one line. Takes seconds.
 *
 *   node dist/bench/records-format.js [--records 200000] [--rounds 5]
 */
import { numberArg, median } from './common.js';
import { decodeRow, encodeRows, type PacketRecord } from '../protocol/records.js';
import { REC, RECORD_BYTES, decodeBinary, encodeBinary, openBinary } from '../protocol/records-binary.js';
import { LAYERS } from '../protocol/layers.js';

const records = numberArg('records', 200_000);
const rounds = numberArg('rounds', 5);
const BATCH = 256;

function record(i: number): PacketRecord {
  const t = 5_000_000_000_000n + BigInt(i) * 10_000n;
  const s = (d: bigint) => ({ tsNs: t + d, cpu: i % 2, tid: 4000 + (i % 7) });
  return {
    node: 'bench', observerSeq: 1_733_000_000_000_000 + i, dir: i % 2 ? 'rx' : 'tx',
    flow: { family: 4, src: '10.231.100.11', sport: 40000 + (i % 64), dst: '10.231.100.12', dport: 5000 },
    sampleSeq: (i * 65536) >>> 0, streamOffset: (i * 65536) >>> 0, segStart: (i * 65536 - 1448) >>> 0, segEnd: (i * 65536 + 1448) >>> 0,
    attempt: 0, retrans: i % 97 === 0, interval: false, complete: true,
    layers: { sock: s(0n), tcp: s(1400n), ip: s(4000n), dev: s(5300n) },
    devices: [{ ifindex: 2, netns: 4026532000, rx: false, tsNs: t + 5300n }],
  };
}

const batches = Array.from({ length: Math.ceil(records / BATCH) }, (_, b) => Array.from({ length: Math.min(BATCH, records - b * BATCH) }, (_, i) => record(b * BATCH + i)));
const text = batches.map((b) => encodeRows(b));
const binary = batches.map((b) => encodeBinary(b));
let sink = 0;

const sides: Record<string, () => void> = {
  text: () => {
    for (const body of text) for (const line of body.split('\n')) if (line) sink += decodeRow('bench', line).sampleSeq;
  },
  binary: () => {
    for (const buf of binary) for (const r of decodeBinary('bench', buf)) sink += r.sampleSeq;
  },
  binaryScan: () => {
    for (const buf of binary) {
      const e = openBinary(buf);
      for (let r = 0, at = e.recordsAt; r < e.records; r++, at += RECORD_BYTES) {
        sink += e.view.getUint32(at + REC.flow, true) + e.view.getUint32(at + REC.sampleSeq, true);
        for (let l = 0; l < LAYERS.length; l++) sink += e.view.getUint32(at + REC.layers + 16 * l, true);
      }
    }
  },
};

const ns: Record<string, number[]> = { text: [], binary: [], binaryScan: [] };
for (let round = 0; round < rounds; round++)
  for (const [name, run] of Object.entries(sides)) {
    const t0 = process.hrtime.bigint();
    run();
    ns[name]!.push(Number(process.hrtime.bigint() - t0) / records);
  }

const result = {
  bench: 'records-format',
  records,
  rounds,
  bytesPerRecord: { text: Math.round(text.reduce((a, t) => a + Buffer.byteLength(t), 0) / records), binary: Math.round(binary.reduce((a, b) => a + b.length, 0) / records) },
  nsPerRecord: { text: median(ns.text!), binary: median(ns.binary!), binaryScan: median(ns.binaryScan!) },
  textOverBinary: median(ns.text!) / median(ns.binary!),
  textOverScan: median(ns.text!) / median(ns.binaryScan!),
  checksum: sink % 1000,
};
console.log(JSON.stringify(result));
console.log(
  `records-format: decoding a record costs ${result.nsPerRecord.text.toFixed(0)} ns as text, ${result.nsPerRecord.binary.toFixed(0)} ns as binary into records (x${result.textOverBinary.toFixed(1)}), ` +
    `${result.nsPerRecord.binaryScan.toFixed(0)} ns scanning the fixed layout (x${result.textOverScan.toFixed(0)}); ${result.bytesPerRecord.text} vs ${result.bytesPerRecord.binary} bytes per record; median of ${rounds} rounds of ${records}`,
);
