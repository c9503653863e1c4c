/**
 * SSH to a server with ssh2, as OpenSSH would: the host key checked against known_hosts (hashed
 * names, patterns, @revoked, and host certificates of an @cert-authority; an unknown or changed
 * key is refused unless the operator accepts new keys explicitly), keys offered from ssh-agent
 * first and then from key files, hops through ProxyJump bastions (each checked the same way), and
 * commands with a time limit and an output cap, so a server that hangs or floods cannot hold
 * anything up. Errors name the server and say what to do; they never contain a key or a password.
 */
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { certificateProblem, knownHostsName, lookupHostKeys, parseHostCertificate, type HostKeys } from './known-hosts.js';

/** One SSH endpoint: the server, or a bastion on the way. */
export interface SshHop {
  /** Name for messages (connect_info hostname, or the bastion as written). */
  name: string;
  host: string;
  port: number;
  username: string;
  /** Private key files, offered in order after the agent's keys (protected ones are left to the agent). */
  keyPaths?: string[];
}

export interface SshTarget extends SshHop {
  password?: string;
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string;
  knownHostsPath: string;
  /** Accept and record a host key that known_hosts does not have yet (never a changed or revoked one). */
  acceptNewHostKey?: boolean;
  /** Bastions to go through, nearest first (ProxyJump). */
  jumps?: SshHop[];
  timeoutMs?: number;
}

export class SshError extends Error {
  override readonly name = 'SshError';
  constructor(
    readonly server: string,
    readonly code: 'UNREACHABLE' | 'HOST_KEY_UNKNOWN' | 'HOST_KEY_CHANGED' | 'HOST_KEY_REVOKED' | 'AUTH_FAILED' | 'EXEC_FAILED' | 'TIMEOUT' | 'OUTPUT_TOO_LARGE',
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  /** Milliseconds before the command is given up (and killed on the server). Default 60 s. */
  timeoutMs?: number;
  /** Bytes of stdout + stderr kept before the command is given up as flooding. Default 4 MiB. */
  maxOutputBytes?: number;
}

export const EXEC_DEFAULTS = { timeoutMs: 60_000, maxOutputBytes: 4 << 20 };

/**
 * The host certificate a server offers (ssh-keyscan -c: ssh2 cannot negotiate certificate host
 * keys itself). Only reachable directly: a server behind a bastion needs its plain key in known_hosts.
 */
function fetchHostCertificates(host: string, port: number, timeoutMs: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    execFile('ssh-keyscan', ['-c', '-T', String(Math.max(1, Math.ceil(timeoutMs / 1000))), '-p', String(port), host], { timeout: timeoutMs + 1000, maxBuffer: 1 << 20 }, (_e, stdout) => {
      resolve(
        String(stdout ?? '')
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          // "TYPE BLOB" (ssh-keyscan -c writes no host name), or "HOST TYPE BLOB"
          .map((f) => {
            const at = f.findIndex((x) => x.endsWith('-cert-v01@openssh.com'));
            return at >= 0 ? f[at + 1] : undefined;
          })
          .filter((b): b is string => !!b)
          .map((b) => Buffer.from(b, 'base64')),
      );
    });
  });
}

type Verdict = { ok: true } | { ok: false; problem: SshError } | { ok: 'certificate'; keys: HostKeys };

/** The host key judged against known_hosts, without the network. */
function judgeHostKey(hop: SshHop, t: SshTarget, key: Buffer): Verdict {
  const text = existsSync(t.knownHostsPath) ? readFileSync(t.knownHostsPath, 'utf8') : '';
  const keys = lookupHostKeys(text, hop.host, hop.port);
  const blob = key.toString('base64');
  const where = `${hop.host}:${hop.port}`;
  if (keys.revoked.has(blob))
    return { ok: false, problem: new SshError(hop.name, 'HOST_KEY_REVOKED', `host key of ${where} is marked @revoked in ${t.knownHostsPath}: the connection is refused; replace the server's key`) };
  if (keys.keys.includes(blob)) return { ok: true };
  if (keys.cas.length) return { ok: 'certificate', keys };
  if (keys.keys.length)
    return {
      ok: false,
      problem: new SshError(hop.name, 'HOST_KEY_CHANGED', `host key of ${where} has CHANGED since it was recorded in ${t.knownHostsPath}; someone may be intercepting the connection, or the server was reinstalled: check it, then remove the old line`),
    };
  if (!t.acceptNewHostKey)
    return { ok: false, problem: new SshError(hop.name, 'HOST_KEY_UNKNOWN', `host key of ${where} is not in ${t.knownHostsPath}; add it (ssh-keyscan) or accept new keys explicitly`) };
  const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString();
  appendFileSync(t.knownHostsPath, `${knownHostsName(hop.host, hop.port)} ${type} ${blob}\n`);
  return { ok: true };
}

