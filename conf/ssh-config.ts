/**
 * The operator's OpenSSH client config (ssh_config(5)), read for what reaching a server needs:
 * Host blocks (patterns with `*`, `?`, `!`), HostName, Port, User, IdentityFile (several, with
 * `~`, %d %h %p %r %u %%), ProxyJump (a chain of [user@]host[:port] or ssh:// hops, or none) and
 * Include. As ssh does, the first value obtained for a keyword wins. Match blocks are not
 * evaluated: their settings are skipped and said so. Problems name the file and line.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { globRegExp, matchesPatternList } from '../lib/glob.js';
import { expandHome } from '../lib/paths.js';

export interface SshHostConfig {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  /** The hops, nearest first ("none" gives an empty list, as absent does). */
  proxyJump: JumpSpec[];
}

export interface JumpSpec {
  host: string;
  port?: number;
  user?: string;
}

export interface Line {
  /** Lower case, for matching; `name` as written, for messages. */
  key: string;
  name: string;
  value: string;
  file: string;
  line: number;
}

interface Block {
  /** undefined: applies to every host (before any Host line); null: a Match block (skipped). */
  patterns?: string[] | null;
  lines: Line[];
}

export class SshConfigError extends Error {
  override readonly name = 'SshConfigError';
}

export interface SshConfig {
  path: string;
  blocks: Block[];
  /** Things read but not applied (Match blocks, keywords latscope does not use are fine and silent). */
  notes: string[];
}

const KNOWN = new Set(['host', 'match', 'include', 'hostname', 'port', 'user', 'identityfile', 'proxyjump']);

function words(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

export function readSshConfig(path: string): SshConfig {
  const cfg: SshConfig = { path, blocks: [{ lines: [] }], notes: [] };
  const read = (file: string, depth: number) => {
    if (depth > 8) throw new SshConfigError(`${file}: Include nests deeper than 8 files`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new SshConfigError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
    }
    text.split('\n').forEach((raw, i) => {
      const t = raw.trim();
      if (!t || t.startsWith('#')) return;
      const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(t);
      if (!m || !m[2]) throw new SshConfigError(`${file}:${i + 1}: expected "Keyword value"`);
      const key = m[1]!.toLowerCase();
      const value = m[2].trim();
      if (key === 'host') cfg.blocks.push({ patterns: words(value), lines: [] });
      else if (key === 'match') {
        cfg.blocks.push({ patterns: null, lines: [] });
        cfg.notes.push(`${file}:${i + 1}: Match blocks are not evaluated by latscope; their settings are not used`);
      } else if (key === 'include') {
        for (const w of words(value)) {
          const p = expandHome(w);
          const full = isAbsolute(p) ? p : join(homedir(), '.ssh', p);
          for (const f of globFiles(full)) read(f, depth + 1);
        }
      } else if (KNOWN.has(key)) cfg.blocks[cfg.blocks.length - 1]!.lines.push({ key, name: m[1]!, value, file, line: i + 1 });
    });
  };
  read(path, 0);
  return cfg;
}

/** Files matching a path whose last part may hold `*` or `?`, sorted as ssh does. */
function globFiles(path: string): string[] {
  const name = basename(path);
  if (!/[*?]/.test(name)) return existsSync(path) ? [path] : [];
  const dir = dirname(path);
  if (!existsSync(dir)) return [];
  const re = globRegExp(name);
  return readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => join(dir, f));
}

function parsePort(v: string, l: Line): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new SshConfigError(`${l.file}:${l.line}: ${l.name}: ${JSON.stringify(v.slice(0, 40))} is not a port (1 to 65535)`);
  return n;
}

export function parseJump(spec: string, l: Line): JumpSpec {
  const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new SshConfigError(`${l.file}:${l.line}: ProxyJump: ${JSON.stringify(spec.slice(0, 60))} is not [user@]host[:port]`);
  return { host: m[2]!.replace(/^\[|\]$/g, ''), ...(m[3] ? { port: parsePort(m[3], l) } : {}), ...(m[1] ? { user: m[1] } : {}) };
}

/**
 * The settings for a host: every block matching any of `names` (the name given and its aliases)
 * contributes, the first value of each keyword wins, IdentityFile accumulates.
 */
export function resolveSshConfig(cfg: SshConfig, names: string[]): SshHostConfig {
  const out: SshHostConfig = { identityFiles: [], proxyJump: [] };
  let jumpSet = false;
  for (const b of cfg.blocks) {
    if (b.patterns === null) continue;
    if (b.patterns !== undefined && !names.some((n) => matchesPatternList(b.patterns!, n))) continue;
    for (const l of b.lines) {
      switch (l.key) {
        case 'hostname':
          out.hostName ??= l.value;
          break;
        case 'port':
          out.port ??= parsePort(l.value, l);
          break;
        case 'user':
          out.user ??= l.value;
          break;
        case 'identityfile':
          out.identityFiles.push(...words(l.value));
          break;
        case 'proxyjump':
          if (!jumpSet) {
            jumpSet = true;
            out.proxyJump = l.value.toLowerCase() === 'none' ? [] : l.value.split(',').map((s) => parseJump(s.trim(), l));
          }
          break;
      }
    }
  }
  return out;
}

/** An IdentityFile value with its tokens expanded, as ssh does. */
export function expandIdentity(p: string, host: string, port: number, user: string): string {
  const local = userInfo().username;
  const t = p.replace(/%([%dhpru])/g, (_, c: string) => ({ '%': '%', d: homedir(), h: host, p: String(port), r: user, u: local })[c]!);
  return expandHome(t);
}
