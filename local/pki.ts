/**
 * A certificate authority for the local servers and the tests (TLS to Redis and MariaDB): made
 * once with Debian's openssl in the work directory, then reused. The server certificate is for
 * 127.0.0.1 and localhost; the client certificate serves mutual TLS. A second, unrelated CA lets
 * tests show that a server signed by someone else is refused.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';
import { workDir } from '../lib/paths.js';

export interface TestPki {
  dir: string;
  /** The CA's certificate (PEM): what clients trust. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** Another CA's certificate: trusting it must fail against our servers. */
  otherCaFile: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function testPki(): TestPki {
  const dir = workDir('pki');
  const f = (n: string) => join(dir, n);
  const pki: TestPki = { dir, caFile: f('ca.pem'), serverCertFile: f('server.pem'), serverKeyFile: f('server.key'), clientCertFile: f('client.pem'), clientKeyFile: f('client.key'), otherCaFile: f('other-ca.pem') };
  if ([pki.caFile, pki.serverCertFile, pki.serverKeyFile, pki.clientCertFile, pki.clientKeyFile, pki.otherCaFile].every((p) => existsSync(p))) return pki;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = (name: string, cn: string) => run(['openssl', 'req', '-x509', ...EC, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '3650', '-subj', `/CN=${cn}`]);
  ca('ca', 'latscope test CA');
  ca('other-ca', 'some other CA');
  const leaf = (name: string, cn: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    run(['openssl', 'req', ...EC, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    run(['openssl', 'x509', '-req', '-in', f(`${name}.csr`), '-CA', pki.caFile, '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '3650', '-extfile', f(`${name}.ext`)]);
  };
  leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'latscope-client', 'extendedKeyUsage=clientAuth\n');
  return pki;
}
