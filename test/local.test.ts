/**
 * Integration tests of the local environment: the project's own Redis and MariaDB reached with
 * ioredis and mysql2, and the testbed hosts' sshd reached with ssh2 (host keys checked).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { startRedis, stopRedis, startMariaDb, stopMariaDb, redisRunning, mariadbRunning, type RedisInfo, type MariaDbInfo } from '../local/servers.js';
import { testbedUp, testbedDown, testbedStatus, type Testbed } from '../local/testbed.js';
import { SshSession, SshError } from '../manager/ssh.js';
import { projectRoot } from '../lib/paths.js';

let tb: Testbed;
let redisInfo: RedisInfo;
let dbInfo: MariaDbInfo;
const startedHere = { redis: false, db: false };

before(async () => {
  tb = await testbedUp({ id: 'tloc', hosts: 2, router: true });
  startedHere.redis = !redisRunning();
  startedHere.db = !mariadbRunning();
  redisInfo = await startRedis();
  dbInfo = await startMariaDb();
});

after(async () => {
  await testbedDown('tloc');
  if (startedHere.redis) await stopRedis();
  if (startedHere.db) await stopMariaDb();
});

test('redis: the project-started server answers ioredis with its generated password only', async () => {
  const r = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password, lazyConnect: true });
  await r.connect();
  try {
    const key = `latscope:test:${process.pid}`;
    await r.xadd(key, '*', 'n', '1');
    await r.xadd(key, '*', 'n', '2');
    assert.equal(await r.xlen(key), 2);
    await r.del(key);
  } finally {
    r.disconnect();
  }
  // No ready check (it would fail with NOAUTH and close) and no reconnects.
  const anon = new Redis({ host: redisInfo.host, port: redisInfo.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await anon.connect();
  try {
    await assert.rejects(anon.get('x'), /NOAUTH/);
    await assert.rejects(anon.call('AUTH', 'not-the-password'), /WRONGPASS|invalid username-password/);
  } finally {
    anon.disconnect();
  }
});

test('mariadb: the project-started server answers mysql2 as the latscope user', async () => {
  const c = await mysql.createConnection({ ...dbInfo, multipleStatements: false });
  try {
    await c.query('CREATE TABLE IF NOT EXISTS it_probe (id INT PRIMARY KEY, v VARCHAR(20))');
    await c.query('REPLACE INTO it_probe VALUES (1, ?)', ['hello']);
    const [rows] = await c.query('SELECT v FROM it_probe WHERE id = 1');
    assert.deepEqual(rows, [{ v: 'hello' }]);
    await c.query('DROP TABLE it_probe');
  } finally {
    await c.end();
  }
});

test('testbed: status reports every host up, across the router', () => {
  const s = testbedStatus('tloc');
  assert.equal(s.up, true);
  assert.equal(s.hosts.length, 2);
  assert.notEqual(tb.hosts[0]!.address.split('.')[2], tb.hosts[1]!.address.split('.')[2], 'hosts on two subnets');
});

test('ssh2 runs a command inside a testbed host through its own sshd, where the checkout cannot be seen', async () => {
  assert.ok(existsSync(join(projectRoot, 'package.json')), 'here the checkout is there');
  for (const h of tb.hosts) {
    const s = await SshSession.connect({ name: h.name, host: h.address, port: 22, username: 'root', keyPaths: [tb.sshKeyPath], knownHostsPath: tb.knownHostsPath });
    try {
      const r = await s.exec('ip -o -4 addr show dev eth0');
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`inet ${h.address.replace(/\./g, '\\.')}/24`));
      const seen = await s.exec(`ls -A ${projectRoot} | wc -l; test -d ${tb.serverRoot}/install && echo install-root`);
      assert.equal(seen.stdout, '0\ninstall-root\n', 'the checkout is an empty folder on the host; its install root is there');
    } finally {
      s.close();
    }
  }
});

test('ssh: a changed host key, an unknown host key and a closed port each give a clear error', async () => {
  const h = tb.hosts[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'latscope-ssh-'));
  const base = { name: h.name, host: h.address, port: 22, username: 'root', keyPaths: [tb.sshKeyPath] };

  const changed = join(dir, 'changed');
  const other = readFileSync(`${tb.sshKeyPath}.pub`, 'utf8').split(' ').slice(0, 2).join(' '); // a valid key, not the host's
  writeFileSync(changed, `${h.address} ${other}\n`);
  await assert.rejects(SshSession.connect({ ...base, knownHostsPath: changed }), (e: unknown) => e instanceof SshError && e.code === 'HOST_KEY_CHANGED' && e.message.startsWith('h1:'));

  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  await assert.rejects(SshSession.connect({ ...base, knownHostsPath: empty }), (e: unknown) => e instanceof SshError && e.code === 'HOST_KEY_UNKNOWN');
  // Accepting new keys explicitly records the key, and the next connection checks against it.
  (await SshSession.connect({ ...base, knownHostsPath: empty, acceptNewHostKey: true })).close();
  assert.match(readFileSync(empty, 'utf8'), new RegExp(`^${h.address.replace(/\./g, '\\.')} ssh-ed25519 `));
  (await SshSession.connect({ ...base, knownHostsPath: empty })).close();

  await assert.rejects(
    SshSession.connect({ ...base, port: 2, knownHostsPath: tb.knownHostsPath, timeoutMs: 3000 }),
    (e: unknown) => e instanceof SshError && e.code === 'UNREACHABLE' && /ECONNREFUSED/.test(e.message),
  );
});