/** Accepts `key` when the server's certificate for it is signed by a trusted CA for this host. */
async function certificateVerdict(hop: SshHop, key: Buffer, keys: HostKeys, timeoutMs: number, direct: boolean): Promise<SshError | undefined> {
  const where = `${hop.host}:${hop.port}`;
  if (!direct) return new SshError(hop.name, 'HOST_KEY_UNKNOWN', `${where} is behind a bastion, where its host certificate cannot be fetched: add its plain host key to known_hosts`);
  const problems: string[] = [];
  for (const blob of await fetchHostCertificates(hop.host, hop.port, timeoutMs)) {
    try {
      const cert = parseHostCertificate(blob);
      if (!cert.publicKey.equals(key)) continue; // a certificate for another of its keys
      const problem = certificateProblem(cert, hop.host, keys);
      if (!problem) return undefined;
      problems.push(problem);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  return new SshError(
    hop.name,
    problems.some((p) => p.includes('revoked')) ? 'HOST_KEY_REVOKED' : 'HOST_KEY_UNKNOWN',
    `host key of ${where} is not in known_hosts and ${problems.length ? `its certificate is refused: ${problems.join('; ')}` : 'the server offers no certificate for it'}, though an @cert-authority matches it`,
  );
}

/** One SSH connection over `sock` (or TCP), host key checked, authenticated. */
function connectHop(hop: SshHop, t: SshTarget, sock: Duplex | undefined, password: string | undefined): Promise<Client> {
  const client = new Client();
  const timeoutMs = t.timeoutMs ?? 10_000;
  let keyProblem: SshError | undefined;
  // ssh2 tries these in order (its typings do not describe the object form of the list)
  const auth: { type: string; username: string; [k: string]: unknown }[] = [];
  if (t.agent) auth.push({ type: 'agent', username: hop.username, agent: t.agent });
  for (const p of hop.keyPaths ?? []) {
    try {
      auth.push({ type: 'publickey', username: hop.username, key: readFileSync(p) });
    } catch {
      /* judged by conf check; an unreadable key is simply not offered */
    }
  }
  if (password !== undefined) auth.push({ type: 'password', username: hop.username, password });
  const cfg: ConnectConfig = {
    host: hop.host,
    port: hop.port,
    username: hop.username,
    readyTimeout: timeoutMs,
    ...(sock ? { sock } : {}),
    authHandler: auth as unknown as ConnectConfig['authHandler'],
    hostVerifier: ((key: Buffer, verify: (ok: boolean) => void) => {
      const v = judgeHostKey(hop, t, key);
      if (v.ok === true) return verify(true);
      if (v.ok === false) {
        keyProblem = v.problem;
        return verify(false);
      }
      certificateVerdict(hop, key, v.keys, timeoutMs, !sock).then((problem) => {
        keyProblem = problem;
        verify(!problem);
      });
    }) as unknown as ConnectConfig['hostVerifier'],
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    client
      .once('ready', () => {
        settled = true;
        resolve(client);
      })
      // on, not once: ssh2 may report a second error (the socket closing after a refused key),
      // and one after the session is up; either would be thrown as unhandled without a listener
      .on('error', (e: Error & { level?: string; code?: string }) => {
        if (settled) return; // a command running then fails on its own channel
        settled = true;
        endSurely(client);
        if (keyProblem) return reject(keyProblem);
        if (e.level === 'client-authentication') {
          const tried = [t.agent ? 'ssh-agent' : '', hop.keyPaths?.length ? `key ${hop.keyPaths.join(', ')}` : '', password !== undefined ? 'password' : ''].filter(Boolean).join(', ') || 'nothing to offer';
          return reject(new SshError(hop.name, 'AUTH_FAILED', `authentication as ${hop.username} failed (tried ${tried}): check the credentials in connect_info or the ssh config`));
        }
        reject(new SshError(hop.name, 'UNREACHABLE', `cannot reach ${hop.host}:${hop.port}${sock ? ' through the bastion' : ''}: ${e.code ?? e.message}; check the address, port and that sshd runs`));
      })
      .connect(cfg);
  });
}

/**
 * Ends a connection politely, and for sure: a server that does not read our goodbye (one still
 * flooding a given-up channel, one refused at its host key, a host gone) would leave a
 * half-open socket that keeps the process alive, so it is destroyed a moment later if still open.
 */
function endSurely(c: Client): void {
  // ssh2's destroy() does nothing once end() has half-closed the socket: the socket itself goes
  const sock = (c as unknown as { _sock?: { destroyed?: boolean; destroy(): void } })._sock;
  c.end();
  setTimeout(() => sock && !sock.destroyed && sock.destroy(), 1000).unref();
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    /** Bastion connections the session runs through, closed with it. */
    private readonly via: Client[],
    readonly target: SshTarget,
  ) {}

  /** Connects through every bastion in `t.jumps`, then to the server. */
  static async connect(t: SshTarget): Promise<SshSession> {
    const via: Client[] = [];
    let sock: Duplex | undefined;
    try {
      for (const hop of t.jumps ?? []) {
        const c = await connectHop(hop, t, sock, undefined);
        via.push(c);
        const next = t.jumps![via.length] ?? t;
        sock = await new Promise<ClientChannel>((resolve, reject) =>
          c.forwardOut('127.0.0.1', 0, next.host, next.port, (err, ch) => (err ? reject(new SshError(hop.name, 'UNREACHABLE', `the bastion cannot open a connection to ${next.host}:${next.port}: ${err.message}`)) : resolve(ch))),
        );
      }
      return new SshSession(await connectHop(t, t, sock, t.password), via, t);
    } catch (e) {
      for (const c of via) endSurely(c);
      throw e;
    }
  }

  /**
   * Runs a command; resolves with its exit code and output (does not throw on non-zero). A
   * command that outlasts its time or floods its output is given up: its channel is closed
   * (the server's sshd then hangs it up) and an SshError says which.
   */
  exec(command: string, o: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = o.timeoutMs ?? EXEC_DEFAULTS.timeoutMs;
    const cap = o.maxOutputBytes ?? EXEC_DEFAULTS.maxOutputBytes;
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new SshError(this.target.name, 'EXEC_FAILED', `running a command failed: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let bytes = 0;
        let done = false;
        const giveUp = (e: SshError) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          stream.signal('KILL');
          stream.close();
          reject(e);
        };
        const timer = setTimeout(() => giveUp(new SshError(this.target.name, 'TIMEOUT', `a command did not finish within ${timeoutMs / 1000} s: the server hangs or is overloaded; it was given up`)), timeoutMs);
        timer.unref(); // the channel keeps the process alive while the command runs, not this timer
        const take = (into: Buffer[]) => (d: Buffer) => {
          if (done) return;
          bytes += d.length;
          if (bytes > cap) return giveUp(new SshError(this.target.name, 'OUTPUT_TOO_LARGE', `a command wrote more than ${cap} bytes: it was given up`));
          into.push(d);
        };
        stream.on('data', take(out));
        stream.stderr.on('data', take(errOut));
        stream.on('close', (code: number | null) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errOut).toString() });
        });
        if (o.input !== undefined) stream.end(o.input);
      });
    });
  }

  /** Ends the session and its bastion connections (endSurely). */
  close(): void {
    for (const c of [this.client, ...[...this.via].reverse()]) endSurely(c);
  }
}
