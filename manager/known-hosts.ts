/**
 * known_hosts as OpenSSH writes and reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): hashed
 * names (`|1|salt|hash`, HMAC-SHA1 of the name; Debian's default HashKnownHosts yes), `[host]:port`
 * for ports other than 22, comma-separated patterns with `*`, `?` and negation `!`, and the
 * markers `@revoked` (a key refused everywhere) and `@cert-authority` (a CA whose signed host
 * certificates are accepted for the matching names). Also the check of such a host certificate:
 * type, principals, validity and the CA's signature. Pure functions: the SSH client decides.
 */
import { createHmac, createPublicKey, verify, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';
import { matchesPatternList } from '../lib/glob.js';

const { utils } = ssh2;

export interface HostKeys {
  /** Plain host keys recorded for the host. */
  keys: string[];
  /** CA keys whose host certificates are accepted for the host. */
  cas: string[];
  /** Keys revoked (whichever host they are for: @revoked applies to every name it matches). */
  revoked: Set<string>;
}

/** The name a host is known by: `host`, or `[host]:port` for another port than 22. */
export const knownHostsName = (host: string, port: number): string => (port === 22 ? host : `[${host}]:${port}`);

function hashedMatch(field: string, name: string): boolean {
  const [, magic, salt, hash] = field.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
}

/** Does a host field (patterns, or one hashed name) match the name? Negations win. */
export function hostFieldMatches(field: string, name: string): boolean {
  return field.startsWith('|') ? hashedMatch(field, name) : matchesPatternList(field.split(','), name);
}

/** The keys known_hosts text holds for host:port. */
export function lookupHostKeys(text: string, host: string, port: number): HostKeys {
  const name = knownHostsName(host, port);
  const out: HostKeys = { keys: [], cas: [], revoked: new Set() };
  for (const raw of text.split('\n')) {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) continue;
    let marker: string | undefined;
    if (fields[0].startsWith('@')) marker = fields.shift()!.slice(1);
    const [hosts, type, blob] = fields;
    if (!hosts || !type || !blob) continue;
    if (marker === 'revoked') {
      // a revoked key is refused for any host (sshd(8): "should never be accepted")
      out.revoked.add(blob);
      continue;
    }
    if (!hostFieldMatches(hosts, name)) continue;
    if (marker === 'cert-authority') out.cas.push(blob);
    else if (marker === undefined) out.keys.push(blob);
  }
  return out;
}

/** A host certificate, decoded (PROTOCOL.certkeys). */
export interface HostCertificate {
  certType: string;
  /** The certified public key as a plain SSH key blob (what the server proves it holds). */
  publicKey: Buffer;
  serial: bigint;
  /** 1 user, 2 host. */
  kind: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  /** The CA's public key blob. */
  signatureKey: Buffer;
  /** Everything the signature covers. */
  signed: Buffer;
  signatureType: string;
  signature: Buffer;
}

