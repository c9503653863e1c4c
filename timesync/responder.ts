/**
 * Time-sync responders on an observer. The XDP responder (bpf/responder.bpf.c) answers in the
 * driver path; on veth, whose native XDP cannot transmit unless its peer also runs XDP (see
 * KERNEL-FACTS), it runs in generic mode. Where XDP cannot attach at all, the user-space UDP
 * echo responder answers instead, with user-space timestamps, and says so.
 *
 * Both answer exactly the same probes: well-formed IPv4 UDP to a unicast address of this host,
 * not fragmented, from a configured prober, with a valid MAC, issued later than the last one
 * answered from that prober and within its rate (so forged probes, replays and spoofed sources
 * get nothing, and a responder sends no one more than rateLimit replies a second). XDP judges
 * every frame itself; in front of the user-space responder the stateless checks run at tc
 * ingress (ts_validate), before the kernel reassembles fragments, and the responder checks again
 * what its socket can see, with replays and the rate. Everything else is dropped and counted by
 * reason; nothing a packet holds can make either of them throw.
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { BpfObject, BpfError, type XdpMode } from '../native/addon.js';
import { REQUEST, TS_PEER, TS_PROBE, TIMESYNC_H as H, decodeProbe, keyBytes, keyWords, macOk, signReply, testStamp, type TestClock } from '../protocol/timesync.js';

export type ResponderMode = 'xdp-native' | 'xdp-generic' | 'user-space';

/** Probes answered, and everything else to the port by why it was dropped (timesync.h TS_R_*). */
export interface ResponderCounters {
  answered: bigint;
  /** Without a valid MAC: sent without the key. */
  badMac: bigint;
  malformed: bigint;
  truncated: bigint;
  badHeader: bigint;
  badSource: bigint;
  fragment: bigint;
  notLocal: bigint;
  /** From an address that is not a configured prober. */
  notProber: bigint;
  /** Issued no later than the last request answered from that prober: a replay. */
  replay: bigint;
  /** Over the prober's replies per second. */
  rate: bigint;
}

const REASONS: [keyof ResponderCounters, number][] = [
  ['answered', H.TS_R_ANSWERED], ['badMac', H.TS_R_BAD_MAC], ['malformed', H.TS_R_MALFORMED], ['truncated', H.TS_R_TRUNCATED],
  ['badHeader', H.TS_R_BAD_HEADER], ['badSource', H.TS_R_BAD_SOURCE], ['fragment', H.TS_R_FRAGMENT], ['notLocal', H.TS_R_NOT_LOCAL],
  ['notProber', H.TS_R_NOT_PROBER], ['replay', H.TS_R_REPLAY], ['rate', H.TS_R_RATE],
];
const zero = (): ResponderCounters => Object.fromEntries(REASONS.map(([k]) => [k, 0n])) as unknown as ResponderCounters;

export interface ResponderOptions {
  /** Interface the probes arrive on. */
  iface: string;
  /** UDP port. */
  port: number;
  /** The deployment key (128 bits). */
  key: bigint;
  /** The only addresses answered (the manager's; peers' in a mesh). */
  probers: string[];
  /** Replies per second to one prober (default 50,000). */
  rateLimit?: number;
  /** auto: native where it can transmit, generic on veth; user-space: no XDP at all. */
  mode?: 'auto' | 'native' | 'generic' | 'user-space';
  /** Address for the user-space responder to bind (default all). */
  bindAddress?: string;
  /** Test only: a synthetic clock error on the responder's timestamps. */
  test?: TestClock;
}

export interface Responder {
  readonly mode: ResponderMode;
  /** Why XDP was not used, when mode is user-space. */
  readonly fallbackReason?: string;
  counters(): ResponderCounters;
  close(): Promise<void>;
}

/** The link kind of an interface ("veth", "bridge", ... or "" for a physical device). */
export function linkKind(iface: string): string {
  try {
    const out = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', iface], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return out[0]?.linkinfo?.info_kind ?? '';
  } catch {
    return '';
  }
}

/** Native XDP_TX works on real NICs; these virtual devices need generic mode to transmit. */
const GENERIC_KINDS = new Set(['veth', 'bridge', 'macvlan', 'vxlan', 'tun', 'dummy']);

