/**
 * TLS to Redis and MariaDB with verification, against the project's own servers (a Redis that
 * speaks only TLS, and the local MariaDB, both with certificates of local/pki.ts): the manager's
 * and the observer's connections verify the server and work; a server signed by another CA, or a
 * plain-text client on the TLS port, is refused with a clear error; conf files name a bad tls block.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisTls, stopRedisTls, redisTlsRunning, startMariaDb, type MariaDbInfo, type RedisInfo } from '../local/servers.js';
import type { TestPki } from '../local/pki.js';
import { openPool } from '../db/pool.js';
import { loadTls } from '../conf/tls.js';
import { ConfError } from '../conf/load.js';
import { RecordPublisher } from '../observer/publisher.js';
import { connectRedis } from '../manager/redis.js';
import type { Deployment } from '../conf/deployment.js';
import type { PacketRecord } from '../protocol/records.js';

let redis: RedisInfo & { pki: TestPki }, db: MariaDbInfo;
let started = false;
before(async () => {
  started = !redisTlsRunning();
  redis = await startRedisTls();
  db = await startMariaDb();
});
after(async () => {
  if (started) await stopRedisTls();
});

const tlsFrom = (ca: string, client = false) => loadTls('/', 'redis_info.yaml', { ca_file: ca, ...(client ? { cert_file: redis.pki.clientCertFile, key_file: redis.pki.clientKeyFile } : {}) });
const deployment = (tls: ReturnType<typeof tlsFrom> | undefined) => ({ redis: { address: redis.host, port: redis.port, secret: redis.password, ...(tls ? { tlsFiles: tls } : {}) } }) as unknown as Deployment;

test('Redis over TLS: the manager and an observer verify the server and work, with and without a client certificate; another CA and plain text are refused', async () => {
  const ok = await connectRedis(deployment(tlsFrom(redis.pki.caFile)));
  try {
    assert.equal(await ok.ping(), 'PONG');
  } finally {
    ok.disconnect();
  }
  const mutual = await connectRedis(deployment(tlsFrom(redis.pki.caFile, true)));
  assert.equal(await mutual.ping(), 'PONG');
  mutual.disconnect();
  await assert.rejects(connectRedis(deployment(tlsFrom(redis.pki.otherCaFile))), /redis at 127\.0\.0\.1:\d+ \(redis_info\.yaml\): .*(certificate|self.signed).*with tls its ca_file/i);
  await assert.rejects(connectRedis(deployment(undefined)), /redis at 127\.0\.0\.1:\d+ \(redis_info\.yaml\)/, 'plain text on the TLS port');
  // an observer's publisher, as cli/observer.ts builds it from its conf
  const stream = `latscope:test:tls:${process.pid}`;
  const spool = mkdtempSync(join(tmpdir(), 'latscope-tls-spool-'));
  const pub = new RecordPublisher({ node: 'tls', redis: { host: redis.host, port: redis.port, password: redis.password, tls: tlsFrom(redis.pki.caFile) }, stream, batchRecords: 10, pipelineEntries: 4, maxMemoryBytes: 1 << 20, spoolDir: spool, maxSpoolBytes: 1 << 20, flushMs: 5 });
  const check = new Redis({ host: redis.host, port: redis.port, password: redis.password, tls: tlsFrom(redis.pki.caFile) });
  try {
    await pub.connect();
    const rec = (i: number): PacketRecord => ({ node: 'tls', observerSeq: i, dir: 'tx', flow: { family: 4, src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2 }, sampleSeq: i, streamOffset: i, segStart: 0, segEnd: 1, attempt: 0, retrans: false, interval: false, complete: true, layers: {}, devices: [] });
    for (let i = 1; i <= 25; i++) pub.push(rec(i));
    await pub.close(5000);
    assert.equal(pub.counters.published, 25);
    assert.equal(await check.xlen(stream), 3, 'three entries of up to ten records');
  } finally {
    await check.del(stream);
    check.disconnect();
    rmSync(spool, { recursive: true, force: true });
  }
});

test('MariaDB over TLS: the pool verifies the server and the session is encrypted; another CA is refused', async () => {
  const pool = openPool({ ...db, tls: tlsFrom(redis.pki.caFile) });
  try {
    const [[row]] = (await pool.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as any;
    assert.match(String(row.Value), /^TLSv1\.[23]$/, 'an encrypted session');
  } finally {
    await pool.end();
  }
  const plain = openPool(db);
  const [[p]] = (await plain.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as any;
  assert.equal(p.Value, '', 'plain text stays the local default');
  await plain.end();
  const wrong = openPool({ ...db, tls: tlsFrom(redis.pki.otherCaFile) });
  await assert.rejects(wrong.query('SELECT 1'), /certificate|self.signed/i);
  await wrong.end().catch(() => {});
});

test('a tls block whose files are missing or are not what they claim is a conf error naming the file and key', () => {
  assert.throws(() => loadTls('/nonexistent', 'redis_info.yaml', { ca_file: 'ca.pem' }), (e: unknown) => e instanceof ConfError && /redis_info\.yaml: tls\.ca_file/.test(e.message));
  assert.throws(() => loadTls('/', 'database_info.yaml', { ca_file: redis.pki.caFile, cert_file: redis.pki.clientKeyFile, key_file: redis.pki.clientKeyFile }), (e: unknown) => e instanceof ConfError && /tls\.cert_file: .* is not a certificate/.test(e.message));
  assert.throws(() => loadTls('/', 'database_info.yaml', { ca_file: redis.pki.clientKeyFile }), /tls\.ca_file: .* is not a certificate/);
});
