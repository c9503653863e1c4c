/**
 * Record assembly from layer events, the sampling rule and the row wire format, with synthetic
 * events: no kernel, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordAssembler } from '../../observer/records.js';
import { F_DEV_RX, F_HOP, F_INTERVAL, F_RETRANS, type LayerEvent } from '../../observer/probe.js';
import { predictedSamples, sampleOffsets, seqDiff } from '../../observer/sampling.js';
import { decodeRow, encodeRow, encodeRows, flowId, ROW_COLUMNS, validRows, type PacketRecord } from '../../protocol/records.js';
import type { Layer } from '../../protocol/layers.js';

const flow = { family: 4 as const, src: '10.0.0.1', sport: 40000, dst: '10.0.0.2', dport: 5000 };

function ev(layer: Layer, dir: 'tx' | 'rx', start: number, end: number, tsNs: bigint, o: Partial<LayerEvent> = {}): LayerEvent {
  return { tsNs, tcpNs: 0n, startSeq: start >>> 0, endSeq: end >>> 0, baseSeq: 1000, isampleSeq: 0, ifindex: 0, netns: 0, tid: 7, cpu: 1, layer, dir, flags: 0, flow, ...o };
}

function assembler(size = 100, maxPending = 100_000) {
  const out: PacketRecord[] = [];
  const a = new RecordAssembler({ node: 'n1', sampleSize: size, lingerMs: 10, timeoutMs: 1000, maxSamplesPerEvent: 4, maxPending }, (r) => out.push(r));
  return { a, out };
}

test('sampling: byte k*size-1 of the stream, modulo 2^32, the same for any split into segments', () => {
  assert.deepEqual(sampleOffsets(0, 250, 100, 10), [99, 199]);
  assert.deepEqual(sampleOffsets(99, 1, 100, 10), [99]);
  assert.deepEqual(sampleOffsets(100, 99, 100, 10), []);
  assert.deepEqual(sampleOffsets(0, 1000, 100, 3), [99, 199, 299], 'capped');
  assert.equal(predictedSamples(4 << 20, 65536), 64);
  const whole = sampleOffsets(0, 10000, 300, 1000);
  const split = [0, 1234, 5000, 7777].flatMap((s, i, a) => sampleOffsets(s, (a[i + 1] ?? 10000) - s, 300, 1000));
  assert.deepEqual(split, whole);
  assert.equal(seqDiff(5, 0xfffffffb), 10, 'sequence numbers wrap');
});

test('a transmitted sample: one complete record with every layer in order, TCP time from the IP event', () => {
  const { a, out } = assembler();
  a.add(ev('sock', 'tx', 1000, 1150, 100n), 0);
  a.add(ev('ip', 'tx', 1000, 1150, 300n, { tcpNs: 200n }), 0);
  a.add(ev('dev', 'tx', 1000, 1150, 400n, { ifindex: 2, netns: 9 }), 0);
  a.add(ev('dev', 'tx', 1000, 1150, 450n, { ifindex: 5, netns: 1, flags: F_HOP }), 0);
  a.flush(5);
  assert.equal(out.length, 0, 'waits for more hops during the linger time');
  a.flush(20);
  assert.equal(out.length, 1);
  const r = out[0]!;
  assert.equal(r.sampleSeq, 1099);
  assert.equal(r.streamOffset, 99);
  assert.ok(r.complete && !r.retrans && r.attempt === 0);
  assert.deepEqual([r.layers.sock!.tsNs, r.layers.tcp!.tsNs, r.layers.ip!.tsNs, r.layers.dev!.tsNs], [100n, 200n, 300n, 400n]);
  assert.deepEqual(r.devices.map((d) => [d.ifindex, d.tsNs]), [[2, 400n], [5, 450n]]);
  assert.ok(r.observerSeq > 0);
});

test('a retransmission is its own record (attempt 1, flagged), complete without the socket layer', () => {
  const { a, out } = assembler();
  a.add(ev('sock', 'tx', 1000, 1150, 100n), 0);
  a.add(ev('ip', 'tx', 1000, 1150, 300n, { tcpNs: 200n }), 0);
  a.add(ev('dev', 'tx', 1000, 1150, 400n), 0);
  a.add(ev('ip', 'tx', 1000, 1150, 9300n, { tcpNs: 9200n, flags: F_RETRANS }), 1);
  a.add(ev('dev', 'tx', 1000, 1150, 9400n, { flags: F_RETRANS }), 1);
  a.flush(100, true);
  assert.equal(out.length, 2);
  const [first, again] = out as [PacketRecord, PacketRecord];
  assert.ok(first.complete && !first.retrans && first.attempt === 0);
  assert.ok(again.complete && again.retrans && again.attempt === 1 && !again.layers.sock);
  assert.equal(again.layers.tcp!.tsNs, 9200n);
  assert.ok(again.observerSeq > first.observerSeq);
});

test('received: device → IP → TCP → socket; an incomplete record goes out after the timeout, counted', () => {
  const { a, out } = assembler();
  a.add(ev('dev', 'rx', 1000, 1150, 10n, { flags: F_DEV_RX }), 0);
  a.add(ev('ip', 'rx', 1000, 1150, 20n), 0);
  a.add(ev('tcp', 'rx', 1000, 1150, 30n), 0);
  a.add(ev('sock', 'rx', 1000, 1150, 40n), 0);
  a.add(ev('dev', 'rx', 1290, 1310, 50n, { flags: F_DEV_RX }), 0); // holds offset 299, never read
  a.flush(20);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.complete);
  a.flush(1500);
  assert.equal(out.length, 2);
  assert.equal(out[1]!.complete, false);
  assert.equal(a.counters.incomplete, 1);
});

test('received twice (the sender retransmitted before the reader took the first copy): the reader\'s time goes to the copy TCP took; the duplicate TCP dropped is its own record, without the socket layer', () => {
  const { a, out } = assembler();
  a.add(ev('dev', 'rx', 1000, 1150, 10n, { flags: F_DEV_RX }), 0);
  a.add(ev('ip', 'rx', 1000, 1150, 20n), 0);
  a.add(ev('tcp', 'rx', 1000, 1150, 30n), 0);
  a.add(ev('dev', 'rx', 1000, 1150, 500n, { flags: F_DEV_RX | F_RETRANS }), 1);
  a.add(ev('ip', 'rx', 1000, 1150, 510n, { flags: F_RETRANS }), 1);
  a.add(ev('sock', 'rx', 1000, 1150, 600n), 2);
  assert.equal(a.pendingCount, 2);
  assert.equal(a.state().assembling, 2, 'both copies in the gauge (latscope_records_assembling)');
  a.flush(20);
  assert.equal(out.length, 1, 'the first copy, complete once read');
  const first = out[0]!;
  assert.ok(first.complete && !first.retrans && first.attempt === 0);
  assert.deepEqual([first.layers.dev!.tsNs, first.layers.tcp!.tsNs, first.layers.sock!.tsNs], [10n, 30n, 600n]);
  a.flush(2000);
  assert.equal(out.length, 2);
  const dup = out[1]!;
  assert.ok(!dup.complete && dup.retrans && dup.attempt === 1 && !dup.layers.sock && dup.layers.ip!.tsNs === 510n);
  assert.equal(a.counters.incomplete, 1);
  assert.equal(a.pendingCount, 0);
  assert.equal(a.state().assembling, 0);
});

test('the interval rule marks one more byte; samples beyond the per-event cap are counted, not lost silently', () => {
  const { a, out } = assembler();
  a.add(ev('sock', 'tx', 1000, 1050, 1n, { flags: F_INTERVAL, isampleSeq: 1049 }), 0);
  a.flush(0, true);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.interval);
  assert.equal(out[0]!.streamOffset, 49);
  const big = assembler(10);
  big.a.add(ev('sock', 'tx', 1000, 1100, 1n), 0); // ten sample bytes, four kept
  big.a.flush(0, true);
  assert.equal(big.out.length, 4);
  assert.equal(big.a.counters.samplesCapped, 6);
});

test('the row format round-trips a record; the flow id is the same on both ends and a safe integer', () => {
  const r: PacketRecord = {
    node: 'n1', observerSeq: 1764000000000123, dir: 'rx', flow: { family: 6, src: 'fd00::1', sport: 1, dst: 'fd00::2', dport: 5000 },
    sampleSeq: 4294967295, streamOffset: 7, segStart: 4294967000, segEnd: 100, attempt: 2, retrans: true, interval: false, complete: true,
    layers: { dev: { tsNs: 18446744073709551000n, cpu: 1, tid: 2 }, sock: { tsNs: 5n, cpu: 0, tid: 99 } },
    devices: [{ ifindex: 3, netns: 4026531840, rx: true, tsNs: 18446744073709551000n }],
  };
  const line = encodeRow(r);
  assert.equal(line.split('\t').length, ROW_COLUMNS.length);
  assert.deepEqual(decodeRow('n1', line), r);
  const id = flowId(r.flow);
  assert.ok(Number.isSafeInteger(id) && id > 0);
  assert.equal(flowId({ ...r.flow }), id);
  assert.notEqual(flowId({ ...r.flow, sport: 2 }), id);
});

const rowRecord = (seq: number): PacketRecord => ({
  node: 'ing', observerSeq: seq, dir: 'rx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: seq, streamOffset: seq,
  segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true,
  layers: { dev: { tsNs: 10n, cpu: 0, tid: 1 }, sock: { tsNs: 13n, cpu: 1, tid: 7 } },
  devices: [{ ifindex: 2, netns: 4026531840, rx: true, tsNs: 10n }],
});

test('the row check takes what encodeRow writes and nothing else', () => {
  const good = encodeRows([rowRecord(1), rowRecord(2)]);
  assert.ok(validRows(good, 2));
  assert.ok(!validRows(good, 3), 'a count that lies');
  assert.ok(!validRows(good.slice(0, -1), 2), 'no final newline');
  assert.ok(!validRows(good.replace('\trx\t', '\tup\t'), 2), 'an unknown direction');
  assert.ok(!validRows(good.replace(/\t[^\t]*\n/, '\n'), 2), 'a column short');
  assert.ok(!validRows(good.replace('\n', '\textra\n'), 2), 'a column too many');
  assert.ok(!validRows(good.replace('10.0.0.1', "1'; DROP TABLE packets; --"), 2), 'text where an address goes');
  assert.ok(!validRows(good.replace('4026531840:1:10', 'x:1:10'), 2), 'a broken hop');
  assert.ok(!validRows('', 0) && !validRows('\n', 1));
});


test('at most maxPending records wait: beyond, the oldest goes out as it is, counted; observer_seq is wall-time microseconds, increasing', () => {
  const { a, out } = assembler(100, 3);
  const before = Date.now() * 1000;
  for (let k = 0; k < 10; k++) a.add(ev('sock', 'tx', 1000 + 100 * k, 1100 + 100 * k, BigInt(k)), 0);
  assert.equal(a.pendingCount, 3);
  assert.equal(a.counters.evicted, 7);
  assert.deepEqual(out.map((r) => r.sampleSeq), [1099, 1199, 1299, 1399, 1499, 1599, 1699], 'the oldest first');
  assert.ok(out.every((r) => !r.complete));
  a.flush(0, true);
  const seqs = out.map((r) => r.observerSeq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'increasing');
  assert.ok(seqs[0]! >= before && seqs.at(-1)! <= Date.now() * 1000 + 10, 'microseconds of wall time');
});
