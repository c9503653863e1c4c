/**
 * SSH as operators have it, against the real sshd of testbed hosts: known_hosts hashed by
 * ssh-keygen -H (with [host]:port), @revoked, a host certificate signed by an @cert-authority,
 * a passphrase-protected key through ssh-agent, and ProxyJump through a bastion that is the only
 * way to a host, from the operator's ssh config. Remote commands that hang or flood are given up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { testbedUp, testbedDown, startExtraSshd, type Testbed, type TestbedHost } from '../local/testbed.js';
import { writeTestbedConf } from '../local/conf.js';
import { checkDeployment, loadDeployment } from '../conf/deployment.js';
import { SshError, SshSession, type SshTarget } from '../manager/ssh.js';
import { connectServer, ProvisionError, RemoteServer } from '../manager/remote.js';

let tb: Testbed;
let dir: string;
let agent: ChildProcess | undefined;
const ID = 'tss';

before(async () => {
  tb = await testbedUp({ id: ID, hosts: 3, router: true });
  dir = mkdtempSync(join(tmpdir(), 'latscope-ssh-'));
});

after(async () => {
  agent?.kill('SIGKILL');
  await testbedDown(ID);
  rmSync(dir, { recursive: true, force: true });
  // what could still hold this file's process open (a test file that never ends times out the suite)
  setTimeout(() => {
    const h = (process as any)._getActiveHandles() as any[];
    console.log(`# still open 5 s after the tests: ${h.map((x) => `${x.constructor?.name} ${x.remoteAddress ?? ''}:${x.remotePort ?? ''} fd ${x._handle?.fd ?? ''} ${x.spawnargs ? x.spawnargs.join(' ') : ''}`).join('; ')}`);
  }, 5000).unref();
});

const hostKeyPub = () => readFileSync(join(tb.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
const target = (h: TestbedHost, knownHostsPath: string, more: Partial<SshTarget> = {}): SshTarget => ({
  name: h.name, host: h.address, port: 22, username: 'root', keyPaths: [tb.sshKeyPath], knownHostsPath, timeoutMs: 5000, ...more,
});
async function runs(t: SshTarget): Promise<string> {
  const s = await SshSession.connect(t);
  try {
    return (await s.exec('ip -o -4 addr show dev eth0')).stdout;
  } finally {
    s.close();
  }
}
const refused = (code: SshError['code'], re: RegExp) => (e: unknown) => e instanceof SshError && e.code === code && re.test(e.message);

test('known_hosts hashed by ssh-keygen -H, with [host]:port for another port, is honoured', async () => {
  const h1 = tb.hosts[0]!;
  await startExtraSshd(tb, h1, { port: 2222, name: 'h1-2222' });
  const kh = join(dir, 'known_hosts_hashed');
  writeFileSync(kh, `${h1.address} ${hostKeyPub()}\n[${h1.address}]:2222 ${hostKeyPub()}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', kh]);
  assert.ok(!readFileSync(kh, 'utf8').includes(h1.address), 'names hashed');
  assert.match(await runs(target(h1, kh)), new RegExp(`inet ${h1.address}/`));
  assert.match(await runs(target(h1, kh, { port: 2222 })), new RegExp(`inet ${h1.address}/`));
  await assert.rejects(runs(target(tb.hosts[2]!, kh)), refused('HOST_KEY_UNKNOWN', /not in/));
});

test('a host key marked @revoked is refused, even where a line accepts it', async () => {
  const kh = join(dir, 'known_hosts_revoked');
  writeFileSync(kh, `${tb.hosts[0]!.address} ${hostKeyPub()}\n@revoked * ${hostKeyPub()}\n`);
  await assert.rejects(runs(target(tb.hosts[0]!, kh)), refused('HOST_KEY_REVOKED', /@revoked/));
});

test('a host certificate signed by an @cert-authority is accepted without the host key in known_hosts; another CA is not', async () => {
  const h1 = tb.hosts[0]!;
  const sshd = join(tb.serverRoot, 'sshd');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ca')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other_ca')]);
  writeFileSync(join(sshd, 'ssh_host_ed25519_key.pub'), hostKeyPub() + '\n');
  execFileSync('ssh-keygen', ['-q', '-s', join(dir, 'host_ca'), '-I', 'tss-h1', '-h', '-n', h1.address, '-V', '-5m:+1h', join(sshd, 'ssh_host_ed25519_key.pub')]);
  await startExtraSshd(tb, h1, { port: 2223, name: 'h1-cert', extra: [`HostCertificate ${join(sshd, 'ssh_host_ed25519_key-cert.pub')}`] });
  const ca = (name: string) => readFileSync(join(dir, `${name}.pub`), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const kh = join(dir, 'known_hosts_ca');
  writeFileSync(kh, `@cert-authority [10.231.*]:* ${ca('host_ca')}\n`);
  assert.match(await runs(target(h1, kh, { port: 2223 })), new RegExp(`inet ${h1.address}/`));
  writeFileSync(kh, `@cert-authority [10.231.*]:* ${ca('other_ca')}\n`);
  await assert.rejects(runs(target(h1, kh, { port: 2223 })), refused('HOST_KEY_UNKNOWN', /signed by a CA that known_hosts does not trust/));
  // the CA matches, but this sshd offers no certificate
  await assert.rejects(runs(target(h1, kh, { port: 2222 })), refused('HOST_KEY_UNKNOWN', /offers no certificate/));
});

test('a passphrase-protected key works through ssh-agent (SSH_AUTH_SOCK), and conf check accepts it only with an agent', async () => {
  const h1 = tb.hosts[0]!;
  const key = join(dir, 'locked_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'agent-only phrase', '-f', key]);
  appendFileSync(join(tb.serverRoot, 'sshd', 'authorized_keys'), readFileSync(`${key}.pub`));
  const sock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
  const askpass = join(dir, 'askpass');
  writeFileSync(askpass, "#!/bin/sh\necho 'agent-only phrase'\n", { mode: 0o700 });
  execFileSync('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const kh = tb.knownHostsPath;
  assert.match(await runs(target(h1, kh, { keyPaths: [key], agent: sock })), new RegExp(`inet ${h1.address}/`));
  await assert.rejects(runs(target(h1, kh, { keyPaths: [key] })), refused('AUTH_FAILED', /tried key/));

  const conf = writeTestbedConf(join(dir, 'conf-agent'), tb, { host: '127.0.0.1', port: 1, password: 'x' }, { host: '127.0.0.1', port: 1, user: 'u', password: 'x', database: 'd' }, { ports: [7000] });
  const ci = parse(readFileSync(join(conf, 'connect_info.yaml'), 'utf8'));
  ci.defaults.key_file = key;
  writeFileSync(join(conf, 'connect_info.yaml'), stringify(ci));
  const saved = process.env.SSH_AUTH_SOCK;
  try {
    delete process.env.SSH_AUTH_SOCK;
    const without = checkDeployment(conf).errors.map((e) => e.message).join('\n');
    assert.match(without, /protected by a passphrase.*ssh-add/);
    assert.doesNotMatch(without, /agent-only phrase/);
    process.env.SSH_AUTH_SOCK = sock;
    const d = loadDeployment(conf);
    assert.equal(d.agent, sock);
    const s = await connectServer(d, d.servers[0]!, false);
    s.close();
  } finally {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
  }
});

test("ProxyJump from the operator's ssh config reaches a host that only the bastion can reach", async () => {
  const [bastion, inner] = [tb.hosts[0]!, tb.hosts[1]!]; // h2 is on the other subnet, behind the router
  const routerB = tb.router!.addresses[1]!;
  const inNs = (...a: string[]) => execFileSync('ip', ['netns', 'exec', inner.netns, 'ip', ...a]);
  // h2 answers only the bastion: no route back to the manager's address
  inNs('route', 'del', 'default');
  inNs('route', 'add', `${bastion.address}/32`, 'via', routerB);
  try {
    await assert.rejects(runs(target(inner, tb.knownHostsPath, { timeoutMs: 2000 })), refused('UNREACHABLE', /cannot reach/));
    const conf = writeTestbedConf(join(dir, 'conf-jump'), tb, { host: '127.0.0.1', port: 1, password: 'x' }, { host: '127.0.0.1', port: 1, user: 'u', password: 'x', database: 'd' }, { ports: [7000] });
    writeFileSync(join(conf, 'ssh_config'), [
      'Host bastion',
      `  HostName ${bastion.address}`,
      '  User root',
      `  IdentityFile ${tb.sshKeyPath}`,
      `Host ${ID}-h2`,
      '  ProxyJump bastion',
      '',
    ].join('\n'));
    const ci = parse(readFileSync(join(conf, 'connect_info.yaml'), 'utf8'));
    ci.ssh_config = 'ssh_config';
    writeFileSync(join(conf, 'connect_info.yaml'), stringify(ci));
    const d = loadDeployment(conf);
    const s2 = d.servers.find((s) => s.hostname === `${ID}-h2`)!;
    assert.deepEqual(s2.jumps.map((j) => `${j.username}@${j.host}:${j.port}`), [`root@${bastion.address}:22`]);
    const session = await connectServer(d, s2, false);
    try {
      const r = await session.exec('ip -o -4 addr show dev eth0');
      assert.match(r.stdout, new RegExp(`inet ${inner.address}/`), 'the command ran on h2');
    } finally {
      session.close();
    }
  } finally {
    inNs('route', 'del', `${bastion.address}/32`);
    inNs('route', 'add', 'default', 'via', routerB);
  }
});

test('a remote command that hangs or floods is given up within its bounds', async () => {
  const h3 = tb.hosts[2]!;
  await startExtraSshd(tb, h3, { port: 2224, name: 'h3-hang', extra: ['ForceCommand sleep 600'] });
  await startExtraSshd(tb, h3, { port: 2225, name: 'h3-flood', extra: ['ForceCommand yes'] });
  const kh = join(dir, 'known_hosts_ports');
  writeFileSync(kh, `[${h3.address}]:2224 ${hostKeyPub()}\n[${h3.address}]:2225 ${hostKeyPub()}\n`);
  const hang = await SshSession.connect(target(h3, kh, { port: 2224 }));
  const t0 = Date.now();
  await assert.rejects(hang.exec('true', { timeoutMs: 1500 }), refused('TIMEOUT', /did not finish within 1\.5 s/));
  assert.ok(Date.now() - t0 < 5000, 'given up at its time');
  hang.close();
  const flood = await SshSession.connect(target(h3, kh, { port: 2225 }));
  await assert.rejects(flood.exec('true', { maxOutputBytes: 1 << 20 }), refused('OUTPUT_TOO_LARGE', /more than 1048576 bytes/));
  flood.close();
  // on a normal server, the time limit runs on the server too (coreutils timeout)
  const conf = writeTestbedConf(join(dir, 'conf-slow'), tb, { host: '127.0.0.1', port: 1, password: 'x' }, { host: '127.0.0.1', port: 1, user: 'u', password: 'x', database: 'd' }, { ports: [7000] });
  const d = loadDeployment(conf);
  const s = d.servers[2]!;
  const remote = new RemoteServer(await connectServer(d, s, false), s);
  try {
    await assert.rejects(remote.run('a slow step', 'sleep 30', undefined, 1), (e: unknown) => e instanceof ProvisionError && /a slow step did not finish within 1 s on the server/.test(e.message));
  } finally {
    remote.close();
  }
});
