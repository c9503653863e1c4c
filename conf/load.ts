/**
 * Reading conf/*.yaml: parse with `yaml` (keeping line numbers), validate with a zod schema,
 * and on any problem throw ConfError naming the file, the line and the key, and what was
 * expected. Nothing is acted on before the whole file is valid.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';

export class ConfError extends Error {
  override readonly name = 'ConfError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly key?: string,
  ) {
    super(message);
  }
}

/** Reads and validates one YAML file of a conf folder. */
export function loadConfFile<S extends z.ZodTypeAny>(dir: string, file: string, schema: S): z.output<S> {
  const path = join(dir, file);
  if (!existsSync(path)) throw new ConfError(`${path}: missing; create it (conf/examples/ in the latscope repository has a commented example of every file)`, path);
  const text = readFileSync(path, 'utf8');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = lc.linePos(e.pos[0]).line;
    throw new ConfError(`${path}:${line}: not valid YAML: ${e.message.split('\n')[0]}`, path, line);
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data as z.output<S>;
  const issue = deepest(result.error.issues[0]!);
  // an unknown key is named (and located) itself, not the object that holds it
  const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  // The line of the deepest node of the path that exists in the file.
  let line = 1;
  for (let n = keyPath.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keyPath.slice(0, n), true);
    if (isNode(node) && node.range) {
      line = lc.linePos(node.range[0]).line;
      break;
    }
  }
  const key = keyPath.length ? keyPath.join('.') : '(top level)';
  const what = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? ` (also ${issue.keys.slice(1).join(', ')})` : ''}: a typo, or a key of another file?` : issue.message;
  throw new ConfError(`${path}:${line}: ${key}: ${what}`, path, line, key);
}

/** For "one of these shapes" errors, the issue of the shape that matched furthest: it names the real key. */
function deepest(issue: z.ZodIssue): z.ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const inner = issue.unionErrors.flatMap((e) => e.issues).map(deepest);
  return inner.reduce((best, i) => (i.path.length > best.path.length ? i : best), issue);
}

/** A warning when a file that holds a secret can be read by others than its owner. */
export function secretFileWarning(path: string): string | undefined {
  const mode = statSync(path).mode & 0o777;
  return mode & 0o077 ? `${path} holds a secret but its mode is ${mode.toString(8)}: run chmod 600 ${path}` : undefined;
}

/**
 * A secret given in a conf file as the value itself, a file (relative to the conf folder) or an
 * environment variable. Files that others can read draw a warning through `warn`. Never puts the
 * secret in an error message.
 */
export function resolveSecret(
  confDir: string,
  file: string,
  key: string,
  s: { value?: string; file?: string; env?: string },
  warn: (msg: string) => void = (m) => console.error(`warning: ${m}`),
): string | undefined {
  const where = join(confDir, file);
  if (s.value !== undefined) {
    const w = secretFileWarning(where);
    if (w) warn(w);
    return s.value;
  }
  if (s.file !== undefined) {
    const f = resolve(confDir, s.file);
    if (!existsSync(f)) throw new ConfError(`${where}: ${key}_file: ${f} does not exist`, where);
    const w = secretFileWarning(f);
    if (w) warn(w);
    return readFileSync(f, 'utf8').trim();
  }
  if (s.env !== undefined) {
    const v = process.env[s.env];
    if (v === undefined) throw new ConfError(`${where}: ${key}_env: the variable ${s.env} is not set`, where);
    return v;
  }
  return undefined;
}
