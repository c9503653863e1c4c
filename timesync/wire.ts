/**
 * The time-sync probe on the wire (UDP payload, network byte order), as in bpf/timesync.h.
 * The XDP responder, the user-space echo responder and the prober all use this one layout.
 */
import { randomBytes } from 'node:crypto';

export const MAGIC = 0x4c545331; // "LTS1"
export const VERSION = 1;
export const REQUEST = 1;
export const REPLY = 2;
export const PROBE_BYTES = 48;

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
  buf.writeUInt32BE(MAGIC, 0);
  buf.writeUInt8(VERSION, 4);
  buf.writeUInt8(p.type, 5);
  buf.writeUInt16BE(0, 6);
  buf.writeBigUInt64BE(p.key, 8);
  buf.writeUInt32BE(p.round >>> 0, 16);
  buf.writeUInt32BE(p.seq >>> 0, 20);
  buf.writeBigUInt64BE(p.t1, 24);
  buf.writeBigUInt64BE(p.t2, 32);
  buf.writeBigUInt64BE(p.t3, 40);
  return buf;
}

/** Why a payload is not a probe, or the probe. */
export type Decoded = { ok: true; probe: Probe } | { ok: false; reason: 'truncated' | 'malformed' };

export function decodeProbe(buf: Buffer): Decoded {
  if (buf.length < PROBE_BYTES) return { ok: false, reason: 'truncated' };
  if (buf.readUInt32BE(0) !== MAGIC || buf.readUInt8(4) !== VERSION) return { ok: false, reason: 'malformed' };
  const type = buf.readUInt8(5);
  if (type !== REQUEST && type !== REPLY) return { ok: false, reason: 'malformed' };
  return {
    ok: true,
    probe: {
      type,
      key: buf.readBigUInt64BE(8),
      round: buf.readUInt32BE(16),
      seq: buf.readUInt32BE(20),
      t1: buf.readBigUInt64BE(24),
      t2: buf.readBigUInt64BE(32),
      t3: buf.readBigUInt64BE(40),
    },
  };
}

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
  if (!/^[0-9a-fA-F]{1,16}$/.test(t)) throw new RangeError('time-sync key: expected up to 16 hex digits');
  return BigInt(`0x${t}`);
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