class Reader {
  private at = 0;
  constructor(private readonly b: Buffer) {}
  bytes(): Buffer {
    if (this.at + 4 > this.b.length) throw new Error('certificate truncated');
    const n = this.b.readUInt32BE(this.at);
    if (this.at + 4 + n > this.b.length) throw new Error('certificate truncated');
    const v = this.b.subarray(this.at + 4, this.at + 4 + n);
    this.at += 4 + n;
    return v;
  }
  /** The raw SSH encoding of the next string (length included). */
  raw(): Buffer {
    const start = this.at;
    this.bytes();
    return this.b.subarray(start, this.at);
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u64(): bigint {
    const v = this.b.readBigUInt64BE(this.at);
    this.at += 8;
    return v;
  }
  get offset(): number {
    return this.at;
  }
  get done(): boolean {
    return this.at >= this.b.length;
  }
}

const sshString = (s: string | Buffer): Buffer => {
  const b = Buffer.from(s);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
};

/** Number of SSH strings that make each key type's public part (after the type name). */
const KEY_FIELDS: Record<string, number> = { 'ssh-ed25519': 1, 'ssh-rsa': 2, 'ecdsa-sha2-nistp256': 2, 'ecdsa-sha2-nistp384': 2, 'ecdsa-sha2-nistp521': 2 };

export function parseHostCertificate(blob: Buffer): HostCertificate {
  const r = new Reader(blob);
  const certType = r.bytes().toString();
  const m = /^(.*)-cert-v01@openssh\.com$/.exec(certType);
  const plain = m?.[1];
  if (!plain || !(plain in KEY_FIELDS)) throw new Error(`not a supported certificate type (${certType.slice(0, 60)})`);
  r.bytes(); // nonce
  const keyParts: Buffer[] = [];
  for (let i = 0; i < KEY_FIELDS[plain]!; i++) keyParts.push(r.raw());
  const serial = r.u64();
  const kind = r.u32();
  const keyId = r.bytes().toString();
  const pr = new Reader(r.bytes());
  const principals: string[] = [];
  while (!pr.done) principals.push(pr.bytes().toString());
  const validAfter = r.u64();
  const validBefore = r.u64();
  r.bytes(); // critical options
  r.bytes(); // extensions
  r.bytes(); // reserved
  const signatureKey = r.bytes();
  const signed = blob.subarray(0, r.offset);
  const sig = new Reader(r.bytes());
  const signatureType = sig.bytes().toString();
  const signature = sig.bytes();
  return { certType, publicKey: Buffer.concat([sshString(plain), ...keyParts]), serial, kind, keyId, principals, validAfter, validBefore, signatureKey, signed, signatureType, signature };
}

function caKeyObject(caBlob: Buffer): KeyObject {
  const type = new Reader(caBlob).bytes().toString();
  const parsed = utils.parseKey(`${type} ${caBlob.toString('base64')}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`the CA key cannot be read (${key instanceof Error ? key.message : 'unknown'})`);
  return createPublicKey(key.getPublicPEM());
}

/** An ECDSA signature in SSH form (mpint r, mpint s) as r||s of the curve's size. */
function ecdsaP1363(sig: Buffer, curveBytes: number): Buffer {
  const r = new Reader(sig);
  const fix = (v: Buffer) => {
    const t = v.subarray(Math.max(0, v.length - curveBytes));
    return Buffer.concat([Buffer.alloc(curveBytes - t.length), t]);
  };
  return Buffer.concat([fix(r.bytes()), fix(r.bytes())]);
}

function signatureValid(c: HostCertificate): boolean {
  const key = caKeyObject(c.signatureKey);
  switch (c.signatureType) {
    case 'ssh-ed25519':
      return verify(null, c.signed, key, c.signature);
    case 'rsa-sha2-512':
      return verify('sha512', c.signed, key, c.signature);
    case 'rsa-sha2-256':
      return verify('sha256', c.signed, key, c.signature);
    case 'ecdsa-sha2-nistp256':
      return verify('sha256', c.signed, { key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(c.signature, 32));
    case 'ecdsa-sha2-nistp384':
      return verify('sha384', c.signed, { key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(c.signature, 48));
    case 'ecdsa-sha2-nistp521':
      return verify('sha512', c.signed, { key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(c.signature, 66));
    default:
      return false; // ssh-rsa (SHA-1) signatures are refused, as OpenSSH does
  }
}

/**
 * Why a host certificate must not be accepted for `host` (undefined: it may): it must be a host
 * certificate, name the host among its principals, be valid now, be signed by one of the `cas`
 * and neither it, its key nor its CA may be revoked.
 */
export function certificateProblem(c: HostCertificate, host: string, keys: HostKeys, nowS = BigInt(Math.floor(Date.now() / 1000))): string | undefined {
  if (c.kind !== 2) return 'it is a user certificate, not a host certificate';
  if (!keys.cas.includes(c.signatureKey.toString('base64'))) return 'it is signed by a CA that known_hosts does not trust for this host';
  if (keys.revoked.has(c.signatureKey.toString('base64'))) return 'its CA key is @revoked in known_hosts';
  if (keys.revoked.has(c.publicKey.toString('base64'))) return 'its key is @revoked in known_hosts';
  if (c.principals.length && !c.principals.includes(host)) return `it is for ${c.principals.join(', ')}, not ${host}`;
  if (nowS < c.validAfter) return 'it is not valid yet';
  if (nowS >= c.validBefore) return 'it has expired';
  if (!signatureValid(c)) return "the CA's signature does not verify";
  return undefined;
}
