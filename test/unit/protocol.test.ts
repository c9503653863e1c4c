/**
 * protocol/ against the C headers it mirrors: every #define with its value, and every shared
 * struct's field offsets and sizes (by the C layout rules), so a header change that TypeScript
 * does not follow fails here, before any kernel is involved. Also the stream-entry helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { LATENCY_H, LT_EVENT, LT_SETTINGS } from '../../protocol/latency.js';
import { TIMESYNC_H, TS_INFLIGHT, TS_PEER, TS_PROBE, TS_SAMPLE, decodeProbe, encodeRequest, keyBytes, keyFromHex, keyToHex, macOk, newKey, signReply, REQUEST, REPLY } from '../../protocol/timesync.js';
import { siphash24 } from '../../protocol/siphash.js';
import { struct, layoutDifferences, type FieldType, type StructLayout } from '../../protocol/layout.js';
import { entryFields, toFields, decodeHeartbeat } from '../../protocol/redis.js';
import { PAIRS } from '../../protocol/layers.js';

const header = (rel: string) => readFileSync(join(projectRoot, rel), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');

function defines(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** A struct of a header, laid out by the same rules as protocol/layout.ts. */
function cStruct(text: string, name: string): StructLayout {
  const body = new RegExp(`struct ${name} \\{([^}]*)\\};`).exec(text)?.[1];
  assert.ok(body, `struct ${name} in the header`);
  const fields: Record<string, FieldType> = {};
  for (const decl of body.split(';').map((d) => d.trim()).filter(Boolean)) {
    const m = /^__([us])(8|16|32|64)\s+(.*)$/.exec(decl);
    assert.ok(m, `field declaration "${decl}"`);
    const t = `${m[1] === 's' ? 's' : 'u'}${m[2]}`;
    for (const part of m[3]!.split(',').map((p) => p.trim())) {
      const arr = /^(\w+)\[(\d+)\]$/.exec(part);
      fields[arr ? arr[1]! : part] = arr ? ([t, Number(arr[2])] as FieldType) : (t as FieldType);
    }
  }
  return struct(name, fields);
}

const HEADERS = [
  { file: 'observer/bpf/latency.h', guard: 'LATSCOPE_LATENCY_H', constants: LATENCY_H, structs: [LT_EVENT] },
  { file: 'timesync/bpf/timesync.h', guard: 'LATSCOPE_TIMESYNC_H', constants: TIMESYNC_H, structs: [TS_PROBE, TS_SAMPLE, TS_PEER, TS_INFLIGHT] },
];

for (const h of HEADERS)
  test(`${h.file}: every constant and ${h.structs.map((x) => `struct ${x.name}`).join(', ')} as protocol/ has them`, () => {
    const text = header(h.file);
    const d = defines(text);
    delete d[h.guard];
    assert.deepEqual(d, { ...h.constants });
    for (const l of h.structs) assert.deepEqual(layoutDifferences(l, cStruct(text, l.name), h.file), []);
  });

test('observer/bpf/latency.bpf.c: every const volatile setting as LT_SETTINGS declares it', () => {
  const c = header('observer/bpf/latency.bpf.c');
  const declared: Record<string, FieldType> = {};
  for (const m of c.matchAll(/^const volatile __(u|s)(8|16|32|64) (\w+)(?:\[(\d+)\])?\s*[=;]/gm)) {
    const t = `${m[1]}${m[2]}` as 'u8';
    declared[m[3]!] = m[4] ? ([t, Number(m[4])] as FieldType) : t;
  }
  assert.deepEqual(declared, { ...LT_SETTINGS });
});

test('sizes the kernel side relies on', () => {
  assert.equal(LT_EVENT.size, 88);
  assert.equal(TS_PROBE.size, 56);
  assert.equal(PAIRS.length, LATENCY_H.LT_PAIRS);
});

test('a moved field is named with both offsets', () => {
  const moved = struct('x', { a: 'u32', b: 'u64' });
  const want = struct('x', { b: 'u64', a: 'u32' });
  assert.match(layoutDifferences(want, moved, 'x.o').join('; '), /struct x: field b is at offset 8 \(8 bytes\) in x\.o, TypeScript expects offset 0/);
  assert.equal(struct('y', { a: 'u8', b: 'u32', c: 'u16' }).size, 12, 'C padding');
});

