/**
 * SSH to a server with ssh2: key authentication (or a password where configured), the server's
 * host key checked against a known_hosts file (an unknown or changed key is refused unless the
 * operator accepts new keys explicitly), and command execution with exit codes. Errors name the
 * server and say what to do; they never contain a key or a password.
 */
import { Client, type ConnectConfig } from 'ssh2';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

export interface SshTarget {
  /** Server name for messages (connect_info hostname). */
  name: string;
  host: string;
  port: number;
  username: string;
  privateKeyPath?: string;
  password?: string;
  knownHostsPath: string;
  /** Accept and record a host key that known_hosts does not have yet (never a changed one). */
  acceptNewHostKey?: boolean;
  timeoutMs?: number;
}

export class SshError extends Error {
  override readonly name = 'SshError';
  constructor(
    readonly server: string,
    readonly code: 'UNREACHABLE' | 'HOST_KEY_UNKNOWN' | 'HOST_KEY_CHANGED' | 'AUTH_FAILED' | 'EXEC_FAILED',
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

/** Keys known for host[:port], as base64 blobs, from an OpenSSH known_hosts file. */
function knownKeys(path: string, host: string, port: number): string[] {
  if (!existsSync(path)) return [];
  const names = new Set(port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`]);
  const keys: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [hosts, , blob] = line.trim().split(/\s+/);
    if (!hosts || hosts.startsWith('#') || !blob) continue;
    if (hosts.split(',').some((h) => names.has(h))) keys.push(blob);
  }
  return keys;
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {}

  static connect(t: SshTarget): Promise<SshSession> {
    const client = new Client();
    const known = knownKeys(t.knownHostsPath, t.host, t.port);
    let keyProblem: SshError | undefined;
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.username,
      readyTimeout: t.timeoutMs ?? 10_000,
      hostVerifier: (key: Buffer) => {
        const blob = key.toString('base64');
        if (known.includes(blob)) return true;
        if (known.length > 0) {
          keyProblem = new SshError(t.name, 'HOST_KEY_CHANGED',
            `host key of ${t.host}:${t.port} has CHANGED since it was recorded in ${t.knownHostsPath}; ` +
            'someone may be intercepting the connection, or the server was reinstalled: check it, then remove the old line');
          return false;
        }
        if (!t.acceptNewHostKey) {
          keyProblem = new SshError(t.name, 'HOST_KEY_UNKNOWN',
            `host key of ${t.host}:${t.port} is not in ${t.knownHostsPath}; add it (ssh-keyscan) or accept new keys explicitly`);
          return false;
        }
        const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString();
        appendFileSync(t.knownHostsPath, `${t.port === 22 ? t.host : `[${t.host}]:${t.port}`} ${type} ${blob}\n`);
        return true;
      },
    };
    if (t.privateKeyPath) cfg.privateKey = readFileSync(t.privateKeyPath);
    if (t.password) cfg.password = t.password;
    return new Promise((resolve, reject) => {
      let settled = false;
      client
        .once('ready', () => {
          settled = true;
          resolve(new SshSession(client, t));
        })
        // on, not once: ssh2 may report a second error (the socket closing after a refused key),
        // and one after the session is up; either would be thrown as unhandled without a listener
        .on('error', (e: Error & { level?: string; code?: string }) => {
          if (settled) return; // a command running then fails on its own channel
          settled = true;
          client.end();
          if (keyProblem) return reject(keyProblem);
          if (e.level === 'client-authentication')
            return reject(new SshError(t.name, 'AUTH_FAILED', `authentication as ${t.username} failed (${t.privateKeyPath ? 'key' : 'password'}): check the credentials in connect_info`));
          reject(new SshError(t.name, 'UNREACHABLE', `cannot reach ${t.host}:${t.port}: ${e.code ?? e.message}; check the address, port and that sshd runs`));
        })
        .connect(cfg);
    });
  }

  /** Runs a command; resolves with its exit code and output (does not throw on non-zero). */
  exec(command: string, input?: string | Buffer): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new SshError(this.target.name, 'EXEC_FAILED', `running a command failed: ${err.message}`));
        let stdout = '';
        let stderr = '';
        stream.on('data', (d: Buffer) => (stdout += d.toString()));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        stream.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
        if (input !== undefined) stream.end(input);
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
