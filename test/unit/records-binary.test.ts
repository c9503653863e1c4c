/**
 * The binary record format: every field survives a round trip (IPv4 and IPv6 flows, missing
 * layers, device hops, flags, 64-bit times and large observer sequence numbers) exactly as the
 * text format's does, flows are written once per entry, and each kind of malformed entry is
 * refused with a RecordFormatError saying what is wrong, before any record is read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BINARY_VERSION, FLOW_BYTES, HEADER_BYTES, HOP_BYTES, MAX_ENTRY_BYTES, REC, RECORD_BYTES, RecordFormatError, decodeBinary, encodeBinary, openBinary } from '../../protocol/records-binary.js';
import { decodeRow, encodeRow, type PacketRecord } from '../../protocol/records.js';

function record(i: number, v6 = false): PacketRecord {
  const t = 18_000_000_000_000_000_000n + BigInt(i) * 1_000n; // beyond 2^64 / 2 — u64 range used
  return {
    node: 'n1',
    observerSeq: 1_733_000_000_000_000 + i,
    dir: i % 2 ? 'rx' : 'tx',
    flow: v6 ? { family: 6, src: 'fd00::1', sport: 40000 + (i % 3), dst: 'fd00:0:0:1::2', dport: 5000 } : { family: 4, src: '10.231.1.11', sport: 40000 + (i % 3), dst: '10.231.2.12', dport: 5000 },
    sampleSeq: (4_000_000_000 + i) >>> 0,
    streamOffset: i * 8192,
    segStart: (4_294_967_000 + i) >>> 0,
    segEnd: (i * 100) >>> 0,
    attempt: i % 4,
    retrans: i % 5 === 0,
    interval: i % 7 === 0,
    complete: i % 3 !== 0,
    layers: i % 3 === 0 ? { sock: { tsNs: t, cpu: 1, tid: 4_000_000_000 } } : { sock: { tsNs: t, cpu: 1, tid: 77 }, tcp: { tsNs: t + 10n, cpu: 65535, tid: 78 }, ip: { tsNs: t + 20n, cpu: 0, tid: 79 }, dev: { tsNs: t + 30n, cpu: 1, tid: 80 } },
    devices: Array.from({ length: i % 4 }, (_, k) => ({ ifindex: 2 + k, netns: 4_026_531_840 + k, rx: k % 2 === 1, tsNs: t + 40n + BigInt(k) })),
  };
}

test('a batch survives the binary round trip field for field, as the text format does', () => {
  const recs = [...Array.from({ length: 50 }, (_, i) => record(i)), ...Array.from({ length: 10 }, (_, i) => record(i, true))];
  const buf = encodeBinary(recs);
  assert.deepEqual(decodeBinary('n1', buf), recs);
  const v4 = recs.filter((r) => r.flow.family === 4);
  assert.deepEqual(decodeBinary('n1', encodeBinary(v4)), v4.map((r) => decodeRow('n1', encodeRow(r))), 'the same records as the text format gives');
  const e = openBinary(buf);
  assert.equal(e.flows, 6, 'each flow once per entry (3 IPv4, 3 IPv6)');
  assert.equal(e.records, 60);
  assert.equal(decodeBinary('n1', encodeBinary([])).length, 0);
});

test('malformed entries are refused with what is wrong, before anything is read', () => {
  const good = encodeBinary([record(1), record(2), record(3)]);
  const recordsAt = HEADER_BYTES + FLOW_BYTES * openBinary(good).flows;
  const bad = (what: string, change: (b: Buffer) => Buffer, re: RegExp) => {
    const b = change(Buffer.from(good));
    assert.throws(() => decodeBinary('n1', b), (e: unknown) => e instanceof RecordFormatError && re.test(e.message), what);
  };
  bad('truncated', (b) => b.subarray(0, b.length - 1), /hops need|do not fit/);
  bad('one byte too many', (b) => Buffer.concat([b, Buffer.alloc(1)]), /device hops need/);
  bad('shorter than a header', (b) => b.subarray(0, 10), /shorter than its header/);
  bad('text sent as binary', () => Buffer.from('1\ttx\t4\t10.0.0.1\t1\t10.0.0.2\t2\n'), /magic/);
  bad('a newer version', (b) => (b.writeUInt16LE(BINARY_VERSION + 1, 4), b), /version 2; this latscope reads version 1/);
  bad('a flow index beyond the flows', (b) => (b.writeUInt32LE(99, recordsAt + REC.flow), b), /record 0: flow index/);
  bad('a direction of 2', (b) => ((b[recordsAt + RECORD_BYTES + REC.dir] = 2), b), /record 1: direction 2/);
  bad('unknown flags', (b) => ((b[recordsAt + REC.flags] = 8), b), /flags 8/);
  bad('a layer mask of 16', (b) => ((b[recordsAt + REC.layerMask] = 16), b), /layer mask 16/);
  bad('a family of 5', (b) => ((b[HEADER_BYTES] = 5), b), /flow 0: family 5/);
  bad('more records claimed than sent', (b) => (b.writeUInt32LE(1_000_000, 8), b), /do not fit/);
  bad('a hop count that does not match', (b) => ((b[recordsAt + REC.hops] = 9), b), /device hops need/);
  const hopsAt = recordsAt + RECORD_BYTES * 3;
  bad('a hop with rx 7', (b) => ((b[hopsAt + 8] = 7), b), /device hop 0: rx 7/);
  bad('larger than the cap', () => Buffer.alloc(MAX_ENTRY_BYTES + 1), /larger than/);
  assert.equal(HOP_BYTES, 24);
});

test('what cannot be encoded is refused: a bad address, too many hops', () => {
  assert.throws(() => encodeBinary([{ ...record(1), flow: { ...record(1).flow, src: '10.0.0.300' } }]), /not IPv4/);
  assert.throws(() => encodeBinary([{ ...record(1), devices: Array.from({ length: 256 }, () => record(3).devices[0]!) }]), /256 device hops/);
});
