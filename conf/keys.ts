/**
 * An SSH private key file as ssh itself would judge it, before the manager tries to use it:
 * a regular file only its owner can read, holding a private key that opens without a passphrase
 * (the manager cannot type one, but an ssh-agent can hold it). Problems as sentences; never the key's content.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import ssh2 from 'ssh2';

const { utils } = ssh2;

/**
 * Problems with a private key file (empty: good); `seen` remembers files already checked. With
 * an ssh-agent running, a key protected by a passphrase is fine: the agent holds it (ssh-add).
 */
export function checkPrivateKey(path: string, seen: Map<string, string[]>, agent = false): string[] {
  const key = `${agent}:${path}`;
  const known = seen.get(key);
  if (known) return known;
  const problems = judge(path, agent);
  seen.set(key, problems);
  return problems;
}

function judge(path: string, agent: boolean): string[] {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [code === 'ENOENT' ? `${path} does not exist` : code === 'EACCES' ? `${path} cannot be read (permission denied)` : `${path} cannot be opened (${code})`];
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return [`${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a private key`];
    if (st.size === 0) return [`${path} is empty: give the private key file (e.g. ~/.ssh/id_ed25519)`];
    if (st.size > 64 << 10) return [`${path} is too large to be a private key`];
    const buf = Buffer.alloc(st.size);
    readSync(fd, buf, 0, st.size, 0);
    const problems: string[] = [];
    if (st.mode & 0o077) problems.push(`${path} can be read by others (mode ${(st.mode & 0o777).toString(8)}): ssh refuses such a key; run chmod 600 ${path}`);
    const parsed = utils.parseKey(buf);
    const first = Array.isArray(parsed) ? parsed[0] : parsed;
    if (first instanceof Error || !first) {
      const msg = first instanceof Error ? first.message : 'unreadable';
      if (!/passphrase/i.test(msg)) problems.push(`${path} is not an SSH private key (${msg.replace(/:.*$/, '')})`);
      else if (!agent) problems.push(`${path} is protected by a passphrase, which the manager cannot type: load it into ssh-agent (ssh-add ${path}) and run the manager with SSH_AUTH_SOCK set, or use a key without one`);
    } else if (!first.isPrivateKey()) problems.push(`${path} holds a public key: give the private key (the file without .pub)`);
    return problems;
  } finally {
    closeSync(fd);
  }
}
