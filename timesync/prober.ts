/**
 * The manager's side of time sync: sends probes from a UDP socket and takes their send (t1) and
 * receive (t4) times at tc on the manager's interface (bpf/prober.bpf.c), so the manager's own
 * scheduler and socket layers stay out of the measurement. Completed probes come back through a
 * ring buffer with the responder's t2 and t3. Requests carry a MAC, a random nonce per round and
 * their issue time; the tc program joins only replies from the address a probe went to, with its
 * nonce and a valid MAC (forged ones are counted and dropped).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { BpfObject, BpfError, forEachRecord, type RingReader } from '../native/addon.js';
import { TS_INFLIGHT, TS_PROBE, TS_SAMPLE, TIMESYNC_H as H, decodeSample, encodeRequest, keyBytes, keyWords, newNonce, sampleSeq, testStamp, type Sample, type TestClock } from '../protocol/timesync.js';

export interface ProberOptions {
  /** The manager's interfaces towards the servers (management_server_info.eth). */
  ifaces: string[];
  /** The responders' UDP port. */
  port: number;
  key: bigint;
  /**
   * Where t4 is taken: 'auto' XDP where the interface takes it, else tc; 'tc' always at tc
   * ingress (an observer's mesh prober: its own responder holds the interface's XDP hook).
   */
  replyAt?: 'auto' | 'tc';
  /** Test only: a synthetic clock on this prober's t1 and t4 (a responder's --test-clock on the same host, for a mesh against a known truth). */
  test?: TestClock;
}

export interface ProberCounters {
  sent: bigint;
  completed: bigint;
  unknown: bigint;
  bad: bigint;
  ringFull: bigint;
  /** Replies to a probe in flight with a wrong MAC or nonce: forged, dropped. */
  badMac: bigint;
  /** Replies to a probe in flight from another address than it went to. */
  badSource: bigint;
}

export interface RoundResult {
  /** Completed probes per server address. */
  samples: Map<string, Sample[]>;
  /** Probes sent per server with no reply within the timeout. */
  lost: Map<string, number>;
}

/** This host's wall clock (Unix ms) at a CLOCK_MONOTONIC instant: the prober's stamps' clock, hrtime's here. */
export const unixMsAt = (monotonicNs: bigint): number => Date.now() - Number(process.hrtime.bigint() - monotonicNs) / 1e6;

/** Probes per server sent, answered and discarded at the start of each round. */
export const WARMUP_PROBES = 32;

/** t4 by XDP where the interface takes it (native first), else at tc ingress; `at` 'tc': at tc ingress. */
function replyHook(bpf: BpfObject, iface: string, at: 'auto' | 'tc'): 'xdp-native' | 'xdp-generic' | 'tc' {
  for (const mode of at === 'auto' ? (['native', 'generic'] as const) : []) {
    try {
      bpf.attachXdp('ts_reply_xdp', iface, mode);
      return mode === 'native' ? 'xdp-native' : 'xdp-generic';
    } catch (e) {
      if (!(e instanceof BpfError) || e.code === 'ENODEV') throw e;
    }
  }
  bpf.attachTc('ts_reply_tc', iface, 'ingress');
  return 'tc';
}

export class Prober {
  private seq = randomInt(0, 2 ** 31); // apart from any other prober on this interface
  private issued = 0n;
  private readonly batch = Buffer.alloc(1 << 20);
  private readonly key: Buffer;
  /** Where a test clock's drift starts, unless it says. */
  private readonly testEpoch: bigint;

  private constructor(
    private readonly bpf: BpfObject,
    private readonly ring: RingReader,
    private readonly sock: Socket,
    readonly o: ProberOptions,
    /** Where t4 is taken on each interface. */
    readonly replyHooks: Record<string, 'xdp-native' | 'xdp-generic' | 'tc'>,
  ) {
    this.key = keyBytes(o.key);
    this.testEpoch = o.test?.epochNs ?? process.hrtime.bigint();
  }

  /** The UDP port of this prober's socket: its probes leave from it and its replies come to it. */
  get localPort(): number {
    return this.sock.address().port;
  }

  /** The next request's issue time: the wall clock in ns, rising strictly (responders answer a prober only with a later one). */
  private nextIssued(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    this.issued = now > this.issued ? now : this.issued + 1n;
    return this.issued;
  }

