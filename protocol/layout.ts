/**
 * C struct layouts as TypeScript sees them: field offsets and sizes computed with the C rules
 * (each field aligned to its own size, the struct padded to its widest field), so a decoder
 * reads `LAYOUT.offsets.field` instead of a bare number. native/ checks every layout against the
 * BTF of the BPF object that produces or consumes the struct when the object is opened, and a
 * unit test checks them against the C headers, so the two sides cannot drift apart silently.
 */

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 's64' | readonly ['u8' | 'u16' | 'u32' | 'u64', number];

export interface FieldLayout {
  name: string;
  offset: number;
  size: number;
}

export type FieldSpec = Record<string, FieldType>;

/** What a field decodes to: 64-bit integers as bigints, arrays as Buffer views, the rest as numbers. */
export type FieldValue<T> = T extends 'u64' | 's64' ? bigint : T extends readonly [unknown, number] ? Buffer : number;

export interface StructLayout<F extends FieldSpec = FieldSpec> {
  /** The C struct's name, without "struct". */
  name: string;
  size: number;
  fields: FieldLayout[];
  offsets: Record<Extract<keyof F, string>, number>;
  /** The declaration, field by field. */
  spec: F;
}

const scalarSize = (t: string): number => ({ u8: 1, u16: 2, u32: 4, u64: 8, s32: 4, s64: 8 })[t]!;

/** Bytes a field of this type takes (arrays: all their elements). */
export const fieldBytes = (t: FieldType): number => (typeof t === 'string' ? scalarSize(t) : scalarSize(t[0]) * t[1]);

/** Lays out a struct from its fields in declaration order. */
export function struct<const F extends FieldSpec>(name: string, fields: F): StructLayout<F> {
  let offset = 0;
  let align = 1;
  const out: FieldLayout[] = [];
  for (const [field, type] of Object.entries(fields)) {
    const [elem, count] = typeof type === 'string' ? [type, 1] : [type[0], type[1]];
    const a = scalarSize(elem);
    offset = Math.ceil(offset / a) * a;
    out.push({ name: field, offset, size: a * count });
    offset += a * count;
    align = Math.max(align, a);
  }
  const size = Math.ceil(offset / align) * align;
  return { name, size, fields: out, offsets: Object.fromEntries(out.map((f) => [f.name, f.offset])) as Record<Extract<keyof F, string>, number>, spec: fields };
}

/** Where two layouts differ, as sentences naming the struct and field (empty: they agree). */
export function layoutDifferences(expected: StructLayout, actual: { size: number; fields: FieldLayout[] }, where: string): string[] {
  const out: string[] = [];
  const have = new Map(actual.fields.map((f) => [f.name, f]));
  for (const f of expected.fields) {
    const a = have.get(f.name);
    if (!a) out.push(`struct ${expected.name}: field ${f.name} is missing in ${where}`);
    else if (a.offset !== f.offset || a.size !== f.size)
      out.push(`struct ${expected.name}: field ${f.name} is at offset ${a.offset} (${a.size} bytes) in ${where}, TypeScript expects offset ${f.offset} (${f.size} bytes)`);
    have.delete(f.name);
  }
  for (const a of have.values()) out.push(`struct ${expected.name}: field ${a.name} (offset ${a.offset}) in ${where} is unknown to TypeScript`);
  if (!out.length && actual.size !== expected.size) out.push(`struct ${expected.name}: ${actual.size} bytes in ${where}, TypeScript expects ${expected.size}`);
  return out;
}

/** Reads every field of a struct at `off` (host order 'le' for kernel memory, 'be' for the wire). */
export function decodeFields<F extends FieldSpec>(l: StructLayout<F>, buf: Buffer, off: number, order: 'le' | 'be'): { [K in keyof F]: FieldValue<F[K]> } {
  const out: Record<string, number | bigint | Buffer> = {};
  for (const f of l.fields) {
    const at = off + f.offset;
    if (typeof l.spec[f.name] !== 'string') out[f.name] = buf.subarray(at, at + f.size);
    else if (f.size === 8) out[f.name] = order === 'le' ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
    else if (f.size === 4) out[f.name] = order === 'le' ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
    else if (f.size === 2) out[f.name] = order === 'le' ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
    else out[f.name] = buf.readUInt8(at);
  }
  return out as { [K in keyof F]: FieldValue<F[K]> };
}

/** Writes the given fields of a struct at `off` (missing ones are left as they are). */
export function encodeFields<F extends FieldSpec>(l: StructLayout<F>, values: Partial<Record<keyof F, number | bigint>>, buf: Buffer, off: number, order: 'le' | 'be'): Buffer {
  for (const f of l.fields) {
    const v = values[f.name as keyof F];
    if (v === undefined) continue;
    const at = off + f.offset;
    if (f.size === 8) order === 'le' ? buf.writeBigUInt64LE(BigInt(v), at) : buf.writeBigUInt64BE(BigInt(v), at);
    else if (f.size === 4) order === 'le' ? buf.writeUInt32LE(Number(v) >>> 0, at) : buf.writeUInt32BE(Number(v) >>> 0, at);
    else if (f.size === 2) order === 'le' ? buf.writeUInt16LE(Number(v), at) : buf.writeUInt16BE(Number(v), at);
    else buf.writeUInt8(Number(v), at);
  }
  return buf;
}