test('the probe encodes and decodes in network byte order, signed; keys are 32 hex digits, 16 still read', () => {
  const key = keyBytes(0x000102030405060708090a0b0c0d0e0fn);
  const buf = encodeRequest(key, { round: 7, seq: 0xfffffffe, nonce: 0x1122334455667788n, issued: 99n });
  assert.equal(buf.length, TS_PROBE.size);
  assert.equal(buf.readUInt32BE(0), TIMESYNC_H.TS_MAGIC);
  const d = decodeProbe(buf);
  assert.ok(d.ok);
  assert.deepEqual({ ...d.probe, mac: 0n }, { type: REQUEST, round: 7, seq: 0xfffffffe, nonce: 0x1122334455667788n, issued: 99n, t2: 0n, t3: 0n, mac: 0n });
  // the request's MAC is SipHash-2-4 of its first 32 bytes; the reply's of its first 48, type REPLY
  assert.equal(d.probe.mac, siphash24(key, buf.subarray(0, 32)).readBigUInt64LE(0));
  assert.ok(macOk(key, buf));
  assert.ok(!macOk(keyBytes(1n), buf), 'another key');
  const reply = signReply(key, Buffer.from(buf), 5n, 6n);
  assert.equal(reply[5], REPLY);
  assert.ok(macOk(key, reply));
  assert.equal(reply.readBigUInt64LE(TS_PROBE.offsets.mac), siphash24(key, reply.subarray(0, 48)).readBigUInt64LE(0));
  for (const field of ['round', 'seq', 'nonce', 'issued', 't2', 't3'] as const) {
    const forged = Buffer.from(reply);
    const at = TS_PROBE.offsets[field];
    forged.writeUInt8(forged.readUInt8(at) ^ 1, at);
    assert.ok(!macOk(key, forged), `${field} changed: the MAC no longer fits`);
  }
  assert.deepEqual(decodeProbe(buf.subarray(0, TS_PROBE.size - 1)), { ok: false, reason: 'truncated' });
  assert.equal(keyToHex(0xabn), '000000000000000000000000000000ab');
  assert.equal(keyFromHex(' 000102030405060708090a0b0c0d0e0f\n'), 0x000102030405060708090a0b0c0d0e0fn);
  assert.equal(keyFromHex('0123456789abcdef'), 0x0123456789abcdef0123456789abcdefn, 'a 64-bit key of the first release');
  assert.throws(() => keyFromHex('01234567'), /32 hex digits/);
  assert.equal(keyToHex(newKey()).length, 32);
});

test('SipHash-2-4 gives what OpenSSL gives, for every length from 0 to 64 bytes (the paper\'s key)', () => {
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const dir = mkdtempSync(join(tmpdir(), 'latscope-siphash-'));
  try {
    for (let n = 0; n <= 64; n++) {
      const m = Buffer.from([...Array(n).keys()]);
      writeFileSync(join(dir, 'm'), m);
      const want = execFileSync('openssl', ['mac', '-macopt', `hexkey:${key.toString('hex')}`, '-macopt', 'size:8', '-in', join(dir, 'm'), 'SIPHASH'], { encoding: 'utf8' }).trim().toLowerCase();
      assert.equal(siphash24(key, m).toString('hex'), want, `${n} bytes`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // the paper's own vector: 15 bytes 00..0e
  assert.equal(siphash24(key, Buffer.from([...Array(15).keys()])).readBigUInt64LE(0), 0xa129ca6149be45e5n);
});

test('stream entries: fields to a map and back; a heartbeat carries its time', () => {
  const f = toFields({ node: 'n1', n: 3 });
  assert.deepEqual(f, ['node', 'n1', 'n', '3']);
  assert.equal(entryFields(f).get('n'), '3');
  assert.equal(entryFields(null).size, 0);
  assert.deepEqual(decodeHeartbeat('1700000000000-0', f), { node: 'n1', n: '3', atMs: '1700000000000' });
});
