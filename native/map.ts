/** BPF maps: lookups, updates, batched reads of whole arrays. */
import { call } from './errors.js';
import { possibleCpus } from './system.js';
import type { NativeMap, NativeObject } from './binding.js';

/** A BPF map: keys and values are Buffers in the C layout. */
export class BpfMap {
  /** Bytes per value as the kernel hands it over (per-CPU maps: one slot per possible CPU). */
  readonly valueBytes: number;
  readonly perCpu: boolean;

  constructor(
    private readonly obj: NativeObject,
    readonly info: NativeMap,
  ) {
    this.perCpu = info.type.startsWith('percpu_') || info.type.includes('percpu');
    this.valueBytes = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * possibleCpus() : info.valueSize;
  }

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.valueBytes);
    return call(() => this.obj.mapLookup(this.info.name, key, value)) ? value : undefined;
  }

  update(key: Buffer, value: Buffer): void {
    call(() => this.obj.mapUpdate(this.info.name, key, value));
  }

  delete(key: Buffer): boolean {
    return call(() => this.obj.mapDelete(this.info.name, key));
  }

  keys(): Buffer[] {
    const all = call(() => this.obj.mapKeys(this.info.name));
    const out: Buffer[] = [];
    for (let o = 0; o < all.length; o += this.info.keySize) out.push(all.subarray(o, o + this.info.keySize));
    return out;
  }

  /** For per-CPU maps: the value of each CPU's slot, as Buffers of valueSize bytes. */
  perCpuValues(value: Buffer): Buffer[] {
    const stride = Math.ceil(this.info.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let o = 0; o < value.length; o += stride) out.push(value.subarray(o, o + this.info.valueSize));
    return out;
  }

  /**
   * Entries in a few syscalls instead of one per entry (an observer's scrape reads thousands of
   * histogram buckets): up to `limit` of them (an array map's, from index `start`), as [keys,
   * values, count], each Buffer in the C layout, entry i at i * keySize and i * valueBytes.
   */
  lookupAll(limit = this.info.maxEntries, start = 0): [keys: Buffer, values: Buffer, count: number] {
    const n = Math.max(0, Math.min(limit, this.info.maxEntries - start));
    // fresh ArrayBuffers (Buffer.alloc never pools): word-aligned for the typed views of u64Array
    const keys = Buffer.alloc(this.info.keySize * n);
    const values = Buffer.alloc(this.valueBytes * n);
    return [keys, values, n ? call(() => this.obj.mapLookupAll(this.info.name, keys, values, this.valueBytes, start)) : 0];
  }

  /** An array map of u64 counters (plain or per-CPU, summed over CPUs): `limit` indexes from `start` read at once, value per index - start. */
  u64Array(limit = this.info.maxEntries, start = 0): bigint[] {
    if (this.info.keySize !== 4) throw new RangeError(`map ${this.info.name}: u64Array reads array maps (u32 keys)`);
    const [keys, values, n] = this.lookupAll(limit, start);
    const out: bigint[] = new Array(Math.max(0, Math.min(limit, this.info.maxEntries - start))).fill(0n);
    // summed as 32-bit halves in plain numbers (exact below 2^53, far above any count), one
    // BigInt per entry at the end: BigInt arithmetic per CPU slot made a 64-port scrape 10 ms
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length >> 2);
    const keyWords = new Uint32Array(keys.buffer, keys.byteOffset, keys.length >> 2);
    const stride = this.valueBytes >> 2, slot = this.perCpu ? Math.ceil(this.info.valueSize / 8) * 2 : stride;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let w = i * stride, end = w + stride; w < end; w += slot) sum += words[w + 1]! * 4294967296 + words[w]!;
      if (sum) out[keyWords[i]! - start] = BigInt(sum);
    }
    return out;
  }

  /** Array of u64 counters (plain or per-CPU, summed over CPUs) at a u32 index. */
  u64At(index: number): bigint {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const v = this.lookup(key);
    if (!v) return 0n;
    if (!this.perCpu) return v.readBigUInt64LE(0);
    return this.perCpuValues(v).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
  }
}
