/**
 * The time-sync contract: the TypeScript view of timesync/bpf/timesync.h (constants by their C
 * names, struct ts_probe and struct ts_sample), the probe's encoding on the wire (UDP payload,
 * network byte order; the XDP responder, the user-space responder and the prober all use it),
 * the MACs that authenticate both, and the deployment key's text form (32 hex digits, in
 * ping_info's key file).
 */
import { randomBytes } from 'node:crypto';
import { decodeFields, encodeFields, struct } from './layout.js';
import { siphash24 } from './siphash.js';

/** Every #define of timesync.h, by name. */
export const TIMESYNC_H = {
  TS_MAGIC: 0x4c545331, // "LTS1"
  TS_VERSION: 2,
  TS_REQUEST: 1,
  TS_REPLY: 2,
  TS_REQUEST_WORDS: 4,
  TS_REPLY_WORDS: 6,
  TS_MAX_PEERS: 16384,
  TS_R_ANSWERED: 0,
  TS_R_BAD_MAC: 1,
  TS_R_MALFORMED: 2,
  TS_R_TRUNCATED: 3,
  TS_R_BAD_HEADER: 4,
  TS_R_BAD_SOURCE: 5,
  TS_R_FRAGMENT: 6,
  TS_R_NOT_LOCAL: 7,
  TS_R_NOT_PROBER: 8,
  TS_R_REPLAY: 9,
  TS_R_RATE: 10,
  TS_R_MAX: 11,
  TS_MAX_ADDRS: 8,
  TS_P_SENT: 0,
  TS_P_COMPLETED: 1,
  TS_P_UNKNOWN: 2,
  TS_P_BAD: 3,
  TS_P_RING_FULL: 4,
  TS_P_BAD_MAC: 5,
  TS_P_BAD_SOURCE: 6,
  TS_P_MAX: 7,
} as const;

/** The UDP payload of a probe and of its reply. */
export const TS_PROBE = struct('ts_probe', {
  magic: 'u32',
  version: 'u8',
  type: 'u8',
  flags: 'u16',
  round: 'u32',
  seq: 'u32',
  nonce: 'u64',
  issued: 'u64',
  t2: 'u64',
  t3: 'u64',
  mac: 'u64',
});

/** A responder's state per prober (its peers map). */
export const TS_PEER = struct('ts_peer', { last_issued: 'u64', window_start: 'u64', window_count: 'u64' });

/** A probe in flight, in the prober's map. */
export const TS_INFLIGHT = struct('ts_inflight', { t1: 'u64', nonce: 'u64', daddr: 'u32', pad: 'u32' });

/** A completed probe, prober to user space (host byte order). */
export const TS_SAMPLE = struct('ts_sample', {
  t1: 'u64',
  t2: 'u64',
  t3: 'u64',
  t4: 'u64',
  round: 'u32',
  seq: 'u32',
  saddr: 'u32',
  pad: 'u32',
});

export const { TS_MAGIC: MAGIC, TS_VERSION: VERSION, TS_REQUEST: REQUEST, TS_REPLY: REPLY } = TIMESYNC_H;
export const PROBE_BYTES = TS_PROBE.size;
const MAC_AT = TS_PROBE.offsets.mac;

export interface Probe {
  type: number;
  round: number;
  seq: number;
  nonce: bigint;
  issued: bigint;
  t2: bigint;
  t3: bigint;
  mac: bigint;
}

/** The 128-bit deployment key (a bigint below 2^128) as SipHash's 16 key bytes. */
export function keyBytes(key: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(key >> 64n, 0);
  b.writeBigUInt64BE(key & 0xffffffffffffffffn, 8);
  return b;
}

/** The key as the BPF programs take it: SipHash's two key words. */
export function keyWords(key: bigint): { k0: bigint; k1: bigint } {
  const b = keyBytes(key);
  return { k0: b.readBigUInt64LE(0), k1: b.readBigUInt64LE(8) };
}

/** Writes every field as given, the MAC included (tests craft probes with it). */
export function encodeProbe(p: Probe, buf = Buffer.alloc(PROBE_BYTES)): Buffer {
  encodeFields(TS_PROBE, { ...p, magic: MAGIC, version: VERSION, flags: 0, mac: 0n }, buf, 0, 'be');
  buf.writeBigUInt64LE(p.mac, MAC_AT);
  return buf;
}

const words = (type: number) => 8 * (type === REQUEST ? TIMESYNC_H.TS_REQUEST_WORDS : TIMESYNC_H.TS_REPLY_WORDS);

