/**
 * Reading conf/*.yaml: read the file safely (a regular file of sane size, or a clear error:
 * a directory, a FIFO that would block, a file that cannot be read), parse with `yaml` keeping
 * line numbers, refuse what YAML would silently change (tags, aliases, a comment cutting a
 * secret short), validate with a zod schema, and on any problem throw ConfErrors naming the
 * file, the line and the key, and what was expected: every problem of the file, not only the
 * first. A secret never appears in a message. Nothing is acted on before the whole file is valid.
 */
import { closeSync, constants, openSync, readSync, fstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode, isScalar, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { keyFromHex } from '../protocol/timesync.js';
import type { PingInfo } from './schema.js';

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

/** Several problems of a conf folder at once. */
export class AggregateConfError extends Error {
  override readonly name = 'AggregateConfError';
  constructor(readonly errors: ConfError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** Keys whose values are secrets: never echoed, never cut by a comment. */
const SECRET_KEYS = new Set(['password', 'passwd', 'key']);
/** A conf file or a secret file is small; anything bigger is a mistake (or an attack). */
const MAX_BYTES = 1 << 20;

const KINDS: [(s: import('node:fs').Stats) => boolean, string][] = [
  [(s) => s.isDirectory(), 'a directory'],
  [(s) => s.isFIFO(), 'a FIFO (reading it would wait for a writer)'],
  [(s) => s.isSocket(), 'a socket'],
  [(s) => s.isCharacterDevice() || s.isBlockDevice(), 'a device'],
];

/**
 * The text of a small regular file, or a ConfError saying what it is instead. Opened without
 * blocking (a FIFO never hangs the reader) and checked on the open descriptor.
 */
export function readSmallFile(path: string, what: string, where: string = path): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied): make it readable by the user latscope runs as' : code === 'ELOOP' ? 'is a symbolic link loop' : `cannot be opened (${code})`;
    throw new ConfError(where === path ? `${path}: ${why}` : `${where}: ${what} ${path} ${why}`, where);
  }
  try {
    const st = fstatSync(fd);
    const kind = KINDS.find(([is]) => is(st));
    if (kind) throw new ConfError(`${where}: ${what} ${path} is ${kind[1]}, not a file`, where);
    if (st.size > MAX_BYTES) throw new ConfError(`${where}: ${what} ${path} has ${st.size} bytes: a latscope conf or secret file has at most ${MAX_BYTES}`, where);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < st.size) {
      const got = readSync(fd, buf, n, st.size - n, n);
      if (!got) break;
      n += got;
    }
    const text = buf.subarray(0, n).toString('utf8');
    if (text.includes('\uFFFD')) throw new ConfError(`${where}: ${what} ${path} is not UTF-8 text`, where);
    return text;
  } catch (e) {
    if (e instanceof ConfError) throw e;
    throw new ConfError(`${where}: ${what} ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, where);
  } finally {
    closeSync(fd);
  }
}

/** What a YAML error code means, in words that never quote the file's text. */
const YAML_CODES: Record<string, string> = {
  DUPLICATE_KEY: 'a key appears twice in the same mapping',
  BAD_INDENT: 'the indentation is off',
  MISSING_CHAR: 'a quote or bracket is not closed',
  MULTILINE_IMPLICIT_KEY: 'a key runs over several lines (a missing ":"?)',
  UNEXPECTED_TOKEN: 'something is where a key or a value should be',
  BAD_SCALAR_START: 'a value starts with a character YAML reserves (quote it)',
  BLOCK_AS_IMPLICIT_KEY: 'a nested block is used as a key',
  TAB_AS_INDENT: 'a tab is used to indent (use spaces)',
  MULTIPLE_DOCS: 'the file holds several YAML documents',
};

/** Reads, parses and checks one YAML file of a conf folder; throws AggregateConfError with every problem. */
export function loadConfFile<S extends z.ZodTypeAny>(dir: string, file: string, schema: S): z.output<S> {
  const path = join(dir, file);
  let text: string;
  try {
    text = readSmallFile(path, 'the file', path);
  } catch (e) {
    if (e instanceof ConfError && /does not exist$/.test(e.message))
      throw new ConfError(`${path}: missing; create it (conf/examples/ in the latscope repository has a commented example of every file)`, path);
    throw e;
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? 1 : lc.linePos(offset).line);
  const errors: ConfError[] = [];
  const fail = (line: number, key: string | undefined, message: string) => errors.push(new ConfError(`${path}:${line}: ${key ? `${key}: ` : ''}${message}`, path, line, key));
  for (const e of doc.errors) fail(lineOf(e.pos[0]), undefined, `not valid YAML: ${YAML_CODES[e.code] ?? e.code.toLowerCase().replace(/_/g, ' ')}`);
  if (errors.length) throw new AggregateConfError(errors.slice(0, 1)); // later syntax errors follow from the first
  checkYamlFeatures(doc, lineOf, fail);
  if (errors.length) throw new AggregateConfError(errors);
  let value: unknown;
  try {
    value = doc.toJS() ?? {};
  } catch (e) {
    throw new AggregateConfError([new ConfError(`${path}: not valid YAML (${(e as Error).name})`, path)]);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.output<S>;
  const secrets = secretValues(doc);
  for (const raw of result.error.issues) {
    const issue = deepest(raw);
    // an unknown key is named (and located) itself, not the object that holds it
    const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    let line = 1;
    for (let n = keyPath.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(keyPath.slice(0, n), true);
      if (isNode(node) && node.range) {
        line = lineOf(node.range[0]);
        break;
      }
    }
    const key = keyPath.length ? keyPath.join('.') : '(top level)';
    const what = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? ` (also ${issue.keys.slice(1).join(', ')})` : ''}: a typo, or a key of another file?` : describe(issue);
    fail(line, key, redact(what, secrets));
  }
  throw new AggregateConfError(errors);
}

