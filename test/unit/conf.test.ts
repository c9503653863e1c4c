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

// the operator's environment must not change what these folders mean: no agent, no ~/.ssh/config
delete process.env.SSH_AUTH_SOCK;
process.env.HOME = mkdtempSync(join(tmpdir(), 'latscope-home-'));

/** Real SSH keys (the conf checks parse them): a good one, one with a passphrase, and the good one's public half. */
const KEYS = (() => {
  const d = mkdtempSync(join(tmpdir(), 'latscope-keys-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'good')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-phrase', '-f', join(d, 'locked')]);
  const k = { good: readFileSync(join(d, 'good'), 'utf8'), locked: readFileSync(join(d, 'locked'), 'utf8'), pub: readFileSync(join(d, 'good.pub'), 'utf8') };
  rmSync(d, { recursive: true });
  return k;
})();

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
  'analysis_info.yaml': 'window: 10\n',
  'function_info.yaml': 'latency: 1\ntimesync: 1\njitter: []\n',
  'redis.password': 'secret-redis\n',
  'ping.key': '0123456789abcdef\n',
  id_test: KEYS.good,
  known_hosts: '',
};

/** A file's content, or: null (absent), a directory, a FIFO, or text with a mode. */
type Content = string | null | { dir: true } | { fifo: true } | { text: string; mode: number };

