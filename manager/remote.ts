/**
 * What the manager does on one server, over SSH: check it can run an observer (root, Node.js,
 * tar, a safe install_dir), install the bundle (uploaded only when that bundle is not there yet),
 * write the observer's conf (secrets in 0600 files, sent on stdin, never on a command line), start
 * the observer (a systemd unit where systemd is PID 1, else under the supervisor), and stop it
 * leaving nothing behind. Every command has a time limit on both ends and an output cap.
 * Processes are found by pid file and checked by their exact arguments, never by a pattern.
 * Layout on the server, under install_dir:
 *   bundles/HASH/  current -> bundles/HASH   conf/   run/   spool/   observer.log (rotated)
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { SshSession } from './ssh.js';
import type { Bundle } from './bundle.js';
import { keyToHex } from '../protocol/timesync.js';
import type { Deployment, Server } from '../conf/deployment.js';
import type { MeshInfo } from '../conf/schema.js';
import { meshAnchors } from '../protocol/mesh.js';
import { OBSERVER_HEAP_MB } from '../observer/limits.js';
import { observerUnit, unitName } from './systemd.js';
import { observerCredentials } from './observer-users.js';

/** A server that can be reached but cannot run an observer (SshError is for SSH itself). */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
  constructor(
    readonly server: string,
    readonly code: 'NOT_ROOT' | 'NO_NODE' | 'NODE_VERSION' | 'NO_TAR' | 'UNSAFE_INSTALL_DIR' | 'COMMAND_FAILED' | 'NO_HEARTBEAT',
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

/** A single-quoted shell word. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Seconds a remote step may take: most are instant; an upload depends on the link. */
export const STEP_TIMEOUT_S = { quick: 20, upload: 180, stop: 40 };
/** Bytes of output a remote step may print before it is given up. */
export const STEP_OUTPUT_CAP = 1 << 20;

export function connectServer(d: Deployment, s: Server, acceptNewHostKey: boolean, timeoutMs = 10_000): Promise<SshSession> {
  return SshSession.connect({
    name: s.hostname,
    host: s.sshHost,
    port: s.port,
    username: s.username,
    keyPaths: s.keyPaths,
    ...(s.sshPassword !== undefined ? { password: s.sshPassword } : {}),
    ...(d.agent ? { agent: d.agent } : {}),
    jumps: s.jumps,
    knownHostsPath: d.knownHostsPath,
    acceptNewHostKey: acceptNewHostKey || d.connect.accept_new_host_keys,
    timeoutMs,
  });
}

/** Every folder from / down to `dir`, the way ls would name them. */
export function pathPrefixes(dir: string): string[] {
  const parts = dir.split('/').filter(Boolean);
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}

/**
 * Why install_dir is not safe for a program that runs as root (empty: it is): each existing
 * folder on the way must be a real directory (no symbolic link), owned by root and not writable
 * by group or others; otherwise whoever can write there could replace the observer. `stats` are
 * lines "PATH|link" or "PATH|UID|MODE(octal)|TYPE" for the folders that exist.
 */
export function installDirProblems(dir: string, stats: string[]): string[] {
  const problems: string[] = [];
  for (const line of stats) {
    const [path, uid, mode, type] = line.split('|');
    if (uid === 'link') {
      problems.push(`${path} is a symbolic link: give install_dir as a real path without links`);
      continue;
    }
    if (type !== 'directory') problems.push(`${path} is a ${type}, not a directory`);
    if (uid !== '0') problems.push(`${path} is owned by uid ${uid}, not root: chown root ${path} (the observer runs as root from there)`);
    const m = parseInt(mode ?? '0', 8);
    if (m & 0o022) problems.push(`${path} is writable by ${m & 0o020 ? 'its group' : ''}${(m & 0o022) === 0o022 ? ' and ' : ''}${m & 0o002 ? 'others' : ''} (mode ${mode}): chmod go-w ${path}, or choose an install_dir under a folder only root can write`);
  }
  return problems.length ? [`install_dir ${dir} is not safe:`, ...problems] : [];
}

export class RemoteServer {
  private node = 'node';
  /** systemd is PID 1 on the server: the observer runs as a unit (learned by check()). */
  private systemd = false;
  /** Host-jitter modules the observer runs (function_info.yaml jitter), set by configure(). */
  private jitter: string[] = [];
  /** The observer's metrics endpoint (function_info.yaml metrics), set by configure(). */
  private metrics = { address: '127.0.0.1', port: 9478 };
  private readonly sudo: string;
  readonly dir: string;

  constructor(
    readonly ssh: SshSession,
    readonly server: Server,
  ) {
    this.sudo = server.username === 'root' ? '' : 'sudo -n ';
    this.dir = server.installDir;
  }

  /**
   * Runs a shell command as root, killed on the server after `timeoutS` (coreutils timeout) and
   * given up here a little later; throws ProvisionError naming the server when it fails.
   */
  async run(what: string, command: string, input?: string | Buffer, timeoutS = STEP_TIMEOUT_S.quick): Promise<string> {
    const r = await this.ssh.exec(`${this.sudo}timeout -k 3 ${timeoutS} sh -c ${q(command)}`, { ...(input !== undefined ? { input } : {}), timeoutMs: (timeoutS + 5) * 1000, maxOutputBytes: STEP_OUTPUT_CAP });
    if (r.code === 124 || r.code === 137) throw new ProvisionError(this.server.hostname, 'COMMAND_FAILED', `${what} did not finish within ${timeoutS} s on the server and was stopped`);
    if (r.code !== 0) throw new ProvisionError(this.server.hostname, 'COMMAND_FAILED', `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    return r.stdout;
  }

  /** Root, a Node.js of the bundle's major version, tar, a safe install_dir; is systemd PID 1? */
  async check(bundle: Bundle): Promise<void> {
    const statDirs = pathPrefixes(this.dir).map(q).join(' ');
    const out = await this.run(
      'checking the server',
      'id -u; command -v node || echo none; node --version 2>/dev/null || echo none; command -v tar || echo none; cat /proc/1/comm 2>/dev/null || echo unknown; ' +
        `for p in ${statDirs}; do if [ -L "$p" ]; then echo "stat:$p|link"; elif [ -e "$p" ]; then echo "stat:$(stat -c '%n|%u|%a|%F' -- "$p")"; fi; done`,
    );
    const lines = out.trim().split('\n');
    const [uid, nodePath, version, tar, init] = lines;
    if (uid !== '0') throw new ProvisionError(this.server.hostname, 'NOT_ROOT', `commands do not run as root (uid ${uid}): log in as root or allow ${this.server.username} sudo without a password`);
    if (nodePath === 'none' || !version?.startsWith('v'))
      throw new ProvisionError(this.server.hostname, 'NO_NODE', `Node.js is not installed: install Node.js ${bundle.nodeMajor} (Debian: apt-get install nodejs)`);
    if (Number(version.slice(1).split('.')[0]) !== bundle.nodeMajor)
      throw new ProvisionError(this.server.hostname, 'NODE_VERSION', `Node.js ${version} is installed, the observer's addon is built for Node.js ${bundle.nodeMajor}: install that major version`);
    if (tar === 'none') throw new ProvisionError(this.server.hostname, 'NO_TAR', 'tar is not installed: install it (apt-get install tar)');
    const unsafe = installDirProblems(this.dir, lines.filter((l) => l.startsWith('stat:')).map((l) => l.slice(5)));
    if (unsafe.length) throw new ProvisionError(this.server.hostname, 'UNSAFE_INSTALL_DIR', unsafe.join(' '));
    this.node = nodePath!;
    this.systemd = init === 'systemd';
  }

  /** Installs the bundle unless it is there; returns the bytes uploaded (0: it was). */
  async install(bundle: Bundle): Promise<number> {
    const target = `${this.dir}/bundles/${bundle.hash}`;
    const have = await this.run('looking for the bundle', `test -f ${q(target)}/.complete && echo yes || echo no`);
    let sent = 0;
    if (have.trim() !== 'yes') {
      await this.run(
        'unpacking the observer bundle',
        // a part folder of this shell's own: two provisionings of one server (a job left by a killed manager) cannot collide
        `umask 022 && p=${q(target)}.part.$$ && rm -rf "$p" && mkdir -p "$p" && tar -xzf - -C "$p" && touch "$p/.complete" && ` +
          `if [ -f ${q(target)}/.complete ]; then rm -rf "$p"; else rm -rf ${q(target)} && mv "$p" ${q(target)}; fi`,
        readFileSync(bundle.path),
        STEP_TIMEOUT_S.upload,
      );
      sent = bundle.bytes;
    }
    // older bundles go: a running observer keeps the files it has open
    await this.run('switching to the bundle', `ln -sfn bundles/${bundle.hash} ${q(this.dir)}/current && cd ${q(this.dir)}/bundles && for b in *; do case "$b" in ${q(bundle.hash)}|*.part.*) ;; *) rm -rf -- "$b" ;; esac; done`);
    return sent;
  }

  /** Writes the observer's conf in one step: sampling, Redis (password in a 0600 file), time sync. */
  async configure(d: Deployment): Promise<void> {
    this.jitter = d.functions.jitter;
    this.metrics = d.functions.metrics;
    // TLS to Redis: the CA (and this side's certificate and key, for mutual TLS) travel with the conf
    const t = d.redis.tlsFiles;
    const tls = t && { ca_file: 'redis-ca.pem', ...(t.cert ? { cert_file: 'redis-client.pem', key_file: 'redis-client.key' } : {}), ...(t.servername ? { server_name: t.servername } : {}) };
    // with observer_users, the observer's own Redis user and password, and it signs its entries
    const own = d.redis.observer_users ? observerCredentials(d, this.server.hostname) : undefined;
    const password = own ? own.password : d.redis.secret;
    const files: Record<string, string> = {
      'sampling_info.yaml': stringify(d.sampling),
      'redis_info.yaml': stringify({
        address: d.redis.address, port: d.redis.port, max_stream_entries: d.redis.max_stream_entries, record_shards: d.redis.record_shards,
        ...(own ? { username: own.username } : d.redis.username ? { username: d.redis.username } : {}),
        ...(password !== undefined ? { password_file: 'redis.password' } : {}),
        observer_users: own ? 1 : 0,
        ...(tls ? { tls } : {}),
      }),
    };
    if (password !== undefined) files['redis.password'] = password + '\n';
    if (t) {
      files['redis-ca.pem'] = t.ca;
      if (t.cert && t.key) {
        files['redis-client.pem'] = t.cert;
        files['redis-client.key'] = t.key;
      }
    }
    if (d.ping && d.functions.timesync) {
      const { port, eth, mode, rate_limit } = d.ping;
      // the responder answers the manager's probes and the other probers the operator listed, and with the mesh its peers' too
      const mesh = d.timeSync.mesh;
      const nodes = mesh.enabled ? d.servers.map((s) => ({ name: s.hostname, address: d.ping!.address ?? s.address })) : [];
      const probers = [...new Set([d.manager.address, ...(d.ping.probers ?? []), ...nodes.map((n) => n.address)])];
      files['ping_info.yaml'] = stringify({ port, eth, mode, rate_limit, probers, key_file: 'ping.key' });
      files['ping.key'] = keyToHex(d.pingKey!) + '\n';
      // an anchor probes the manager too (its responder answers the anchors)
      const anchor = mesh.enabled && meshAnchors(d.servers.map((s) => s.hostname), mesh.anchors).includes(this.server.hostname);
      if (mesh.enabled)
        files['mesh_info.yaml'] = stringify({
          nodes, interval: mesh.interval, probes: mesh.probes, full_mesh: mesh.full_mesh, ring: mesh.ring, random: mesh.random, timeout_ms: d.timeSync.timeout_ms, max_probe_rate: mesh.max_probe_rate,
          ...(anchor ? { manager: d.manager.address } : {}),
        } satisfies MeshInfo);
    }
    // the files travel on stdin as JSON (secrets never on a command line); the server's node writes them
    const write = 'const fs=require("fs"),p=require("path"),d=process.argv[1],f=JSON.parse(fs.readFileSync(0,"utf8"));for(const n of fs.readdirSync(d))if(n.endsWith(".yaml"))fs.rmSync(p.join(d,n));for(const[n,t]of Object.entries(f))fs.writeFileSync(p.join(d,n),t,{mode:0o600});';
    const conf = `${this.dir}/conf`;
    await this.run('writing the conf', `umask 077 && mkdir -p ${q(conf)} && ${q(this.node)} -e ${q(write)} ${q(conf)}`, JSON.stringify(files));
  }

  /** The observer's command line (relative to current/ under the supervisor). */
  private observerArgv(cli: string): string[] {
    const s = this.server;
    return [
      `--max-old-space-size=${OBSERVER_HEAP_MB}`, cli, 'observer', '--conf', `${this.dir}/conf`, '--node', s.hostname, '--spool-dir', `${this.dir}/spool`,
      ...(s.eth ? ['--interfaces', s.eth.join(',')] : []),
      ...(this.jitter.length ? ['--jitter', this.jitter.join(',')] : []),
      '--metrics-host', this.metrics.address, '--metrics-port', String(this.metrics.port),
    ];
  }

  /** Starts the observer (stopping one that runs); resolves with the pid of what keeps it running. */
  async start(): Promise<number> {
    await this.stop(undefined, false); // sweeps attachments only after stopping something: a new observer sweeps at its start
    if (this.systemd) {
      const unit = unitName(this.dir);
      const text = observerUnit({ installDir: this.dir, node: this.node, observerArgv: this.observerArgv(`${this.dir}/current/dist/observer-cli.js`) });
      const out = await this.run(
        'starting the observer unit',
        `cat > /etc/systemd/system/${unit} && systemctl daemon-reload && systemctl enable --now ${unit} >/dev/null 2>&1 && systemctl restart ${unit} && systemctl show -p MainPID --value ${unit}`,
        text,
      );
      return Number(out.trim());
    }
    const run = `${this.dir}/run`;
    const cmd =
      `cd ${q(`${this.dir}/current`)} && mkdir -p ${q(run)} && ` +
      `setsid nohup ${q(this.node)} dist/observer-cli.js supervise --run-dir ${q(run)} --log ${q(`${this.dir}/observer.log`)} -- ${[this.node, ...this.observerArgv('dist/observer-cli.js')].map(q).join(' ')} ` +
      `> ${q(`${this.dir}/supervisor.log`)} 2>&1 < /dev/null & ` +
      `for i in $(seq 50); do test -s ${q(`${run}/supervisor.pid`)} && cat ${q(`${run}/supervisor.pid`)} && exit 0; sleep 0.1; done; ` +
      `echo 'the supervisor did not start:' >&2; tail -5 ${q(`${this.dir}/supervisor.log`)} >&2; exit 1`;
    return Number((await this.run('starting the observer', cmd)).trim());
  }

  /** The supervisor's state (or the unit's), or undefined when none runs. */
  async state(): Promise<{ pid: number; childPid?: number; restarts: number; lastExit?: string; state: string } | undefined> {
    if (this.systemd) {
      const out = await this.run('reading the observer state', `systemctl show -p MainPID -p NRestarts -p ExecMainStatus -p ActiveState ${unitName(this.dir)}`);
      const v = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
      return v.ActiveState === 'inactive' ? undefined : { pid: 1, childPid: Number(v.MainPID), restarts: Number(v.NRestarts ?? 0), lastExit: `status ${v.ExecMainStatus}`, state: v.ActiveState ?? 'unknown' };
    }
    const out = await this.run('reading the observer state', `f=${q(`${this.dir}/run/supervisor.json`)}; if [ -f "$f" ] && kill -0 "$(cat ${q(`${this.dir}/run/supervisor.pid`)} 2>/dev/null)" 2>/dev/null; then cat "$f"; fi`);
    return out.trim() ? JSON.parse(out) : undefined;
  }

  /**
   * Stops the observer of this install_dir: its unit, or its supervisor by pid file (SIGTERM:
   * the observer detaches its programs and flushes its records; SIGKILL after 20 s), then the
   * observer the supervisor last started (its pid in run/supervisor.json, left there when the
   * supervisor itself was killed). A pid is acted on only when its /proc/PID/cmdline has exactly
   * this install's arguments (a comparison of whole arguments, never a pattern: a reused pid is
   * left alone). Removes leftover attachments and returns what it still finds: an observer of
   * this install, XDP on the time-sync interface.
   */
  async stop(pingEth?: string, sweep = true): Promise<string[]> {
    const run = `${this.dir}/run`;
    const pidFile = `${run}/supervisor.pid`;
    const stateFile = `${run}/supervisor.json`;
    const unit = unitName(this.dir);
    const cmd =
      // has process $1 every argument after it, each exactly?
      `has() { p=$1; shift; [ -r /proc/$p/cmdline ] || return 1; a=$(tr '\\0' '\\n' < /proc/$p/cmdline); for w in "$@"; do printf '%s\\n' "$a" | grep -Fxq -- "$w" || return 1; done; }; ` +
      `observer() { c=$(sed -n 's/.*"childPid":\\([0-9]*\\).*/\\1/p' ${q(stateFile)} 2>/dev/null); [ -n "$c" ] && has "$c" observer ${q(`${this.dir}/conf`)} && echo "$c"; }; ` +
      `found=${sweep ? 1 : ''}; if [ -f /etc/systemd/system/${unit} ]; then found=1; systemctl disable --now ${unit} >/dev/null 2>&1; rm -f /etc/systemd/system/${unit}; systemctl daemon-reload; fi; ` +
      `o=$(observer); p=$(cat ${q(pidFile)} 2>/dev/null); if [ -n "$p" ] && has "$p" supervise ${q(run)}; then found=1; kill -TERM "$p"; ` +
      `for i in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null; fi; ` +
      `if [ -n "$o" ] && has "$o" observer ${q(`${this.dir}/conf`)}; then found=1; kill -KILL "$o"; sleep 0.2; fi; ` +
      // attachments a killed observer left (the next observer sweeps them too when it starts)
      `if [ -n "$found" ] && [ -e ${q(`${this.dir}/current`)} ]; then cd ${q(`${this.dir}/current`)} && ${q(this.node)} dist/observer-cli.js cleanup >/dev/null 2>&1; fi; ` +
      `left=$(observer); echo "procs: $left"; [ -n "$left" ] || rm -f ${q(pidFile)} ${q(stateFile)}; ` +
      (pingEth ? `echo "xdp: $(ip -o link show dev ${q(pingEth)} 2>/dev/null | grep -o 'xdp[a-z]*' | tr '\\n' ' ')"` : 'echo "xdp: "');
    const out = await this.run('stopping the observer', cmd, undefined, STEP_TIMEOUT_S.stop);
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