/** The interface's IPv4 addresses and their broadcast addresses (the only ones a probe may be to, and may not come from). */
export function interfaceAddresses(iface: string): { local: string[]; broadcast: string[] } {
  const list = (networkInterfaces()[iface] ?? []).filter((a) => a.family === 'IPv4');
  const num = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const str = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return { local: list.map((a) => a.address), broadcast: list.map((a) => str((num(a.address) | (~num(a.netmask) >>> 0)) >>> 0)) };
}

/** The interface that holds an IPv4 address on this machine (undefined: none). */
export function interfaceOf(address: string): string | undefined {
  for (const [name, list] of Object.entries(networkInterfaces())) if (list?.some((a) => a.family === 'IPv4' && a.address === address)) return name;
  return undefined;
}

/** Addresses as the BPF program's table (network byte order, TS_MAX_ADDRS entries, 0 for none). */
function addressTable(addrs: string[]): Buffer {
  const b = Buffer.alloc(4 * H.TS_MAX_ADDRS);
  addrs.slice(0, H.TS_MAX_ADDRS).forEach((a, i) => a.split('.').forEach((o, k) => (b[4 * i + k] = Number(o))));
  return b;
}

export const DEFAULT_RATE_LIMIT = 50_000;

/** What a responder needs before it starts, checked the same way for both kinds. */
function checkOptions(o: ResponderOptions): void {
  if (o.key === 0n) throw new RangeError('time-sync responder: the key must not be 0');
  if (!o.probers.length) throw new RangeError('time-sync responder: no prober addresses: it would answer no one; give the manager\'s address (ping_info.yaml probers)');
  if (o.probers.length > H.TS_MAX_PEERS) throw new RangeError(`time-sync responder: ${o.probers.length} prober addresses, at most ${H.TS_MAX_PEERS}`);
  for (const a of o.probers) if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(a) || a.split('.').some((x) => Number(x) > 255)) throw new RangeError(`time-sync responder: prober "${a}" is not an IPv4 address`);
  if (o.rateLimit !== undefined && (!Number.isInteger(o.rateLimit) || o.rateLimit < 1 || o.rateLimit > 2 ** 32 - 1)) throw new RangeError(`time-sync responder: rate limit ${o.rateLimit} is not a whole number of replies per second`);
}

function openResponder(o: ResponderOptions, program: 'ts_respond' | 'ts_validate'): BpfObject {
  checkOptions(o);
  const t = o.test;
  const { local, broadcast } = interfaceAddresses(o.iface);
  const bpf = BpfObject.open('responder', {
    layouts: [TS_PROBE, TS_PEER],
    skip: [program === 'ts_respond' ? 'ts_validate' : 'ts_respond'],
    settings: {
      port: o.port,
      ...keyWords(o.key),
      rate_limit: o.rateLimit ?? DEFAULT_RATE_LIMIT,
      local_addrs: addressTable(local),
      bcast_addrs: addressTable(broadcast),
      test_offset_ns: t?.offsetNs ?? 0n,
      test_drift_ppb: t?.driftPpb ?? 0n,
      test_epoch_ns: t?.epochNs ?? (t ? process.hrtime.bigint() : 0n),
    },
  });
  try {
    const peers = bpf.map('peers');
    const empty = Buffer.alloc(TS_PEER.size);
    for (const a of o.probers) peers.update(Buffer.from(a.split('.').map(Number)), empty);
  } catch (e) {
    bpf.close();
    throw e;
  }
  return bpf;
}

function bpfCounters(bpf: BpfObject): ResponderCounters {
  const m = bpf.map('ts_counters');
  return Object.fromEntries(REASONS.map(([k, i]) => [k, m.u64At(i)])) as unknown as ResponderCounters;
}

export async function startResponder(o: ResponderOptions): Promise<Responder> {
  const want = o.mode ?? 'auto';
  if (want === 'user-space') return EchoResponder.start(o);
  const modes: XdpMode[] = want === 'native' ? ['native'] : want === 'generic' ? ['generic'] : GENERIC_KINDS.has(linkKind(o.iface)) ? ['generic'] : ['native', 'generic'];
  let lastError: Error | undefined;
  for (const m of modes) {
    try {
      return XdpResponder.start(o, m);
    } catch (e) {
      lastError = e as Error;
      if (!(e instanceof BpfError) || (e as BpfError).code === 'ENODEV') throw e; // a missing interface is the operator's to fix
    }
  }
  if (want !== 'auto') throw lastError!;
  return EchoResponder.start(o, `XDP could not attach to ${o.iface}: ${lastError?.message}`);
}