/** The MAC a probe of its type must carry, under the key given as keyBytes. */
export function probeMac(key: Buffer, buf: Buffer): bigint {
  return siphash24(key, buf, 0, words(buf[5]!)).readBigUInt64LE(0);
}

/** A request, signed: what a prober sends. */
export function encodeRequest(key: Buffer, p: { round: number; seq: number; nonce: bigint; issued: bigint }, buf = Buffer.alloc(PROBE_BYTES)): Buffer {
  encodeProbe({ ...p, type: REQUEST, t2: 0n, t3: 0n, mac: 0n }, buf);
  siphash24(key, buf, 0, words(REQUEST), buf, MAC_AT);
  return buf;
}

/** Turns a request in place into its signed reply with the responder's times. */
export function signReply(key: Buffer, buf: Buffer, t2: bigint, t3: bigint): Buffer {
  buf[5] = REPLY;
  buf.writeBigUInt64BE(t2, TS_PROBE.offsets.t2);
  buf.writeBigUInt64BE(t3, TS_PROBE.offsets.t3);
  siphash24(key, buf, 0, words(REPLY), buf, MAC_AT);
  return buf;
}

/** Whether a probe carries the MAC its type needs. */
export const macOk = (key: Buffer, buf: Buffer): boolean => buf.length >= PROBE_BYTES && probeMac(key, buf) === buf.readBigUInt64LE(MAC_AT);

/** Why a payload is not a probe, or the probe. */
export type Decoded = { ok: true; probe: Probe } | { ok: false; reason: 'truncated' | 'malformed' };

export function decodeProbe(buf: Buffer): Decoded {
  if (buf.length < PROBE_BYTES) return { ok: false, reason: 'truncated' };
  const { magic, version, type, round, seq, nonce, issued, t2, t3 } = decodeFields(TS_PROBE, buf, 0, 'be');
  if (magic !== MAGIC || version !== VERSION || (type !== REQUEST && type !== REPLY)) return { ok: false, reason: 'malformed' };
  return { ok: true, probe: { type, round, seq, nonce, issued, t2, t3, mac: buf.readBigUInt64LE(MAC_AT) } };
}

/** A fresh random 64-bit value (a round's nonce). */
export const newNonce = (): bigint => randomBytes(8).readBigUInt64BE(0);

/** One completed probe: the four timestamps (prober, responder, responder, prober). */
export interface Sample {
  t1: bigint;
  t2: bigint;
  t3: bigint;
  t4: bigint;
  round: number;
  seq: number;
  /** The responder's address. */
  server: string;
}

/** Decodes one struct ts_sample from a ring-buffer batch (host byte order). */
export function decodeSample(buf: Buffer, off: number, server: string): Sample {
  const { t1, t2, t3, t4, round, seq } = decodeFields(TS_SAMPLE, buf, off, 'le');
  return { t1, t2, t3, t4, round, seq, server };
}

/** The sequence number of a ts_sample in a batch, to find its probe before decoding it. */
export const sampleSeq = (buf: Buffer, off: number): number => buf.readUInt32LE(off + TS_SAMPLE.offsets.seq);

/** A fresh per-deployment key: 128 random bits (never 0). */
export function newKey(): bigint {
  const b = randomBytes(16);
  const k = (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
  return k === 0n ? 1n : k;
}

/** The key as written in files and passed to observers: 32 hex digits. */
export function keyToHex(k: bigint): string {
  return k.toString(16).padStart(32, '0');
}

/** 32 hex digits; 16 (the first release's 64-bit keys) still work, as the same 8 bytes twice. */
export function keyFromHex(s: string): bigint {
  const t = s.trim();
  if (/^[0-9a-fA-F]{16}$/.test(t)) return (BigInt(`0x${t}`) << 64n) | BigInt(`0x${t}`);
  if (!/^[0-9a-fA-F]{32}$/.test(t)) throw new RangeError('time-sync key: expected 32 hex digits (make one with: openssl rand -hex 16)');
  return BigInt(`0x${t}`);
}

/** Test only: a synthetic clock laid over a host's own (the testbed's hosts share one clock, whose truth is then known). */
export interface TestClock {
  offsetNs: bigint;
  driftPpb: bigint;
  /** Where the drift starts (CLOCK_MONOTONIC). */
  epochNs?: bigint;
}

/** A timestamp `t` of the host's clock as the synthetic clock reads it: t + offset + (t − epoch) × drift / 1e9, as the XDP responder's stamp() computes it. */
export function testStamp(t: bigint, c: TestClock, epochNs: bigint): bigint {
  return t + c.offsetNs + ((t - epochNs) * c.driftPpb) / 1_000_000_000n;
}