/** Refuses what YAML would do silently: tags, aliases, a comment that cuts a plain secret short. */
function checkYamlFeatures(doc: Document, lineOf: (o: number | undefined) => number, report: (line: number, key: string | undefined, message: string) => void): void {
  const said = new Set<string>(); // one message of each kind per file: an alias bomb is one problem, not thousands
  const fail = (line: number, key: string | undefined, message: string) => {
    if (said.has(message)) return;
    said.add(message);
    report(line, key, message);
  };
  visit(doc, {
    Alias(_k, node) {
      fail(lineOf(node.range?.[0]), undefined, 'YAML aliases (*name) are not used in latscope conf files: write the value out (quote it if it starts with *)');
    },
    Node(_k, node) {
      if (isNode(node) && node.tag && !node.tag.startsWith('tag:yaml.org,2002:'))
        fail(lineOf(node.range?.[0]), undefined, 'YAML tags (!name) are not used in latscope conf files: quote the value if it starts with !');
      if (isNode(node) && (node as { anchor?: string }).anchor) fail(lineOf(node.range?.[0]), undefined, 'YAML anchors (&name) are not used in latscope conf files');
    },
    Pair(_k, pair) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      const v = pair.value;
      if (SECRET_KEYS.has(k) && isScalar(v) && v.type === 'PLAIN' && v.comment !== undefined)
        fail(lineOf(v.range?.[0]), k, 'a # after a space starts a comment, so this secret is cut there: put the value in quotes (better: in a file, with *_file)');
    },
  });
  for (const w of doc.warnings) fail(lineOf(w.pos[0]), undefined, `not valid YAML: ${YAML_CODES[w.code] ?? w.code.toLowerCase().replace(/_/g, ' ')}`);
}

