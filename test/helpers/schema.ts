/**
 * A small JSON Schema check for the documented --json outputs: required keys, types, enums and
 * constants, through $ref, properties, items and additionalProperties. Enough to hold the
 * documents in docs/ and the code to each other; not a full validator.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';

type Schema = Record<string, any>;

/** Problems of `value` against docs/NAME (empty: it conforms). */
export function schemaProblems(name: string, value: unknown): string[] {
  const root = JSON.parse(readFileSync(join(projectRoot, 'docs', name), 'utf8')) as Schema;
  const out: string[] = [];
  const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  const check = (s: Schema, v: unknown, at: string): void => {
    if (s.$ref) return check(s.$ref.split('/').slice(1).reduce((o: Schema, k: string) => o[k], root), v, at);
    if (s.const !== undefined && v !== s.const) out.push(`${at}: ${JSON.stringify(v)} is not ${JSON.stringify(s.const)}`);
    if (s.enum && !s.enum.includes(v)) out.push(`${at}: ${JSON.stringify(v)} is not one of ${s.enum.join(', ')}`);
    if (s.type) {
      const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
      const t = typeOf(v);
      if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) out.push(`${at}: a ${t}, expected ${types.join(' or ')}`);
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const k of s.required ?? []) if (!(k in v)) out.push(`${at}.${k}: missing`);
      for (const [k, sub] of Object.entries(s.properties ?? {})) if (k in v) check(sub as Schema, (v as Record<string, unknown>)[k], `${at}.${k}`);
      if (s.additionalProperties && typeof s.additionalProperties === 'object')
        for (const [k, x] of Object.entries(v)) if (!(k in (s.properties ?? {}))) check(s.additionalProperties, x, `${at}.${k}`);
    }
    if (Array.isArray(v) && s.items) v.forEach((x, i) => check(s.items, x, `${at}[${i}]`));
  };
  check(root, value, '$');
  return out;
}
