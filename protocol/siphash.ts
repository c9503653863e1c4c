/**
 * SipHash-2-4 (Aumasson and Bernstein), the time-sync MAC: the same function as
 * timesync/bpf/siphash.h, for any length. 64-bit lanes are kept as 32-bit halves, so a MAC costs
 * about a microsecond, not the tens a BigInt version takes (the user-space responder computes one
 * after its transmit time). A test checks it against OpenSSL's SIPHASH.
 */

// v holds v0..v3 as [lo, hi] pairs: v[0], v[1] = v0; v[2], v[3] = v1; ...
function add(v: Uint32Array, a: number, b: number): void {
  const lo = v[a]! + v[b]!;
  v[a + 1] = v[a + 1]! + v[b + 1]! + (lo > 0xffffffff ? 1 : 0);
  v[a] = lo;
}
function rotl(v: Uint32Array, a: number, n: number): void {
  const lo = v[a]!, hi = v[a + 1]!;
  v[a] = (lo << n) | (hi >>> (32 - n));
  v[a + 1] = (hi << n) | (lo >>> (32 - n));
}
function swap(v: Uint32Array, a: number): void {
  const lo = v[a]!;
  v[a] = v[a + 1]!;
  v[a + 1] = lo;
}
function xor(v: Uint32Array, a: number, b: number): void {
  v[a] = v[a]! ^ v[b]!;
  v[a + 1] = v[a + 1]! ^ v[b + 1]!;
}
function round(v: Uint32Array): void {
  add(v, 0, 2); rotl(v, 2, 13); xor(v, 2, 0); swap(v, 0);
  add(v, 4, 6); rotl(v, 6, 16); xor(v, 6, 4);
  add(v, 0, 6); rotl(v, 6, 21); xor(v, 6, 0);
  add(v, 4, 2); rotl(v, 2, 17); xor(v, 2, 4); swap(v, 4);
}

const v = new Uint32Array(8);

/** SipHash-2-4 of `msg` (bytes start..end) under a 16-byte key: the 8 output bytes, written into `out` at `at`. */
export function siphash24(key: Buffer, msg: Buffer, start = 0, end = msg.length, out: Buffer = Buffer.alloc(8), at = 0): Buffer {
  if (key.length !== 16) throw new RangeError('siphash24: the key must be 16 bytes');
  const k0l = key.readUInt32LE(0), k0h = key.readUInt32LE(4), k1l = key.readUInt32LE(8), k1h = key.readUInt32LE(12);
  v[0] = k0l ^ 0x70736575; v[1] = k0h ^ 0x736f6d65;
  v[2] = k1l ^ 0x6e646f6d; v[3] = k1h ^ 0x646f7261;
  v[4] = k0l ^ 0x6e657261; v[5] = k0h ^ 0x6c796765;
  v[6] = k1l ^ 0x79746573; v[7] = k1h ^ 0x74656462;
  const len = end - start;
  const whole = start + (len & ~7);
  const word = (lo: number, hi: number) => {
    v[6] = v[6]! ^ lo; v[7] = v[7]! ^ hi;
    round(v);
    round(v);
    v[0] = v[0]! ^ lo; v[1] = v[1]! ^ hi;
  };
  for (let i = start; i < whole; i += 8) word(msg.readUInt32LE(i), msg.readUInt32LE(i + 4));
  const last = Buffer.alloc(8);
  msg.copy(last, 0, whole, end);
  last[7] = len & 0xff;
  word(last.readUInt32LE(0), last.readUInt32LE(4));
  v[4] = v[4]! ^ 0xff;
  for (let i = 0; i < 4; i++) round(v);
  out.writeUInt32LE((v[0]! ^ v[2]! ^ v[4]! ^ v[6]!) >>> 0, at);
  out.writeUInt32LE((v[1]! ^ v[3]! ^ v[5]! ^ v[7]!) >>> 0, at + 4);
  return out;
}
