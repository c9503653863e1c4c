/**
 * SSH as OpenSSH does it, without a network: known_hosts written by OpenSSH's own tools (hashed
 * names, [host]:port, patterns and negation, @revoked, @cert-authority) and host certificates
 * made by ssh-keygen, checked for principals, validity, kind and the CA's signature; the
 * install_dir rule; the systemd unit (systemd-analyze verify); the rotating log file. No root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateProblem, hostFieldMatches, lookupHostKeys, parseHostCertificate } from '../../manager/known-hosts.js';
import { installDirProblems, pathPrefixes } from '../../manager/remote.js';
import { observerUnit, unitName } from '../../manager/systemd.js';
import { RotatingFile } from '../../lib/rotating-file.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'latscope-ssh-unit-'));
const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
const pub = (path: string) => readFileSync(path, 'utf8').trim().split(/\s+/).slice(0, 2);
const blobOf = (path: string) => pub(path)[1]!;

test('known_hosts hashed by ssh-keygen -H: the host and [host]:port are found, nothing else', () => {
  const d = tmp();
  try {
    keygen('-t', 'ed25519', '-N', '', '-f', join(d, 'hk'));
    const [type, blob] = pub(join(d, 'hk.pub'));
    writeFileSync(join(d, 'known_hosts'), `10.9.0.1 ${type} ${blob}\n[10.9.0.2]:2222 ${type} ${blob}\n`);
    keygen('-H', '-f', join(d, 'known_hosts'));
    const text = readFileSync(join(d, 'known_hosts'), 'utf8');
    assert.ok(!text.includes('10.9.0.1') && text.startsWith('|1|'), 'the names are hashed');
    assert.deepEqual(lookupHostKeys(text, '10.9.0.1', 22).keys, [blob]);
    assert.deepEqual(lookupHostKeys(text, '10.9.0.2', 2222).keys, [blob]);
    assert.deepEqual(lookupHostKeys(text, '10.9.0.2', 22).keys, [], 'another port is another name');
    assert.deepEqual(lookupHostKeys(text, '10.9.0.3', 22).keys, []);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('known_hosts patterns: wildcards, negation, comma lists, case; @revoked for every host', () => {
  assert.ok(hostFieldMatches('10.9.*', '10.9.0.1'));
  assert.ok(!hostFieldMatches('10.9.*,!10.9.0.5', '10.9.0.5'), 'a negation wins');
  assert.ok(hostFieldMatches('10.9.*,!10.9.0.5', '10.9.0.6'));
  assert.ok(hostFieldMatches('web?.example.org', 'WEB1.example.org'));
  assert.ok(!hostFieldMatches('web?.example.org', 'web12.example.org'));
  assert.ok(hostFieldMatches('[10.9.0.*]:2222', '[10.9.0.7]:2222'));
  assert.ok(!hostFieldMatches('!10.9.0.5', '10.9.0.6'), 'only negations match nothing');
  const text = ['# comment', '10.9.* ssh-ed25519 AAAA1', '@revoked * ssh-ed25519 AAAA2', '@cert-authority *.example.org ssh-ed25519 AAAA3', '10.9.0.1 ssh-ed25519 AAAA2'].join('\n');
  const k = lookupHostKeys(text, '10.9.0.1', 22);
  assert.deepEqual(k.keys, ['AAAA1', 'AAAA2']);
  assert.ok(k.revoked.has('AAAA2'));
  assert.deepEqual(k.cas, []);
  assert.deepEqual(lookupHostKeys(text, 'db.example.org', 22).cas, ['AAAA3']);
});

test('host certificates made by ssh-keygen: accepted when signed by the trusted CA for this host and valid now; refused otherwise, saying why', () => {
  const d = tmp();
  try {
    keygen('-t', 'ed25519', '-N', '', '-f', join(d, 'ca'));
    keygen('-t', 'ed25519', '-N', '', '-f', join(d, 'other_ca'));
    keygen('-t', 'ed25519', '-N', '', '-f', join(d, 'host'));
    const sign = (ca: string, out: string, ...extra: string[]) => {
      keygen('-s', join(d, ca), '-I', 'test-host', ...extra, join(d, 'host.pub'));
      const cert = Buffer.from(blobOf(join(d, 'host-cert.pub')), 'base64');
      rmSync(join(d, 'host-cert.pub'));
      return { out, cert: parseHostCertificate(cert) };
    };
    const text = `@cert-authority 10.9.* ssh-ed25519 ${blobOf(join(d, 'ca.pub'))}\n@revoked * ssh-ed25519 ${blobOf(join(d, 'other_ca.pub'))}\n`;
    const keys = lookupHostKeys(text, '10.9.0.1', 22);
    const good = sign('ca', 'good', '-h', '-n', '10.9.0.1,web1', '-V', '-5m:+1h').cert;
    assert.equal(good.publicKey.toString('base64'), blobOf(join(d, 'host.pub')), 'the certified key is the host key');
    assert.deepEqual(good.principals, ['10.9.0.1', 'web1']);
    assert.equal(certificateProblem(good, '10.9.0.1', keys), undefined);
    assert.match(certificateProblem(good, '10.9.0.2', keys)!, /it is for 10\.9\.0\.1, web1, not 10\.9\.0\.2/);
    assert.match(certificateProblem(sign('ca', 'user', '-n', '10.9.0.1').cert, '10.9.0.1', keys)!, /user certificate/);
    assert.match(certificateProblem(sign('ca', 'old', '-h', '-n', '10.9.0.1', '-V', '20200101:20200102').cert, '10.9.0.1', keys)!, /expired/);
    assert.match(certificateProblem(sign('ca', 'future', '-h', '-n', '10.9.0.1', '-V', '+1d:+2d').cert, '10.9.0.1', keys)!, /not valid yet/);
    assert.match(certificateProblem(sign('other_ca', 'other', '-h', '-n', '10.9.0.1').cert, '10.9.0.1', keys)!, /signed by a CA that known_hosts does not trust/);
    const revokedKey = lookupHostKeys(`${text}@revoked * ssh-ed25519 ${blobOf(join(d, 'host.pub'))}\n`, '10.9.0.1', 22);
    assert.match(certificateProblem(good, '10.9.0.1', revokedKey)!, /its key is @revoked/);
    // a certificate whose signed part was changed after signing
    const forged = { ...good, signed: Buffer.from(good.signed) };
    forged.signed[forged.signed.length - 40]! ^= 1;
    assert.match(certificateProblem(forged, '10.9.0.1', keys)!, /signature does not verify/);
    // ECDSA and RSA CAs too
    for (const t of [['ecdsa', '256'], ['rsa', '2048']]) {
      keygen('-t', t[0]!, '-b', t[1]!, '-N', '', '-f', join(d, `ca_${t[0]}`));
      const c = sign(`ca_${t[0]}`, t[0]!, '-h', '-n', '10.9.0.1').cert;
      const k = lookupHostKeys(`@cert-authority * ${pub(join(d, `ca_${t[0]}.pub`)).join(' ')}\n`, '10.9.0.1', 22);
      assert.equal(certificateProblem(c, '10.9.0.1', k), undefined, `${t[0]} CA`);
    }
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('install_dir: every folder on the way root-owned, not group/other writable, no links', () => {
  assert.deepEqual(pathPrefixes('/opt/latscope'), ['/', '/opt', '/opt/latscope']);
  assert.deepEqual(installDirProblems('/opt/latscope', ['/|0|755|directory', '/opt|0|755|directory']), []);
  const p = installDirProblems('/tmp/x/latscope', ['/|0|755|directory', '/tmp|0|1777|directory', '/tmp/x|1000|755|directory']).join('\n');
  assert.match(p, /\/tmp is writable by its group and others \(mode 1777\)/);
  assert.match(p, /\/tmp\/x is owned by uid 1000, not root/);
  assert.match(installDirProblems('/srv/l', ['/|0|755|directory', '/srv|link']).join('\n'), /\/srv is a symbolic link/);
  assert.match(installDirProblems('/srv/l', ['/|0|755|directory', '/srv|0|775|directory']).join('\n'), /writable by its group \(mode 775\)/);
  assert.match(installDirProblems('/srv/l', ['/srv/l|0|644|regular file']).join('\n'), /is a regular file, not a directory/);
});

test('the observer unit passes systemd-analyze verify; paths with spaces and % are quoted', { skip: existsSync('/usr/bin/systemd-analyze') ? false : 'systemd-analyze is not installed (scripts/setup.sh installs systemd)' }, () => {
  const d = tmp();
  try {
    const install = join(d, 'inst 100%');
    mkdirSync(join(install, 'current', 'dist'), { recursive: true });
    writeFileSync(join(install, 'current', 'dist', 'observer-cli.js'), '');
    const unit = join(d, unitName(install));
    assert.match(unitName(install), /^latscope-observer-[0-9a-f]{8}\.service$/);
    assert.equal(unitName('/opt/latscope'), 'latscope-observer.service');
    const text = observerUnit({ installDir: install, node: process.execPath, observerArgv: ['--max-old-space-size=192', `${install}/current/dist/observer-cli.js`, 'observer', '--conf', `${install}/conf`, '--node', 'web1'] });
    writeFileSync(unit, text);
    assert.match(text, /^Restart=always$/m);
    assert.match(text, /^MemoryMax=\d+M$/m);
    assert.match(text, /inst 100%%/);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
    const own = (r.stderr + r.stdout).split('\n').filter((l) => l.includes(unitName(install)) || l.includes(d));
    assert.deepEqual(own, [], `systemd-analyze verify found problems in the unit:\n${r.stderr}`);
    // and a broken unit is noticed by the same check
    writeFileSync(unit, text.replace('Restart=always', 'Restart=sometimes'));
    const bad = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
    assert.match(bad.stderr, /restart specifier/);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('the rotating log keeps at most keep+1 files of maxBytes, newest in the file itself', () => {
  const d = tmp();
  try {
    const f = new RotatingFile(join(d, 'observer.log'), 1000, 2);
    for (let i = 0; i < 100; i++) f.write(`line ${String(i).padStart(3, '0')} ${'x'.repeat(80)}\n`);
    f.write('y'.repeat(5000)); // one write larger than the bound
    f.close();
    const files = readdirSync(d).sort();
    assert.deepEqual(files, ['observer.log', 'observer.log.1', 'observer.log.2']);
    for (const name of files) assert.ok(statSync(join(d, name)).size <= 1000, `${name} ≤ 1000 bytes`);
    assert.ok(f.rotations >= 9);
    assert.match(readFileSync(join(d, 'observer.log.1'), 'utf8'), /line 099/);
  } finally {
    rmSync(d, { recursive: true });
  }
});
