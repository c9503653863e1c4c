/**
 * Time-sync responders on an observer. The XDP responder (bpf/responder.bpf.c) answers in the
 * driver path; on veth, whose native XDP cannot transmit unless its peer also runs XDP (see
 * KERNEL-FACTS), it runs in generic mode. Where XDP cannot attach at all, the user-space UDP
 * echo responder answers instead, with user-space timestamps, and says so.
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { BpfObject, BpfError, type XdpMode } from '../native/addon.js';
import { REPLY, REQUEST, TS_PROBE, TIMESYNC_H as H, decodeProbe, encodeProbe } from '../protocol/timesync.js';

export type ResponderMode = 'xdp-native' | 'xdp-generic' | 'user-space';

export interface ResponderCounters {
  answered: bigint;
  badKey: bigint;
  malformed: bigint;
  truncated: bigint;
}

export interface ResponderOptions {
  /** Interface the probes arrive on. */
  iface: string;
  /** UDP port. */
  port: number;
  /** The deployment key. */
  key: bigint;
  /** auto: native where it can transmit, generic on veth; user-space: no XDP at all. */
  mode?: 'auto' | 'native' | 'generic' | 'user-space';
  /** Address for the user-space responder to bind (default all). */
  bindAddress?: string;
  /** Test only: a synthetic clock error on the responder's timestamps. */
  test?: { offsetNs: bigint; driftPpb: bigint; epochNs?: bigint };
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
    if (o.key === 0n) throw new RangeError('time-sync responder: the key must not be 0');
    const t = o.test;
    const bpf = BpfObject.open('responder', {
      layouts: [TS_PROBE],
      settings: {
        port: o.port,
        key: o.key,
        test_offset_ns: t?.offsetNs ?? 0n,
        test_drift_ppb: t?.driftPpb ?? 0n,
        test_epoch_ns: t?.epochNs ?? (t ? process.hrtime.bigint() : 0n),
      },
    });
    try {
      bpf.attachXdp('ts_respond', o.iface, mode);
    } catch (e) {
      bpf.close();
      throw e;
    }
    return new XdpResponder(bpf, mode === 'native' ? 'xdp-native' : 'xdp-generic');
  }

  counters(): ResponderCounters {
    const m = this.bpf.map('ts_counters');
    return { answered: m.u64At(H.TS_R_ANSWERED), badKey: m.u64At(H.TS_R_BAD_KEY), malformed: m.u64At(H.TS_R_MALFORMED), truncated: m.u64At(H.TS_R_TRUNCATED) };
  }

  async close(): Promise<void> {
    this.bpf.close();
  }
}

/**
 * The user-space fallback: a UDP socket answering probes with process.hrtime (CLOCK_MONOTONIC,
 * the clock of the BPF timestamps). Same validation and counters as the XDP responder.
 */
export class EchoResponder implements Responder {
  readonly mode = 'user-space' as const;
  private readonly c: ResponderCounters = { answered: 0n, badKey: 0n, malformed: 0n, truncated: 0n };

  private constructor(
    private readonly sock: Socket,
    readonly fallbackReason?: string,
  ) {}

  static async start(o: ResponderOptions, fallbackReason?: string): Promise<EchoResponder> {
    if (o.key === 0n) throw new RangeError('time-sync responder: the key must not be 0');
    const sock = createSocket({ type: 'udp4' });
    const r = new EchoResponder(sock, fallbackReason);
    const t = o.test;
    const epoch = t?.epochNs ?? process.hrtime.bigint();
    const stamp = (x: bigint) => (t ? x + t.offsetNs + ((x - epoch) * t.driftPpb) / 1_000_000_000n : x);
    sock.on('message', (msg, from) => {
      const t2 = process.hrtime.bigint();
      const d = decodeProbe(msg);
      if (!d.ok) return void (d.reason === 'truncated' ? r.c.truncated++ : r.c.malformed++);
      if (d.probe.type !== REQUEST) return void r.c.malformed++;
      if (d.probe.key !== o.key) return void r.c.badKey++;
      const reply = encodeProbe({ ...d.probe, type: REPLY, t2: stamp(t2), t3: 0n });
      r.c.answered++;
      reply.writeBigUInt64BE(stamp(process.hrtime.bigint()), TS_PROBE.offsets.t3);
      sock.send(reply, from.port, from.address);
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
    return { ...this.c };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
  }
}