function folder(change: Record<string, Content> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'latscope-conf-'));
  for (const [f, c] of Object.entries({ ...GOOD, ...change })) {
    const path = join(dir, f);
    if (c === null) continue;
    if (typeof c === 'string') writeFileSync(path, c, { mode: 0o600 });
    else if ('dir' in c) mkdirSync(path);
    else if ('fifo' in c) execFileSync('mkfifo', [path]);
    else writeFileSync(path, c.text, { mode: c.mode });
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
    assert.deepEqual(d.servers[0]!.keyPaths, [join(dir, 'id_test')]);
    assert.equal(d.redis.secret, 'secret-redis');
    assert.equal(d.database.secret, 'secret-db');
    assert.equal(d.database.port, 3306);
    assert.equal(d.pingKey, 0x0123456789abcdef0123456789abcdefn, "a 16-digit key reads as its 8 bytes twice");
    assert.equal(d.timeSync.probes, 200);
    assert.deepEqual(d.manager.eth, ['eth0']);
    assert.deepEqual(d.functions.jitter, []);
    assert.deepEqual(d.warnings, []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

// [what, the change, the file the message must name, the key it must name]
const BAD: [string, Record<string, Content>, string, string][] = [
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
  ['a missing key file', { id_test: null }, 'connect_info.yaml', 'defaults.key_file (used by node1, vm1, ct1)'],
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
  ['records shards without the stream analysis', { 'redis_info.yaml': 'address: 10.1.1.100\npassword_file: redis.password\nrecord_shards: 4\n' }, 'redis_info.yaml', 'engine: stream'],
  ['more records shards than the stream names allow', { 'redis_info.yaml': 'address: 10.1.1.100\npassword_file: redis.password\nrecord_shards: 1000\n', 'analysis_info.yaml': 'engine: stream\n' }, 'redis_info.yaml', 'record_shards'],
  ['a tls client certificate without its key', { 'redis_info.yaml': 'address: 10.1.1.100\npassword_file: redis.password\ntls:\n  ca_file: ca.pem\n  cert_file: client.pem\n' }, 'redis_info.yaml', 'cert_file and key_file go together'],
  ['a tls ca_file that is not there', { 'database_info.yaml': 'host: h\nuser: u\ndb: x\ntls:\n  ca_file: no-such-ca.pem\n' }, 'database_info.yaml', 'tls.ca_file'],
  ['an unknown key in a tls block', { 'redis_info.yaml': 'address: 10.1.1.100\npassword_file: redis.password\ntls:\n  ca_file: ca.pem\n  verify: no\n' }, 'redis_info.yaml', 'verify'],
  ['an analysis engine that does not exist', { 'analysis_info.yaml': 'engine: realtime\n' }, 'analysis_info.yaml', 'engine'],
  ['a raw sample above 1', { 'analysis_info.yaml': 'engine: stream\nraw_sample: 2\n' }, 'analysis_info.yaml', 'raw_sample'],
  ['steps of ten records', { 'analysis_info.yaml': 'engine: stream\nstep_records: 10\n' }, 'analysis_info.yaml', 'step_records'],
  ['a fraction of a waiting record', { 'analysis_info.yaml': 'engine: stream\nmax_waiting: 2500.5\n' }, 'analysis_info.yaml', 'max_waiting'],
  ['no step a commit', { 'analysis_info.yaml': 'engine: stream\ncommit_steps: 0\n' }, 'analysis_info.yaml', 'commit_steps'],
  ['a jitter module listed twice', { 'function_info.yaml': 'jitter: [sched, irq, sched]\n' }, 'function_info.yaml', 'jitter: a module is listed twice'],
  ['latency switched off', { 'function_info.yaml': 'latency: 0\n' }, 'function_info.yaml', 'latency: the observer always runs the latency probe'],
  ["the manager's own login (latscope never uses it)", { 'management_server_info.yaml': 'address: 10.1.1.100\neth: eth0\nusername: root\n' }, 'management_server_info.yaml', 'username: unknown key'],
  ['a ping key of 8 digits', { 'ping_info.yaml': 'eth: enp1s0\nkey: "01234567"\n' }, 'ping_info.yaml', 'key: expected 32 hex digits'],
  ['a ping key file of 8 digits', { 'ping.key': '01234567\n' }, 'ping_info.yaml', 'key: time-sync key: expected 32 hex digits'],
];

/** A file of GOOD with some top-level keys set (YAML flow values) or removed (null). */
function withKeys(file: string, keys: Record<string, string | null>): string {
  const lines = GOOD[file]!.split('\n').filter(Boolean).filter((l) => !Object.keys(keys).some((k) => l.startsWith(`${k}:`)));
  for (const [k, v] of Object.entries(keys)) if (v !== null) lines.push(`${k}: ${v}`);
  return lines.join('\n') + '\n';
}
const server0 = (repl: string) => GOOD['connect_info.yaml']!.replace('    address: 10.1.1.1\n', `    address: 10.1.1.1\n${repl}`);

// Values, one key at a time: [what, file, key, value (YAML), the key or words the message must hold]
const VALUES: [string, string, string, string, string][] = [
  ['a fractional size', 'sampling_info.yaml', 'size', '1.5', 'size'],
  ['a size beyond 2^31', 'sampling_info.yaml', 'size', '4294967296', 'size'],
  ['an infinite size', 'sampling_info.yaml', 'size', '.inf', 'size'],
  ['a size as a list', 'sampling_info.yaml', 'size', '[1]', 'size'],
  ['a negative interval', 'sampling_info.yaml', 'interval', '-1', 'interval'],
  ['an interval of 1e12 s', 'sampling_info.yaml', 'interval', '1e12', 'interval'],
  ['an infinite interval', 'sampling_info.yaml', 'interval', '.inf', 'interval'],
  ['an interval that is not a number', 'sampling_info.yaml', 'interval', '.nan', 'interval'],
  ['an interval as text', 'sampling_info.yaml', 'interval', 'soon', 'interval'],
  ['port 0', 'sampling_info.yaml', 'ports', '0', 'ports'],
  ['a negative port', 'sampling_info.yaml', 'ports', '[-1]', 'ports.0'],
  ['a port as text', 'sampling_info.yaml', 'ports', 'http', 'ports'],
  ['an empty port list', 'sampling_info.yaml', 'ports', '[]', 'ports'],
  ['a fractional port', 'sampling_info.yaml', 'ports', '[5000.5]', 'ports.0'],
  ['65 ports', 'sampling_info.yaml', 'ports', `[${Array.from({ length: 65 }, (_, i) => 5000 + i).join(', ')}]`, 'ports'],
  ['ports as a map', 'sampling_info.yaml', 'ports', '{a: 1}', 'ports'],
  ['filter_retrans yes', 'sampling_info.yaml', 'filter_retrans', 'yes', 'filter_retrans'],
  ['filter_retrans -1', 'sampling_info.yaml', 'filter_retrans', '-1', 'filter_retrans'],
  ['histograms some', 'sampling_info.yaml', 'histograms', 'some', 'expected scaled (one segment per histogram_bytes, counts scaled), all (every segment) or samples'],
  ['histogram_bytes not a power of two', 'sampling_info.yaml', 'histogram_bytes', '5000', 'expected a power of two from 64 to 16777216'],
  ['histogram_bytes 32', 'sampling_info.yaml', 'histogram_bytes', '32', 'expected a power of two from 64 to 16777216'],
  ['histogram_bytes as text', 'sampling_info.yaml', 'histogram_bytes', '4k', 'histogram_bytes'],
  ['a cgroup above the root', 'sampling_info.yaml', 'cgroup', '../etc', 'a path below the cgroup v2 root, without ".."'],
  ['histograms as a number', 'sampling_info.yaml', 'histograms', '1', 'histograms'],
  ['a negative histogram interval', 'sampling_info.yaml', 'histogram_interval', '-1', 'histogram_interval'],
  ['a histogram interval over a day', 'sampling_info.yaml', 'histogram_interval', '86401', 'histogram_interval'],
  ['redis address with a port', 'redis_info.yaml', 'address', '"10.1.1.1:6390"', 'give the port in "port:"'],
  ['redis address as a URL', 'redis_info.yaml', 'address', 'redis://10.1.1.1', 'no scheme'],
  ['redis address with an octet of 300', 'redis_info.yaml', 'address', '10.1.1.300', 'address'],
  ['a 100 KB redis address', 'redis_info.yaml', 'address', 'a'.repeat(100_000), 'at most 253'],
  ['redis address 0.0.0.0', 'redis_info.yaml', 'address', '0.0.0.0', '0.0.0.0'],
  ['an empty redis address', 'redis_info.yaml', 'address', '""', 'address'],
  ['a redis host name with _!', 'redis_info.yaml', 'address', 'bad_host!', 'address'],
  ['redis address as a number', 'redis_info.yaml', 'address', '12', 'address'],
  ['a broken IPv6 redis address', 'redis_info.yaml', 'address', '"fd00::1::2"', 'address'],
  ['redis port 0', 'redis_info.yaml', 'port', '0', 'port'],
  ['redis port 70000', 'redis_info.yaml', 'port', '70000', 'port'],
  ['redis port as text', 'redis_info.yaml', 'port', 'six', 'port'],
  ['database host with a port', 'database_info.yaml', 'host', '"db.example:3306"', 'host'],
  ['database host as a URL', 'database_info.yaml', 'host', 'mysql://db', 'no scheme'],
  ['database host 0.0.0.0', 'database_info.yaml', 'host', '0.0.0.0', 'host'],
  ['database host with an octet of 256', 'database_info.yaml', 'host', '10.1.256.1', 'host'],
  ['database port 0', 'database_info.yaml', 'port', '0', 'port'],
  ['an empty database user', 'database_info.yaml', 'user', '""', 'user'],
  ['a database name of 65 characters', 'database_info.yaml', 'db', 'x'.repeat(65), 'db'],
  ['a database name with a space', 'database_info.yaml', 'db', '"lat scope"', 'db'],
  ['manager address 0.0.0.0', 'management_server_info.yaml', 'address', '0.0.0.0', 'not 0.0.0.0'],
  ['manager address broadcast', 'management_server_info.yaml', 'address', '255.255.255.255', 'unicast'],
  ['manager address multicast', 'management_server_info.yaml', 'address', '224.0.0.1', 'unicast'],
  ['manager interface with a colon', 'management_server_info.yaml', 'eth', '"eth0:1"', 'eth'],
  ['manager interface with a slash', 'management_server_info.yaml', 'eth', 'eth/0', 'eth'],
  ['manager interface with a space', 'management_server_info.yaml', 'eth', '"eth 0"', 'eth'],
  ['manager interface not ASCII', 'management_server_info.yaml', 'eth', 'éth0', 'eth'],
  ['manager interface of 16 characters', 'management_server_info.yaml', 'eth', 'abcdefghijklmnop', 'eth'],
  ['manager interface "."', 'management_server_info.yaml', 'eth', '"."', 'eth'],
  ['manager status port 70000', 'management_server_info.yaml', 'port', '70000', 'port'],
  ['the manager\'s password (never used)', 'management_server_info.yaml', 'password', 'x', 'password: unknown key'],
  ['ping interface with a colon', 'ping_info.yaml', 'eth', '"enp1s0:0"', 'eth'],
  ['ping interface with a slash', 'ping_info.yaml', 'eth', 'a/b', 'eth'],
  ['ping interface with a space', 'ping_info.yaml', 'eth', '"en p1"', 'eth'],
  ['ping interface not ASCII', 'ping_info.yaml', 'eth', 'ëth0', 'eth'],
  ['ping port 0', 'ping_info.yaml', 'port', '0', 'port'],
  ['a ping key of 17 digits', 'ping_info.yaml', 'key', '"0123456789abcdef0"', 'key'],
  ['a ping key that is not hex', 'ping_info.yaml', 'key', 'xyzxyzxyzxyzxyzx', 'key'],
  ['a ping mode of 1', 'ping_info.yaml', 'mode', '1', 'mode'],
  ['a ping address that is a name', 'ping_info.yaml', 'address', 'host', 'address'],
  ['a zero time_interval', 'time_sync.yaml', 'time_interval', '-1', 'time_interval'],
  ['an infinite time_interval', 'time_sync.yaml', 'time_interval', '.inf', 'time_interval'],
  ['a time_interval over a day', 'time_sync.yaml', 'time_interval', '86401', 'time_interval'],
  ['2 probes', 'time_sync.yaml', 'probes', '2', 'probes'],
  ['a million probes', 'time_sync.yaml', 'probes', '1000000', 'probes'],
  ['1.5 probes', 'time_sync.yaml', 'probes', '1.5', 'probes'],
  ['keep_fraction 0', 'time_sync.yaml', 'keep_fraction', '0', 'keep_fraction'],
  ['a window of 1', 'time_sync.yaml', 'window', '1', 'window'],
  ['a window of 1001', 'time_sync.yaml', 'window', '1001', 'window'],
  ['timeout_ms 0', 'time_sync.yaml', 'timeout_ms', '0', 'timeout_ms'],
  ['timeout_ms a minute and more', 'time_sync.yaml', 'timeout_ms', '60001', 'timeout_ms'],
  ['a round longer than its interval', 'time_sync.yaml', 'time_interval', '10\nprobes: 5000', 'longer than time_interval'],
  ['latency 2', 'function_info.yaml', 'latency', '2', 'latency'],
  ['timesync yes', 'function_info.yaml', 'timesync', 'yes', 'timesync'],
  ['jitter as text', 'function_info.yaml', 'jitter', 'sched', 'jitter'],
  ['an unknown function', 'function_info.yaml', 'tracing', '1', 'tracing: unknown key'],
  ['an analysis window of 0', 'analysis_info.yaml', 'window', '0', 'window'],
  ['an analysis window over an hour', 'analysis_info.yaml', 'window', '3601', 'window'],
  ['a negative grace', 'analysis_info.yaml', 'grace', '-1', 'grace'],
  ['a spike factor of 1', 'analysis_info.yaml', 'spike_factor', '1', 'spike_factor'],
  ['an analysis interval of 0', 'analysis_info.yaml', 'interval', '0', 'interval'],
  ['an unknown analysis key', 'analysis_info.yaml', 'windw', '5', 'windw: unknown key'],
];

// Servers, files and YAML itself: [what, change, file, words the message must hold]
const MORE: [string, Record<string, Content>, string, string][] = [
  ['a user name with spaces', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('  username: root', '  username: "ro ot"') }, 'connect_info.yaml:3', 'defaults.username'],
  ['a user name of 100,000 characters', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('  username: root', `  username: ${'u'.repeat(100_000)}`) }, 'connect_info.yaml:3', 'defaults.username'],
  ["an other_address that is another server's address", { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('other_address: [10.2.1.3]', 'other_address: [10.1.1.1]') }, 'connect_info.yaml', 'servers.2.other_address.0'],
  ['a ProxyJump that is not [user@]host[:port]', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('port: 2222', 'port: 2222\n    proxy_jump: "root@@bastion"') }, 'connect_info.yaml', 'servers.1.proxy_jump'],
  ['an ssh config that does not exist', { 'connect_info.yaml': `ssh_config: no_such_config\n${GOOD['connect_info.yaml']}` }, 'connect_info.yaml', 'ssh_config'],
  ['an ssh config with a bad port', { 'connect_info.yaml': `ssh_config: ssh_config\n${GOOD['connect_info.yaml']}`, ssh_config: 'Host node1\n  Port 99999\n' }, 'ssh_config:2', 'Port'],
  ['host names that differ only in case', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('hostname: vm1', 'hostname: NODE1') }, 'connect_info.yaml', 'differs only in case'],
  ['two VMs each the host of the other', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('isvm: 1', 'isvm: 3').replace('iscontainer: 1', 'isvm: 2') }, 'connect_info.yaml', 'hosts form a loop'],
  ['a server at 0.0.0.0', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('address: 10.1.1.1\n', 'address: 0.0.0.0\n') }, 'connect_info.yaml', 'servers.0.address'],
  ['a server at a broadcast address', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('address: 10.1.1.1\n', 'address: 255.255.255.255\n') }, 'connect_info.yaml', 'servers.0.address'],
  ['a bad other_address', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('other_address: [10.2.1.3]', 'other_address: [10.2.1.999]') }, 'connect_info.yaml', 'servers.2.other_address.0'],
  ['a metadata_key that is a map', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('metadata_key: 3', 'metadata_key: {a: 1}') }, 'connect_info.yaml', 'servers.2.metadata_key'],
  ['a server interface with a colon', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('eth: enp1s0', 'eth: "enp1s0:1"') }, 'connect_info.yaml', 'servers.0.eth'],
  ['an empty ssh user', { 'connect_info.yaml': server0('    username: ""\n') }, 'connect_info.yaml', 'servers.0.username'],
  ['an ssh port as text', { 'connect_info.yaml': server0('    port: ssh\n') }, 'connect_info.yaml', 'servers.0.port'],
  ['an empty key file', { id_test: '' }, 'connect_info.yaml', 'is empty'],
  ['a public key as key_file', { id_test: KEYS.pub }, 'connect_info.yaml', 'holds a public key'],
  ['a directory as key_file', { id_test: { dir: true } }, 'connect_info.yaml', 'is a directory'],
  ['a key with a passphrase', { id_test: { text: KEYS.locked, mode: 0o600 } }, 'connect_info.yaml', 'protected by a passphrase'],
  ['a private key others can read', { id_test: { text: KEYS.good, mode: 0o644 } }, 'connect_info.yaml', 'run chmod 600'],
  ['a key file that is not a key', { id_test: 'hello\n' }, 'connect_info.yaml', 'is not an SSH private key'],
  ['known_hosts missing, new keys refused', { known_hosts: null }, 'connect_info.yaml', 'known_hosts'],
  ['known_hosts a directory', { known_hosts: { dir: true } }, 'connect_info.yaml', 'is not a file'],
  ['a conf file that is a directory', { 'redis_info.yaml': { dir: true } }, 'redis_info.yaml', 'is a directory, not a file'],
  ['a secret file that is a directory', { 'redis.password': { dir: true } }, 'redis_info.yaml', 'is a directory, not a file'],
  ['a secret file that is a FIFO', { 'redis.password': { fifo: true } }, 'redis_info.yaml', 'is a FIFO'],
  ['a conf file that is a FIFO', { 'time_sync.yaml': { fifo: true } }, 'time_sync.yaml', 'is a FIFO'],
  ['an empty secret file', { 'redis.password': '\n' }, 'redis_info.yaml', 'is empty'],
  ['a secret file of two lines', { 'redis.password': 'one\ntwo\n' }, 'redis_info.yaml', 'several lines'],
  ['a key file of 8 digits', { 'ping.key': '01234567\n' }, 'ping_info.yaml', '32 hex digits'],
  ['a key file that is a directory', { 'ping.key': { dir: true } }, 'ping_info.yaml', 'is a directory'],
  ['a YAML alias bomb', { 'sampling_info.yaml': 'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nports: 5000\n' }, 'sampling_info.yaml', 'aliases'],
  ['an unresolved alias as password', { 'redis_info.yaml': 'address: 10.1.1.100\npassword: *s3cretpass\n' }, 'redis_info.yaml', 'aliases'],
  ['a YAML tag in a password', { 'redis_info.yaml': 'address: 10.1.1.100\npassword: !s3cret rest\n' }, 'redis_info.yaml', 'tags'],
  ['a comment cutting a password', { 'redis_info.yaml': 'address: 10.1.1.100\npassword: s3cret #tail\n' }, 'redis_info.yaml:2', 'password: a # after a space starts a comment'],
  ['a tab to indent', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('  - hostname: node1', '\t- hostname: node1') }, 'connect_info.yaml', 'not valid YAML'],
  ['two YAML documents', { 'sampling_info.yaml': 'ports: 5000\n---\nports: 5001\n' }, 'sampling_info.yaml', 'not valid YAML'],
  ['a file that is not UTF-8', { 'sampling_info.yaml': 'ports: 5000\n# \udcff\n' }, 'sampling_info.yaml', ''],
  ['an empty conf file', { 'sampling_info.yaml': '' }, 'sampling_info.yaml', 'ports: missing'],
  ['a conf file of 2 MB', { 'sampling_info.yaml': `ports: 5000\n${'#'.repeat(2 << 20)}\n` }, 'sampling_info.yaml', 'at most'],
  ['ping_info.yml (the wrong extension)', { 'ping_info.yml': GOOD['ping_info.yaml']! }, 'ping_info.yml', 'latscope reads ping_info.yaml'],
  ['time_sync.yml (the wrong extension)', { 'time_sync.yaml': null, 'time_sync.yml': 'time_interval: 10\n' }, 'time_sync.yml', 'rename it'],
  ['size and interval both 0', { 'sampling_info.yaml': 'size: 0\ninterval: 0\nports: [5000]\n' }, 'sampling_info.yaml', 'nothing would ever be sampled'],
  ['a missing metadata_key says so', { 'connect_info.yaml': GOOD['connect_info.yaml']!.replace('    metadata_key: 1\n', '') }, 'connect_info.yaml', 'servers.0.metadata_key: missing'],
];