/** Every secret value of the document, to keep out of messages. */
function secretValues(doc: Document): string[] {
  const out: string[] = [];
  visit(doc, {
    Pair(_k, pair) {
      if (isScalar(pair.key) && SECRET_KEYS.has(String(pair.key.value)) && isScalar(pair.value) && pair.value.value !== null) out.push(String(pair.value.value));
    },
  });
  return out.filter((v) => v.length >= 3);
}

const redact = (msg: string, secrets: string[]) => secrets.reduce((m, s) => m.split(s).join('***'), msg);

/** A zod issue in words: what is wrong and what is expected. */
function describe(issue: z.ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return 'missing: this key is required';
  if (issue.code === 'invalid_type') return `${issue.message.replace(/^Expected (\w+), received (\w+)$/, 'expected a $1, not a $2')}`;
  if (issue.code === 'invalid_union') return 'not one of the accepted forms';
  return issue.message;
}

/** For "one of these shapes" errors, the issue of the shape that matched furthest: it names the real key. */
function deepest(issue: z.ZodIssue): z.ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const inner = issue.unionErrors.flatMap((e) => e.issues).map(deepest);
  const best = inner.reduce((b, i) => (i.path.length > b.path.length ? i : b), issue);
  return best === issue || best.path.length <= issue.path.length ? { ...issue, code: 'custom', message: issue.message === 'Invalid input' ? 'not one of the accepted forms' : issue.message } as z.ZodIssue : best;
}

/** A warning when a file that holds a secret can be read by others than its owner. */
export function secretFileWarning(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const mode = fstatSync(fd).mode & 0o777;
    return mode & 0o077 ? `${path} holds a secret but its mode is ${mode.toString(8)}: run chmod 600 ${path}` : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
    let text: string;
    try {
      text = readSmallFile(f, `${key}_file:`, where);
    } catch (e) {
      throw new ConfError((e as ConfError).message, where, undefined, `${key}_file`);
    }
    const w = secretFileWarning(f);
    if (w) warn(w);
    const secret = text.trim();
    if (!secret) throw new ConfError(`${where}: ${key}_file: ${f} is empty: put the ${key} in it`, where, undefined, `${key}_file`);
    if (secret.includes('\n')) throw new ConfError(`${where}: ${key}_file: ${f} holds several lines: the whole file is the ${key}, on one line`, where, undefined, `${key}_file`);
    return secret;
  }
  if (s.env !== undefined) {
    const v = process.env[s.env];
    if (v === undefined) throw new ConfError(`${where}: ${key}_env: the variable ${s.env} is not set`, where);
    if (!v.trim()) throw new ConfError(`${where}: ${key}_env: the variable ${s.env} is empty`, where);
    return v;
  }
  return undefined;
}

/** What a responder on this host needs from ping_info.yaml: the probers it answers must be listed. */
export function responderSettings(confDir: string, p: PingInfo, eth?: string) {
  if (!p.probers?.length)
    throw new ConfError(`${resolve(confDir, 'ping_info.yaml')}: probers: no prober addresses, so the responder would answer no one; list the addresses probes come from (the manager writes its own for the observers it starts)`, resolve(confDir, 'ping_info.yaml'), undefined, 'probers');
  return { iface: eth ?? p.eth, port: p.port, key: pingKey(confDir, p), probers: p.probers, rateLimit: p.rate_limit, mode: p.mode };
}

/** The deployment key from ping_info.yaml (value, file or env). */
export function pingKey(confDir: string, p: PingInfo, warn?: (msg: string) => void): bigint {
  const hex = resolveSecret(confDir, 'ping_info.yaml', 'key', { value: p.key, file: p.key_file, env: p.key_env }, warn);
  const where = resolve(confDir, 'ping_info.yaml');
  if (hex === undefined) throw new ConfError(`${where}: key: the time-sync key is missing: give key_file (32 hex digits) or key_env`, where);
  try {
    const k = keyFromHex(hex);
    if (k === 0n) throw new RangeError('time-sync key: must not be 0');
    return k;
  } catch (e) {
    throw new ConfError(`${where}: key: ${(e as Error).message}`, where);
  }
}
