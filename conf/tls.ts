/** The files of a conf's `tls` block, read and checked: what a TLS client needs (node's tls options). */
import { resolve, join } from 'node:path';
import { ConfError, readSmallFile } from './load.js';
import type { TlsInfo } from './schema.js';

export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
  servername?: string;
}

/** Reads a `tls` block's files (relative to the conf folder); a missing or unreadable one is a ConfError naming the file and key. */
export function loadTls(dir: string, file: string, t: TlsInfo): TlsFiles {
  const where = join(dir, file);
  const read = (key: 'ca_file' | 'cert_file' | 'key_file', path: string, kind: RegExp, what: string): string => {
    let text: string;
    try {
      text = readSmallFile(resolve(dir, path), `tls.${key}:`, where);
    } catch (e) {
      throw new ConfError((e as Error).message, where, undefined, `tls.${key}`);
    }
    if (!kind.test(text)) throw new ConfError(`${where}: tls.${key}: ${resolve(dir, path)} is not ${what} in PEM form`, where, undefined, `tls.${key}`);
    return text;
  };
  const out: TlsFiles = { ca: read('ca_file', t.ca_file, /-----BEGIN CERTIFICATE-----/, 'a certificate') };
  if (t.cert_file && t.key_file) {
    out.cert = read('cert_file', t.cert_file, /-----BEGIN CERTIFICATE-----/, 'a certificate');
    out.key = read('key_file', t.key_file, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key');
  }
  if (t.server_name) out.servername = t.server_name;
  return out;
}
