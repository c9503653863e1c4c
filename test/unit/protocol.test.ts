/**
 * protocol/ against the C headers it mirrors: every #define with its value, and every shared
 * struct's field offsets and sizes (by the C layout rules), so a header change that TypeScript
 * does not follow fails here, before any kernel is involved. Also the stream-entry helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { LATENCY_H, LT_EVENT } from '../../protocol/latency.js';
import { TIMESYNC_H, TS_PROBE, TS_SAMPLE, decodeProbe, encodeProbe, keyFromHex, keyToHex, REQUEST } from '../../protocol/timesync.js';
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
  { file: 'timesync/bpf/timesync.h', guard: 'LATSCOPE_TIMESYNC_H', constants: TIMESYNC_H, structs: [TS_PROBE, TS_SAMPLE] },
];

for (const h of HEADERS)
  test(`${h.file}: every constant and ${h.structs.map((x) => `struct ${x.name}`).join(', ')} as protocol/ has them`, () => {
    const text = header(h.file);
    const d = defines(text);
    delete d[h.guard];
    assert.deepEqual(d, { ...h.constants });
    for (const l of h.structs) assert.deepEqual(layoutDifferences(l, cStruct(text, l.name), h.file), []);
  });

test('sizes the kernel side relies on', () => {
  assert.equal(LT_EVENT.size, 88);
  assert.equal(TS_PROBE.size, 48);
  assert.equal(PAIRS.length, LATENCY_H.LT_PAIRS);
});

test('a moved field is named with both offsets', () => {
  const moved = struct('x', { a: 'u32', b: 'u64' });
  const want = struct('x', { b: 'u64', a: 'u32' });
  assert.match(layoutDifferences(want, moved, 'x.o').join('; '), /struct x: field b is at offset 8 \(8 bytes\) in x\.o, TypeScript expects offset 0/);
  assert.equal(struct('y', { a: 'u8', b: 'u32', c: 'u16' }).size, 12, 'C padding');
});

test('the probe encodes and decodes in network byte order; keys are 16 hex digits', () => {
  const p = { type: REQUEST, key: 0x0123456789abcdefn, round: 7, seq: 0xfffffffe, t1: 1n, t2: 2n, t3: 3n };
  const buf = encodeProbe(p);
  assert.equal(buf.length, TS_PROBE.size);
  assert.equal(buf.readUInt32BE(0), TIMESYNC_H.TS_MAGIC);
  assert.deepEqual(decodeProbe(buf), { ok: true, probe: p });
  assert.deepEqual(decodeProbe(buf.subarray(0, 47)), { ok: false, reason: 'truncated' });
  assert.equal(keyToHex(0xabn), '00000000000000ab');
  assert.equal(keyFromHex(' 0123456789abcdef\n'), 0x0123456789abcdefn);
  assert.throws(() => keyFromHex('01234567'), /16 hex digits/);
});

test('stream entries: fields to a map and back; a heartbeat carries its time', () => {
  const f = toFields({ node: 'n1', n: 3 });
  assert.deepEqual(f, ['node', 'n1', 'n', '3']);
  assert.equal(entryFields(f).get('n'), '3');
  assert.equal(entryFields(null).size, 0);
  assert.deepEqual(decodeHeartbeat('1700000000000-0', f), { node: 'n1', n: '3', atMs: '1700000000000' });
});
