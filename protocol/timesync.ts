/**
 * The time-sync contract: the TypeScript view of timesync/bpf/timesync.h (constants by their C
 * names, struct ts_probe and struct ts_sample), the probe's encoding on the wire (UDP payload,
 * network byte order; the XDP responder, the user-space responder and the prober all use it),
 * and the deployment key's text form (16 hex digits, in ping_info's key file).
 */
import { randomBytes } from 'node:crypto';
import { decodeFields, encodeFields, struct } from './layout.js';

/** Every #define of timesync.h, by name. */
export const TIMESYNC_H = {
  TS_MAGIC: 0x4c545331, // "LTS1"
  TS_VERSION: 1,
  TS_REQUEST: 1,
  TS_REPLY: 2,
  TS_R_ANSWERED: 0,
  TS_R_BAD_KEY: 1,
  TS_R_MALFORMED: 2,
  TS_R_TRUNCATED: 3,
  TS_R_BAD_HEADER: 4,
  TS_R_BAD_SOURCE: 5,
  TS_R_FRAGMENT: 6,
  TS_R_NOT_LOCAL: 7,
  TS_R_MAX: 8,
  TS_MAX_ADDRS: 8,
  TS_P_SENT: 0,
  TS_P_COMPLETED: 1,
  TS_P_UNKNOWN: 2,
  TS_P_BAD: 3,
  TS_P_RING_FULL: 4,
  TS_P_MAX: 5,
} as const;

/** The UDP payload of a probe and of its reply. */
export const TS_PROBE = struct('ts_probe', {
  magic: 'u32',
  version: 'u8',
  type: 'u8',
  flags: 'u16',
  key: 'u64',
  round: 'u32',
  seq: 'u32',
  t1: 'u64',
  t2: 'u64',
  t3: 'u64',
});

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

export interface Probe {
  type: number;
  key: bigint;
  round: number;
  seq: number;
  t1: bigint;
  t2: bigint;
  t3: bigint;
}

export function encodeProbe(p: Probe, buf = Buffer.alloc(PROBE_BYTES)): Buffer {
  return encodeFields(TS_PROBE, { ...p, magic: MAGIC, version: VERSION, flags: 0 }, buf, 0, 'be');
}

/** Why a payload is not a probe, or the probe. */
export type Decoded = { ok: true; probe: Probe } | { ok: false; reason: 'truncated' | 'malformed' };

export function decodeProbe(buf: Buffer): Decoded {
  if (buf.length < PROBE_BYTES) return { ok: false, reason: 'truncated' };
  const { magic, version, type, key, round, seq, t1, t2, t3 } = decodeFields(TS_PROBE, buf, 0, 'be');
  if (magic !== MAGIC || version !== VERSION || (type !== REQUEST && type !== REPLY)) return { ok: false, reason: 'malformed' };
  return { ok: true, probe: { type, key, round, seq, t1, t2, t3 } };
}

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

/** A fresh per-deployment key (never 0). */
export function newKey(): bigint {
  const k = randomBytes(8).readBigUInt64BE(0);
  return k === 0n ? 1n : k;
}

/** The key as written in files and passed to observers: 16 hex digits. */
export function keyToHex(k: bigint): string {
  return k.toString(16).padStart(16, '0');
}

export function keyFromHex(s: string): bigint {
  const t = s.trim();
  if (!/^[0-9a-fA-F]{16}$/.test(t)) throw new RangeError('time-sync key: expected 16 hex digits');
  return BigInt(`0x${t}`);
}
