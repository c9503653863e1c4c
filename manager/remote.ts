/**
 * What the manager does on one server, over SSH: check it can run an observer, install the
 * bundle (uploaded only when that bundle is not there yet), write the observer's conf (secrets
 * in 0600 files, sent on stdin, never on a command line), start the observer under the
 * supervisor, and stop it leaving nothing behind. Layout on the server, under install_dir:
 *   bundles/HASH/  current -> bundles/HASH   conf/   run/   spool/   observer.log
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { SshSession } from './ssh.js';
import type { Bundle } from './bundle.js';
import { keyToHex } from '../protocol/timesync.js';
import type { Deployment, Server } from '../conf/deployment.js';
import { OBSERVER_HEAP_MB } from '../observer/limits.js';

/** A server that can be reached but cannot run an observer (SshError is for SSH itself). */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
  constructor(
    readonly server: string,
    readonly code: 'NOT_ROOT' | 'NO_NODE' | 'NODE_VERSION' | 'NO_TAR' | 'COMMAND_FAILED' | 'NO_HEARTBEAT',
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

/** A single-quoted shell word. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function connectServer(d: Deployment, s: Server, acceptNewHostKey: boolean, timeoutMs = 10_000): Promise<SshSession> {
  return SshSession.connect({
    name: s.hostname,
    host: s.address,
    port: s.port,
    username: s.username,
    privateKeyPath: s.keyPath,
    password: s.sshPassword,
    knownHostsPath: d.knownHostsPath,
    acceptNewHostKey: acceptNewHostKey || d.connect.accept_new_host_keys,
    timeoutMs,
  });
}

export class RemoteServer {
  private node = 'node';
  /** Host-jitter modules the observer runs (function_info.yaml jitter), set by configure(). */
  private jitter: string[] = [];
  private readonly sudo: string;
  readonly dir: string;

  constructor(
    readonly ssh: SshSession,
    readonly server: Server,
  ) {
    this.sudo = server.username === 'root' ? '' : 'sudo -n ';
    this.dir = server.installDir;
  }

  /** Runs a shell command as root; throws ProvisionError naming the server when it fails. */
  async run(what: string, command: string, input?: string | Buffer): Promise<string> {
    const r = await this.ssh.exec(`${this.sudo}sh -c ${q(command)}`, input);
    if (r.code !== 0) throw new ProvisionError(this.server.hostname, 'COMMAND_FAILED', `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    return r.stdout;
  }

  /** Root, a Node.js of the bundle's major version, tar. */
  async check(bundle: Bundle): Promise<void> {
    const out = await this.run('checking the server', 'id -u; command -v node || echo none; node --version 2>/dev/null || echo none; command -v tar || echo none');
    const [uid, nodePath, version, tar] = out.trim().split('\n');
    if (uid !== '0') throw new ProvisionError(this.server.hostname, 'NOT_ROOT', `commands do not run as root (uid ${uid}): log in as root or allow ${this.server.username} sudo without a password`);
    if (nodePath === 'none' || !version?.startsWith('v'))
      throw new ProvisionError(this.server.hostname, 'NO_NODE', `Node.js is not installed: install Node.js ${bundle.nodeMajor} (Debian: apt-get install nodejs)`);
    if (Number(version.slice(1).split('.')[0]) !== bundle.nodeMajor)
      throw new ProvisionError(this.server.hostname, 'NODE_VERSION', `Node.js ${version} is installed, the observer's addon is built for Node.js ${bundle.nodeMajor}: install that major version`);
    if (tar === 'none') throw new ProvisionError(this.server.hostname, 'NO_TAR', 'tar is not installed: install it (apt-get install tar)');
    this.node = nodePath!;
  }

  /** Installs the bundle unless it is there; returns the bytes uploaded (0: it was). */
  async install(bundle: Bundle): Promise<number> {
    const target = `${this.dir}/bundles/${bundle.hash}`;
    const have = await this.run('looking for the bundle', `test -f ${q(target)}/.complete && echo yes || echo no`);
    let sent = 0;
    if (have.trim() !== 'yes') {
      await this.run(
        'unpacking the observer bundle',
        `umask 022 && rm -rf ${q(target)}.part && mkdir -p ${q(target)}.part && tar -xzf - -C ${q(target)}.part && rm -rf ${q(target)} && mv ${q(target)}.part ${q(target)} && touch ${q(target)}/.complete`,
        readFileSync(bundle.path),
      );
      sent = bundle.bytes;
    }
    // older bundles go: a running observer keeps the files it has open
    await this.run('switching to the bundle', `ln -sfn bundles/${bundle.hash} ${q(this.dir)}/current && cd ${q(this.dir)}/bundles && for b in *; do [ "$b" = ${q(bundle.hash)} ] || rm -rf -- "$b"; done`);
    return sent;
  }

  /** Writes the observer's conf: sampling, Redis (password in a 0600 file), time sync. */
  async configure(d: Deployment): Promise<void> {
    this.jitter = d.functions.jitter;
    const conf = `${this.dir}/conf`;
    await this.run('writing the conf', `umask 077 && mkdir -p ${q(conf)} && rm -f ${q(conf)}/*.yaml`);
    const files: [string, string][] = [
      ['sampling_info.yaml', stringify(d.sampling)],
      ['redis_info.yaml', stringify({ address: d.redis.address, port: d.redis.port, max_stream_entries: d.redis.max_stream_entries, ...(d.redis.secret !== undefined ? { password_file: 'redis.password' } : {}) })],
    ];
    if (d.redis.secret !== undefined) files.push(['redis.password', d.redis.secret + '\n']);
    if (d.ping && d.functions.timesync) {
      const { port, eth, mode } = d.ping;
      files.push(['ping_info.yaml', stringify({ port, eth, mode, key_file: 'ping.key' })], ['ping.key', keyToHex(d.pingKey!) + '\n']);
    }
    for (const [name, text] of files) await this.run(`writing ${name}`, `umask 077 && cat > ${q(`${conf}/${name}`)}`, text);
  }

  /** Starts the supervisor (stopping one that runs); resolves with its pid. */
  async start(): Promise<number> {
    await this.stop();
    const s = this.server;
    const observer = [
      this.node, `--max-old-space-size=${OBSERVER_HEAP_MB}`, 'dist/observer-cli.js', 'observer', '--conf', `${this.dir}/conf`, '--node', s.hostname, '--spool-dir', `${this.dir}/spool`,
      ...(s.eth ? ['--interfaces', s.eth.join(',')] : []),
      ...(this.jitter.length ? ['--jitter', this.jitter.join(',')] : []),
    ];
    const cmd =
      `cd ${q(`${this.dir}/current`)} && mkdir -p ${q(`${this.dir}/run`)} && ` +
      `setsid nohup ${q(this.node)} dist/observer-cli.js supervise --run-dir ${q(`${this.dir}/run`)} --log ${q(`${this.dir}/observer.log`)} -- ${observer.map(q).join(' ')} ` +
      `> ${q(`${this.dir}/supervisor.log`)} 2>&1 < /dev/null & ` +
      `for i in $(seq 50); do test -s ${q(`${this.dir}/run/supervisor.pid`)} && cat ${q(`${this.dir}/run/supervisor.pid`)} && exit 0; sleep 0.1; done; ` +
      `echo 'the supervisor did not start:' >&2; tail -5 ${q(`${this.dir}/supervisor.log`)} >&2; exit 1`;
    return Number((await this.run('starting the observer', cmd)).trim());
  }

  /** The supervisor's state file, or undefined when none runs. */
  async state(): Promise<{ pid: number; childPid?: number; restarts: number; lastExit?: string; state: string } | undefined> {
    const out = await this.run('reading the observer state', `f=${q(`${this.dir}/run/supervisor.json`)}; if [ -f "$f" ] && kill -0 "$(cat ${q(`${this.dir}/run/supervisor.pid`)} 2>/dev/null)" 2>/dev/null; then cat "$f"; fi`);
    return out.trim() ? JSON.parse(out) : undefined;
  }

  /**
   * Stops the supervisor and its observer (SIGTERM: the observer detaches its programs and
   * flushes its records), kills what is left after 20 s, removes leftover attachments, and
   * returns what it still finds: processes of this install, XDP on the time-sync interface.
   */
  async stop(pingEth?: string): Promise<string[]> {
    const pidFile = `${this.dir}/run/supervisor.pid`;
    const cmd =
      `p=$(cat ${q(pidFile)} 2>/dev/null); if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; ` +
      `for i in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null; fi; ` +
      // [d] and [-]: the patterns must not match this shell's own command line
      `pkill -KILL -f -- ${q(`[d]ist/cli.js observer [-]-conf ${this.dir}/conf`)} 2>/dev/null; ` +
      `test -e ${q(`${this.dir}/current`)} && cd ${q(`${this.dir}/current`)} && ${q(this.node)} dist/observer-cli.js cleanup >/dev/null 2>&1; ` +
      `rm -f ${q(pidFile)}; ` +
      `echo "procs: $(pgrep -f -- ${q(`[d]ist/cli.js observer [-]-conf ${this.dir}/conf`)} | tr '\\n' ' ')"; ` +
      (pingEth ? `echo "xdp: $(ip -o link show dev ${q(pingEth)} 2>/dev/null | grep -o 'xdp[a-z]*' | tr '\\n' ' ')"` : 'echo "xdp: "');
    const out = await this.run('stopping the observer', cmd);
    const left: string[] = [];
    const procs = /procs: (.*)/.exec(out)?.[1]?.trim();
    const xdp = /xdp: (.*)/.exec(out)?.[1]?.trim();
    if (procs) left.push(`observer processes ${procs}`);
    if (xdp) left.push(`${xdp} on ${pingEth}`);
    return left;
  }

  close(): void {
    this.ssh.close();
  }
}