for (const [what, file, key, value, words] of VALUES) BAD.push([what, { [file]: withKeys(file, { [key]: value }) }, file, words]);
for (const m of MORE) BAD.push(m);

test(`${BAD.length} malformed conf folders are each rejected, naming the file and the key`, () => {
  assert.ok(BAD.length >= 150, `${BAD.length} cases`);
  for (const [what, change, file, key] of BAD) {
    const dir = folder(change);
    try {
      const { errors } = checkDeployment(dir);
      assert.ok(errors.length >= 1, `${what}: accepted`);
      const msg = errors.map((e) => e.message).join('\n');
      assert.ok(msg.includes(file), `${what}: "${msg}" does not name ${file}`);
      assert.ok(msg.includes(key), `${what}: "${msg}" does not name ${key}`);
      assert.ok(!/secret-redis|secret-db|s3cret|secret-phrase|0123456789abcdef(?!0)|PRIVATE KEY/.test(msg), `${what}: a secret is in the message: ${msg}`);
      assert.ok(msg.length < 2000, `${what}: a short message`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  }
});

test('every problem of a folder is reported at once, not only the first', () => {
  const dir = folder({ 'sampling_info.yaml': 'ports: 0\n', 'redis_info.yaml': 'adress: x\n', 'time_sync.yaml': 'probes: 1\n' });
  try {
    const { errors } = checkDeployment(dir);
    assert.deepEqual([...new Set(errors.map((e) => e.file.split('/').pop()))].sort(), ['redis_info.yaml', 'sampling_info.yaml', 'time_sync.yaml']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a time-sync round that could outlast its interval when servers stop answering draws a warning, not an error', () => {
  const dir = folder({ 'time_sync.yaml': 'time_interval: 5\n' }); // 3 servers x 232 probes x 20 ms = 14 s when all are lost
  try {
    const d = loadDeployment(dir);
    assert.equal(d.warnings.length, 1);
    assert.match(d.warnings[0]!, /time_sync\.yaml: time_interval: when servers stop answering, a round can take 14 s/);
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
    assert.match(no.stderr, /sampling_info\.yaml:2: size: expected a number of bytes/);
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

test('conf check as a user who cannot read a conf file: the file named, permission denied, exit 1, no stack trace', { skip: process.getuid?.() !== 0 && 'switching to an unprivileged user needs root: run the tests as root' }, () => {
  const dir = folder();
  try {
    // the folder belongs to nobody, who may read all of it but one file
    execFileSync('chown', ['-R', '65534:65534', dir]);
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'sampling_info.yaml'), 0o000);
    const cli = join(projectRoot, 'dist', 'cli.js');
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'conf', 'check', dir], { encoding: 'utf8', env: { ...process.env, HOME: '/nonexistent' } });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /sampling_info\.yaml: cannot be read \(permission denied\): make it readable by the user latscope runs as/);
    assert.doesNotMatch(r.stderr, /EACCES|\n\s+at /, 'a sentence, not a raw error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the operator's ssh config gives HostName, Port, User, IdentityFile and ProxyJump; connect_info's own values win", () => {
  const sshConfig = [
    'Host bastion',
    '  HostName 192.0.2.1',
    '  User jump',
    '  Port 2200',
    'Host node1 !vm1',
    '  HostName node1.internal',
    '  User admin',
    '  IdentityFile %d/id_by_config',
    '  ProxyJump bastion,ops@192.0.2.2:2201',
    'Host 10.1.1.2',
    '  Port 2022',
    '  ProxyJump none',
    'Host *',
    '  User fallback',
    '  Port 2999',
    'Match exec "true"',
    '  User never',
  ].join('\n');
  const dir = folder({ 'connect_info.yaml': `ssh_config: ssh_config\n${GOOD['connect_info.yaml']}`, ssh_config: sshConfig });
  writeFileSync(join(process.env.HOME!, 'id_by_config'), KEYS.good, { mode: 0o600 });
  try {
    const d = loadDeployment(dir);
    const [node1, vm1, ct1] = d.servers;
    assert.equal(node1!.sshHost, 'node1.internal');
    assert.equal(node1!.username, 'admin', 'the first User obtained wins over Host *');
    assert.equal(node1!.port, 2999, 'Port from Host *');
    assert.deepEqual(node1!.keyPaths, [join(process.env.HOME!, 'id_by_config'), join(dir, 'id_test')]);
    assert.deepEqual(node1!.jumps.map((j) => `${j.username}@${j.host}:${j.port}`), ['jump@192.0.2.1:2200', 'ops@192.0.2.2:2201']);
    assert.equal(vm1!.port, 2222, "connect_info's own port wins");
    assert.equal(vm1!.sshHost, '10.1.1.2');
    assert.deepEqual(vm1!.jumps, [], 'ProxyJump none');
    assert.equal(vm1!.username, 'fallback', 'defaults.username is below the ssh config');
    assert.equal(ct1!.port, 2999);
    assert.ok(d.warnings.some((w) => /ssh_config:16: Match blocks are not evaluated/.test(w)), d.warnings.join('\n'));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('conf init writes a commented folder with a fresh time-sync key, refuses a folder that is not empty, and conf check then names what is left to fill in', () => {
  const parent = mkdtempSync(join(tmpdir(), 'latscope-init-'));
  const dir = join(parent, 'conf');
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });
  try {
    const r = cli('conf', 'init', dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort(), readdirSync(join(projectRoot, 'conf', 'examples')).sort());
    const key = readFileSync(join(dir, 'secrets', 'timesync.key'), 'utf8');
    assert.match(key, /^[0-9a-f]{32}\n$/);
    assert.equal(statSync(join(dir, 'secrets', 'timesync.key')).mode & 0o777, 0o600);
    assert.equal(cli('conf', 'init', join(parent, 'other')).status, 0);
    assert.notEqual(readFileSync(join(parent, 'other', 'secrets', 'timesync.key'), 'utf8'), key, 'each folder its own key');
    assert.match(r.stdout, /Next:[\s\S]*redis\.password[\s\S]*latscope conf check/);
    const again = cli('conf', 'init', dir);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /is not empty: conf init writes only into a new or empty folder; nothing was written/);
    const check = cli('conf', 'check', dir);
    assert.equal(check.status, 1);
    assert.match(check.stderr, /redis_info\.yaml: password_file: .*secrets\/redis\.password/);
    assert.match(check.stderr, /database_info\.yaml: passwd_file: .*secrets\/db\.password/);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('10,000 servers: refused with the manager probing every one (a round outlasts its interval), valid with the probe mesh (the manager probes its anchors)', () => {
  const servers = Array.from({ length: 10_000 }, (_, i) => `  - hostname: s${i}\n    address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n    metadata_key: ${i + 1}\n`).join('');
  const connect = `known_hosts: known_hosts\ndefaults:\n  username: root\n  key_file: id_test\nservers:\n${servers}`;
  const star = folder({ 'connect_info.yaml': connect });
  const mesh = folder({ 'connect_info.yaml': connect, 'time_sync.yaml': 'time_interval: 64\nmesh:\n  enabled: 1\n' });
  const crowded = folder({ 'connect_info.yaml': connect, 'time_sync.yaml': 'time_interval: 64\nmesh:\n  enabled: 1\n  probes: 2000\n' });
  try {
    assert.throws(() => loadDeployment(star), /time_sync\.yaml: time_interval: a round of 200 probes \(and 32 to warm up\) to 10000 servers takes at least 2320 s.*or the mesh/);
    const d = loadDeployment(mesh);
    assert.equal(d.servers.length, 10_000);
    assert.equal(d.timeSync.mesh.enabled, true);
    assert.equal(d.timeSync.mesh.anchors, 4);
    assert.throws(() => loadDeployment(crowded), /time_sync\.yaml: mesh: interval: a mesh round of 2000 probes .* to up to 27 peers takes at least 54\.9 s/);
  } finally {
    for (const dir of [star, mesh, crowded]) rmSync(dir, { recursive: true });
  }
});