  static async open(o: ProberOptions): Promise<Prober> {
    // the socket first: its port tells the programs this prober's probes and replies from others'
    const sock = createSocket({ type: 'udp4' });
    let bpf: BpfObject | undefined;
    try {
      sock.on('message', () => {}); // replies are consumed at tc; stragglers are ignored here
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(0, () => resolve());
      });
      sock.on('error', () => {});
      bpf = BpfObject.open('prober', { settings: { port: o.port, src_port: sock.address().port, ...keyWords(o.key) }, layouts: [TS_PROBE, TS_SAMPLE, TS_INFLIGHT] });
      const replyHooks: Record<string, 'xdp-native' | 'xdp-generic' | 'tc'> = {};
      for (const iface of o.ifaces) {
        bpf.attachTc('ts_probe_out', iface, 'egress');
        replyHooks[iface] = replyHook(bpf, iface, o.replyAt ?? 'auto');
      }
      return new Prober(bpf, bpf.ring('samples'), sock, o, replyHooks);
    } catch (e) {
      sock.close();
      bpf?.close();
      throw e;
    }
  }

  /**
   * One round: `count` probes to each server, one server after the other and one probe in
   * flight at a time: the next probe leaves when the reply to the last arrived (or after
   * `probeTimeoutMs`), so probes never queue behind each other at a slow responder. A server's
   * probes go as one burst because every probe that meets a cold path (caches, sleeping CPUs)
   * is slowed in both directions unequally: interleaving servers made each probe follow one to
   * another path, and raised the XDP responder's p99 error from 0.36-0.41 us to 0.47-0.61 us
   * on the testbed. The first `warmup` probes of each burst are sent the same way but not kept.
   */
  async round(servers: string[], count: number, round: number, probeTimeoutMs = 20, warmup = WARMUP_PROBES): Promise<RoundResult> {
    const samples = new Map(servers.map((s) => [s, [] as Sample[]]));
    const pending = new Map<number, string>();
    const test = this.o.test, testEpoch = this.testEpoch;
    const buf = Buffer.alloc(TS_PROBE.size);
    const collect = () => {
      for (;;) {
        const [n, used] = this.ring.drainInto(this.batch);
        if (n === 0) break;
        forEachRecord(this.batch, used, (off, len) => {
          if (len < TS_SAMPLE.size) return;
          const seq = sampleSeq(this.batch, off);
          const server = pending.get(seq);
          if (server === undefined) return; // a late reply of an earlier round
          pending.delete(seq);
          const s = decodeSample(this.batch, off, server);
          if (test) (s.t1 = testStamp(s.t1, test, testEpoch)), (s.t4 = testStamp(s.t4, test, testEpoch));
          samples.get(server)!.push(s);
        });
      }
    };
    const lost = new Map(servers.map((s) => [s, 0]));
    const sent = this.bpf.map('sent');
    const key = Buffer.alloc(4);
    const nonce = newNonce();
    for (const server of servers) {
      for (let i = -warmup; i < count; i++) {
        const seq = (this.seq = (this.seq + 1) >>> 0);
        pending.set(seq, server);
        encodeRequest(this.key, { round, seq, nonce, issued: this.nextIssued() }, buf);
        await new Promise<void>((resolve) => this.sock.send(buf, this.o.port, server, () => resolve()));
        const deadline = performance.now() + probeTimeoutMs;
        for (;;) {
          collect();
          if (!pending.has(seq)) {
            if (i < 0) samples.get(server)!.pop(); // a warm-up probe
            break;
          }
          if (performance.now() > deadline) {
            // lost: forget its send time, so the in-flight map never fills
            pending.delete(seq);
            if (i >= 0) lost.set(server, lost.get(server)! + 1);
            key.writeUInt32LE(seq);
            sent.delete(key);
            break;
          }
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    return { samples, lost };
  }

  counters(): ProberCounters {
    const m = this.bpf.map('ts_counters');
    return { sent: m.u64At(H.TS_P_SENT), completed: m.u64At(H.TS_P_COMPLETED), unknown: m.u64At(H.TS_P_UNKNOWN), bad: m.u64At(H.TS_P_BAD), ringFull: m.u64At(H.TS_P_RING_FULL), badMac: m.u64At(H.TS_P_BAD_MAC), badSource: m.u64At(H.TS_P_BAD_SOURCE) };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
    this.bpf.close();
  }
}