export class XdpResponder implements Responder {
  private constructor(
    private readonly bpf: BpfObject,
    readonly mode: ResponderMode,
  ) {}

  static start(o: ResponderOptions, mode: XdpMode): XdpResponder {
    const bpf = openResponder(o, 'ts_respond');
    try {
      bpf.attachXdp('ts_respond', o.iface, mode);
    } catch (e) {
      bpf.close();
      throw e;
    }
    return new XdpResponder(bpf, mode === 'native' ? 'xdp-native' : 'xdp-generic');
  }

  counters(): ResponderCounters {
    return bpfCounters(this.bpf);
  }

  async close(): Promise<void> {
    this.bpf.close();
  }
}

/**
 * The user-space fallback: a UDP socket answering probes with process.hrtime (CLOCK_MONOTONIC,
 * the clock of the BPF timestamps), behind the tc validator where BPF works at all.
 */
export class EchoResponder implements Responder {
  readonly mode = 'user-space' as const;
  private readonly c = zero();

  private constructor(
    private readonly sock: Socket,
    private readonly validator: BpfObject | undefined,
    readonly fallbackReason?: string,
  ) {}

  static async start(o: ResponderOptions, fallbackReason?: string): Promise<EchoResponder> {
    checkOptions(o);
    let validator: BpfObject | undefined;
    let reason = fallbackReason;
    try {
      validator = openResponder(o, 'ts_validate');
      validator.attachTc('ts_validate', o.iface, 'ingress');
    } catch (e) {
      validator?.close();
      validator = undefined;
      if (e instanceof BpfError && e.code === 'ENODEV') throw e;
      reason = `${reason ? `${reason}; ` : ''}no tc validator in front (${(e as Error).message}): only what the kernel and the socket see is checked`;
    }
    const sock = createSocket({ type: 'udp4' });
    const r = new EchoResponder(sock, validator, reason);
    const t = o.test;
    const epoch = t?.epochNs ?? process.hrtime.bigint();
    const stamp = (x: bigint) => (t ? testStamp(x, t, epoch) : x);
    const { local, broadcast } = interfaceAddresses(o.iface);
    const badSource = (a: string, p: number) => {
      const first = Number(a.split('.')[0]);
      return !p || a === '0.0.0.0' || a === '255.255.255.255' || (first >= 224 && first <= 239) || first === 127 || local.includes(a) || broadcast.includes(a);
    };
    const key = keyBytes(o.key);
    const limit = o.rateLimit ?? DEFAULT_RATE_LIMIT;
    // per prober, as the XDP program's peers map: the latest request answered, the rate window
    const peers = new Map(o.probers.map((a) => [a, { lastIssued: 0n, windowStart: 0n, windowCount: 0 }]));
    sock.on('message', (msg, from) => {
      const t2 = process.hrtime.bigint();
      if (from.family !== 'IPv4' || badSource(from.address, from.port)) return void r.c.badSource++;
      const d = decodeProbe(msg);
      if (!d.ok) return void (d.reason === 'truncated' ? r.c.truncated++ : r.c.malformed++);
      if (d.probe.type !== REQUEST) return void r.c.malformed++;
      const peer = peers.get(from.address);
      if (!peer) return void r.c.notProber++;
      if (!macOk(key, msg)) return void r.c.badMac++;
      if (d.probe.issued <= peer.lastIssued) return void r.c.replay++;
      peer.lastIssued = d.probe.issued;
      if (t2 - peer.windowStart >= 1_000_000_000n) {
        peer.windowStart = t2;
        peer.windowCount = 0;
      }
      if (peer.windowCount++ >= limit) return void r.c.rate++;
      const reply = signReply(key, Buffer.from(msg.subarray(0, TS_PROBE.size)), stamp(t2), stamp(process.hrtime.bigint()));
      try {
        sock.send(reply, from.port, from.address);
        r.c.answered++;
      } catch {
        r.c.badSource++; // an address the socket will not send to: never a crash
      }
    });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(o.port, o.bindAddress, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', () => {}); // a failed send loses one reply; the prober counts the probe as lost
    return r;
  }

  counters(): ResponderCounters {
    const v = this.validator ? bpfCounters(this.validator) : zero();
    return Object.fromEntries(REASONS.map(([k]) => [k, this.c[k] + v[k]])) as unknown as ResponderCounters;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
    this.validator?.close();
  }
}
