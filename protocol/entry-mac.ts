/**
 * Who wrote a stream entry. With a Redis user per observer (redis_info observer_users: 1), each
 * observer signs every entry it adds: an HMAC-SHA256 over the entry's fields, under a key that
 * only it and the manager have (derived from its own Redis password, which the manager derives
 * from its own). The node an entry names is then the node that wrote it: an observer cannot add
 * rows, histograms, host events or heartbeats under another server's name. The manager checks
 * every entry before anything else; an unsigned or badly signed one is set aside and counted.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The field that carries the MAC; always the entry's last. */
export const MAC_FIELD = 'mac';

/** The Redis user of an observer. */
export const observerUser = (node: string): string => `latscope-observer-${node}`;

/** An observer's Redis password, as the manager derives it from its own secret (64 hex digits). */
export const observerPassword = (managerSecret: string, node: string): string => createHmac('sha256', managerSecret).update(`latscope observer user\0${node}`).digest('hex');

/** The key an observer signs its entries with, from its Redis password (both sides derive it). */
export const entryKey = (password: string): Buffer => createHmac('sha256', password).update('latscope entry mac\0').digest();

/** The MAC of fields [k1, v1, k2, v2, ...] (each length-prefixed, so no two lists share one): 32 hex digits. */
export function fieldsMac(key: Buffer, fields: readonly (string | Buffer)[], count = fields.length): string {
  const h = createHmac('sha256', key);
  const len = Buffer.alloc(4);
  for (let i = 0; i < count; i++) {
    const f = fields[i]!;
    len.writeUInt32BE(Buffer.byteLength(f));
    h.update(len).update(f);
  }
  return h.digest('hex').slice(0, 32);
}

/** The fields with their MAC appended: what an observer adds. */
export const signFields = <F extends string | Buffer>(key: Buffer, fields: F[]): (F | string)[] => [...fields, MAC_FIELD, fieldsMac(key, fields)];

/** Why an entry is not its node's, or undefined when it is. */
export type Forgery = 'unsigned' | 'bad mac' | 'no node';

/**
 * Checks entries against the node each names: the manager's side. Keys are derived once per
 * node and kept (a bounded number: names a forger makes up are not kept forever).
 */
export class EntryVerifier {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly managerSecret: string) {}

  private keyOf(node: string): Buffer {
    let k = this.keys.get(node);
    if (!k) {
      if (this.keys.size >= 100_000) this.keys.clear();
      k = entryKey(observerPassword(this.managerSecret, node));
      this.keys.set(node, k);
    }
    return k;
  }

  /** undefined when the entry is signed by the node it names; else why not. */
  check(fields: readonly (string | Buffer)[]): Forgery | undefined {
    const n = fields.length;
    if (n < 2 || String(fields[n - 2]) !== MAC_FIELD) return 'unsigned';
    let node: string | undefined;
    for (let i = 0; i + 1 < n - 2; i += 2) if (String(fields[i]) === 'node') node = String(fields[i + 1]);
    if (node === undefined || !/^[\w.-]{1,64}$/.test(node)) return 'no node';
    const want = Buffer.from(fieldsMac(this.keyOf(node), fields, n - 2), 'hex');
    const got = Buffer.from(String(fields[n - 1]!), 'hex');
    return got.length === want.length && timingSafeEqual(got, want) ? undefined : 'bad mac';
  }
}
