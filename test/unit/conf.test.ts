/**
 * conf/: a good folder loads with its defaults applied; each malformed one is rejected with a
 * message naming the file and the key (and the line where the file has one); `conf check` says
 * the same from the command line and changes nothing; the commented examples in conf/examples/
 * are accepted as they are. No root needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, chmodSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { checkDeployment, loadDeployment } from '../../conf/deployment.js';
import { projectRoot } from '../../lib/paths.js';

const GOOD: Record<string, string> = {
  'connect_info.yaml': `known_hosts: known_hosts
defaults:
  username: root
  key_file: id_test
servers:
  - hostname: node1
    address: 10.1.1.1
    metadata_key: 1
    novm: 1
    eth: enp1s0
  - hostname: vm1
    address: 10.1.1.2
    metadata_key: 2
    isvm: 1
    port: 2222
  - hostname: ct1
    address: 10.1.1.3
    metadata_key: 3
    iscontainer: 1
    other_address: [10.2.1.3]
`,
  'sampling_info.yaml': 'size: 72400\ninterval: 1\nports: [5000, 5001]\nfilter_retrans: 1\n',
  'redis_info.yaml': 'address: 10.1.1.100\nport: 6379\npassword_file: redis.password\n',
  'database_info.yaml': 'host: 10.1.1.100\nuser: latscope\npasswd_env: LS_TEST_DB_PASSWORD\ndb: latscope\n',
  'management_server_info.yaml': 'address: 10.1.1.100\nhostname: manager\neth: eth0\n',
  'ping_info.yaml': 'port: 5005\neth: enp1s0\nkey_file: ping.key\n',
  'time_sync.yaml': 'time_interval: 64\n',
  'function_info.yaml': 'latency: 1\ntimesync: 1\njitter: []\n',
  'redis.password': 'secret-redis\n',
  'ping.key': '0123456789abcdef\n',
  id_test: 'not a real key\n',
  known_hosts: '',
};

function folder(change: Record<string, string | null> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'latscope-conf-'));
  for (const [f, text] of Object.entries({ ...GOOD, ...change })) {
    if (text === null) continue;
    writeFileSync(join(dir, f), text, { mode: 0o600 });
  }
  return dir;
}

process.env.LS_TEST_DB_PASSWORD = 'secret-db';

test('a good conf folder loads: defaults applied, kinds and hosts resolved, secrets read', () => {
  const dir = folder();
  try {
    const d = loadDeployment(dir);
    assert.deepEqual(d.servers.map((s) => [s.hostname, s.kind, s.hostKey ?? null, s.port, s.username]), [
      ['node1', 'bare-metal', null, 22, 'root'],
      ['vm1', 'vm', '1', 2222, 'root'],
      ['ct1', 'container', '1', 22, 'root'],
    ]);
    assert.deepEqual(d.servers[0]!.eth, ['enp1s0']);
    assert.equal(d.servers[0]!.installDir, '/opt/latscope');
    assert.equal(d.servers[0]!.keyPath, join(dir, 'id_test'));
    assert.equal(d.redis.secret, 'secret-redis');
    assert.equal(d.database.secret, 'secret-db');
    assert.equal(d.database.port, 3306);
    assert.equal(d.pingKey, 0x0123456789abcdefn);
    assert.equal(d.timeSync.probes, 200);
    assert.deepEqual(d.manager.eth, ['eth0']);
    assert.deepEqual(d.functions.jitter, []);
    assert.deepEqual(d.warnings, []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

// [what, the change, the file the message must name, the key it must name]
const BAD: [string, Record<string, string | null>, string, string][] = [
  ['missing connect_info', { 'connect_info.yaml': null }, 'connect_info.yaml', 'missing'],
  ['missing sampling_info', { 'sampling_info.yaml': null }, 'sampling_info.yaml', 'missing'],
  ['missing redis_info', { 'redis_info.yaml': null }, 'redis_info.yaml', 'missing'],
  ['missing database_info', { 'database_info.yaml': null }, 'database_info.yaml', 'missing'],
  ['missing management_server_info', { 'management_server_info.yaml': null }, 'management_server_info.yaml', 'missing'],
  ['broken YAML', { 'sampling_info.yaml': 'size: [1, 2\nports: 5000\n' }, 'sampling_info.yaml', 'not valid YAML'],
  ['a duplicated key', { 'redis_info.yaml': 'address: 10.1.1.100\naddress: 10.1.1.101\n' }, 'redis_info.yaml', 'not valid YAML'],
  ['an unknown key', { 'sampling_info.yaml': 'size: 100\nports: 5000\nsise: 3\n' }, 'sampling_info.yaml:3', 'sise: unknown key'],
  ['size as text', { 'sampling_info.yaml': 'size: big\nports: 5000\n' }, 'sampling_info.yaml:1', 'size'],
  ['a negative size', { 'sampling_info.yaml': 'size: -1\nports: 5000\n' }, 'sampling_info.yaml', 'size'],
  ['no ports', { 'sampling_info.yaml': 'size: 100\n' }, 'sampling_info.yaml', 'ports'],
  ['port 70000', { 'sampling_info.yaml': 'ports: [5000, 70000]\n' }, 'sampling_info.yaml', 'ports.1'],
  ['filter_retrans 2', { 'sampling_info.yaml': 'ports: 5000\nfilter_retrans: 2\n' }, 'sampling_info.yaml', 'filter_retrans'],
  ['no servers', { 'connect_info.yaml': 'servers: []\n' }, 'connect_info.yaml', 'servers'],
  ['servers not a list', { 'connect_info.yaml': 'servers: node1\n' }, 'connect_info.yaml', 'servers'],
  ['a bad server address', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('10.1.1.2', '10.1.1.300') }, 'connect_info.yaml', 'servers.1.address'],
  ['a host name as address', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('10.1.1.2', 'vm1.example') }, 'connect_info.yaml', 'servers.1.address'],
  ['a server without metadata_key', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('    metadata_key: 3\n', '') }, 'connect_info.yaml', 'servers.2.metadata_key'],
  ['a duplicate hostname', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('hostname: vm1', 'hostname: node1') }, 'connect_info.yaml', 'servers.1.hostname'],
  ['a duplicate metadata_key', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('metadata_key: 3', 'metadata_key: 2') }, 'connect_info.yaml', 'servers.2.metadata_key'],
  ['a VM on an unknown host', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('isvm: 1', 'isvm: 9') }, 'connect_info.yaml', 'servers.1.isvm'],
  ['a VM that is a container too', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('isvm: 1', 'isvm: 1\n    iscontainer: 1') }, 'connect_info.yaml', 'servers.1'],
  ['a server with an unknown key', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('port: 2222', 'port: 2222\n    pasword: x') }, 'connect_info.yaml', 'servers.1'],
  ['an ssh port of 0', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('port: 2222', 'port: 0') }, 'connect_info.yaml', 'servers.1.port'],
  ['a bad interface name', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('eth: enp1s0', 'eth: "enp1s0 eth1"') }, 'connect_info.yaml', 'servers.0.eth'],
  ['a relative install_dir', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('  key_file: id_test', '  key_file: id_test\n  install_dir: opt/latscope') }, 'connect_info.yaml', 'defaults.install_dir'],
  ['a missing key file', { id_test: null }, 'connect_info.yaml', 'servers.0.key_file'],
  ['two passwords for one server', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('port: 2222', 'port: 2222\n    password: a\n    password_env: B') }, 'connect_info.yaml', 'servers.1'],
  ['redis without an address', { 'redis_info.yaml': 'port: 6379\n' }, 'redis_info.yaml', 'address'],
  ['a missing redis password file', { 'redis.password': null }, 'redis_info.yaml', 'password_file'],
  ['a database password variable that is not set', { 'database_info.yaml': 'host: h\nuser: u\npasswd_env: LS_NOT_SET_ANYWHERE\ndb: x\n' }, 'database_info.yaml', 'passwd_env'],
  ['a database name with a dash', { 'database_info.yaml': 'host: h\nuser: u\ndb: lat-scope\n' }, 'database_info.yaml:3', 'db'],
  ['a manager address that is a name', { 'management_server_info.yaml': 'address: manager.local\neth: eth0\n' }, 'management_server_info.yaml', 'address'],
  ['a manager without eth', { 'management_server_info.yaml': 'address: 10.1.1.100\n' }, 'management_server_info.yaml', 'eth'],
  ['a ping key of 20 digits', { 'ping_info.yaml': 'eth: enp1s0\nkey: 0123456789abcdef0123\n' }, 'ping_info.yaml', 'key'],
  ['ping_info without a key', { 'ping_info.yaml': 'eth: enp1s0\n' }, 'ping_info.yaml', 'key'],
  ['a ping mode that does not exist', { 'ping_info.yaml': 'eth: enp1s0\nkey_file: ping.key\nmode: turbo\n' }, 'ping_info.yaml:3', 'mode'],
  ['a zero time_interval', { 'time_sync.yaml': 'time_interval: 0\n' }, 'time_sync.yaml', 'time_interval'],
  ['keep_fraction above 1', { 'time_sync.yaml': 'keep_fraction: 1.5\n' }, 'time_sync.yaml', 'keep_fraction'],
  ['an unknown jitter probe', { 'function_info.yaml': 'jitter: [sched, disk]\n' }, 'function_info.yaml', 'jitter.1'],
  ['jitter modules this version does not have', { 'function_info.yaml': 'jitter: [sched]\n' }, 'function_info.yaml', 'jitter: host-jitter modules are not available'],
  ['latency switched off', { 'function_info.yaml': 'latency: 0\n' }, 'function_info.yaml', 'latency: the observer always runs the latency probe'],
  ["the manager's own login (latscope never uses it)", { 'management_server_info.yaml': 'address: 10.1.1.100\neth: eth0\nusername: root\n' }, 'management_server_info.yaml', 'username: unknown key'],
  ['a ping key of 8 digits', { 'ping_info.yaml': 'eth: enp1s0\nkey: "01234567"\n' }, 'ping_info.yaml', 'key: expected 16 hex digits'],
  ['a ping key file of 8 digits', { 'ping.key': '01234567\n' }, 'ping_info.yaml', 'key: time-sync key: expected 16 hex digits'],
];

test(`${BAD.length} malformed conf folders are each rejected, naming the file and the key`, () => {
  assert.ok(BAD.length >= 30);
  for (const [what, change, file, key] of BAD) {
    const dir = folder(change);
    try {
      const { errors } = checkDeployment(dir);
      assert.ok(errors.length >= 1, `${what}: accepted`);
      const msg = errors.map((e) => e.message).join('\n');
      assert.ok(msg.includes(file), `${what}: "${msg}" does not name ${file}`);
      assert.ok(msg.includes(key), `${what}: "${msg}" does not name ${key}`);
      assert.ok(!/secret-redis|secret-db|0123456789abcdef(?!0)/.test(msg), `${what}: a secret is in the message: ${msg}`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  }
});

test('every problem of a folder is reported at once, not only the first', () => {
  const dir = folder({ 'sampling_info.yaml': 'ports: 0\n', 'redis_info.yaml': 'adress: x\n', 'time_sync.yaml': 'probes: 1\n' });
  try {
    const { errors } = checkDeployment(dir);
    assert.deepEqual(errors.map((e) => e.file.split('/').pop()).sort(), ['redis_info.yaml', 'sampling_info.yaml', 'time_sync.yaml']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a secret file others can read draws a warning, and the secret is not in it', () => {
  const dir = folder();
  try {
    chmodSync(join(dir, 'redis.password'), 0o644);
    const d = loadDeployment(dir);
    assert.equal(d.warnings.length, 1);
    assert.match(d.warnings[0]!, /redis\.password holds a secret but its mode is 644: run chmod 600/);
    assert.doesNotMatch(d.warnings[0]!, /secret-redis/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('conf check: exit 0 on a good folder, 1 with every message on a bad one, and nothing in the folder changes', () => {
  const cli = join(projectRoot, 'dist', 'cli.js');
  const good = folder();
  const bad = folder({ 'sampling_info.yaml': 'ports: [5000]\nsize: x\n', 'redis_info.yaml': 'address: 10.1.1.100\nfoo: 1\n' });
  try {
    const before = readdirSync(bad).map((f) => [f, statSync(join(bad, f)).mtimeMs]);
    const ok = spawnSync(process.execPath, [cli, 'conf', 'check', good], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /good: 3 servers \(1 bare-metal, 1 vm, 1 container\), ports 5000,5001, time sync every 64 s on port 5005/);
    const no = spawnSync(process.execPath, [cli, 'conf', 'check', bad], { encoding: 'utf8' });
    assert.equal(no.status, 1);
    assert.match(no.stderr, /sampling_info\.yaml:2: size: Expected number, received string/);
    assert.match(no.stderr, /redis_info\.yaml:2: foo: unknown key/);
    assert.match(no.stderr, /2 problems in .*; nothing was changed/);
    assert.deepEqual(readdirSync(bad).map((f) => [f, statSync(join(bad, f)).mtimeMs]), before);
    const none = spawnSync(process.execPath, [cli, 'conf', 'check', join(good, 'nope')], { encoding: 'utf8' });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /nope: no such folder/);
  } finally {
    rmSync(good, { recursive: true });
    rmSync(bad, { recursive: true });
  }
});

test('conf/examples: every file of the seed (and analysis_info), commented, and accepted by conf check once its secrets exist', () => {
  const examples = join(projectRoot, 'conf', 'examples');
  const files = readdirSync(examples).sort();
  assert.deepEqual(files, ['analysis_info.yaml', 'connect_info.yaml', 'database_info.yaml', 'function_info.yaml', 'management_server_info.yaml', 'ping_info.yaml', 'redis_info.yaml', 'sampling_info.yaml', 'time_sync.yaml']);
  for (const f of files) assert.match(readFileSync(join(examples, f), 'utf8'), /^# /m, `${f} explains itself`);
  // a fresh operator's machine: its own key and known_hosts in HOME, the secrets the examples name
  const dir = mkdtempSync(join(tmpdir(), 'latscope-examples-'));
  const home = mkdtempSync(join(tmpdir(), 'latscope-home-'));
  try {
    for (const f of files) writeFileSync(join(dir, f), readFileSync(join(examples, f)));
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    writeFileSync(join(dir, 'secrets', 'redis.password'), 'r3dis\n', { mode: 0o600 });
    writeFileSync(join(dir, 'secrets', 'db.password'), 'd4tabase\n', { mode: 0o600 });
    writeFileSync(join(dir, 'secrets', 'timesync.key'), '0123456789abcdef\n', { mode: 0o600 });
    mkdirSync(join(home, '.ssh'), { mode: 0o700 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(home, '.ssh', 'id_ed25519')]);
    writeFileSync(join(home, '.ssh', 'known_hosts'), '');
    const cli = join(projectRoot, 'dist', 'cli.js');
    const r = spawnSync(process.execPath, [cli, 'conf', 'check', dir], { encoding: 'utf8', env: { ...process.env, HOME: home } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /good: 5 servers \(3 bare-metal, 1 vm, 1 container\), ports 5000,5001, time sync every 64 s on port 5005/);
    assert.equal(r.stderr, '', 'no warning');
  } finally {
    rmSync(dir, { recursive: true });
    rmSync(home, { recursive: true });
  }
});
