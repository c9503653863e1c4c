/**
 * The probe mesh in an observer (time_sync.yaml mesh, issue 26; `latscope observer` runs it beside
 * its responder when the manager wrote mesh_info.yaml): every `interval` this observer
 * probes its peers' responders with a prober of its own (t1 and t4 at tc or XDP on its interface,
 * as the manager's prober takes them), estimates each peer's clock against its own, and sends
 * the round as one entry of the capped mesh stream. Rounds start on the wall clock's multiples of
 * the interval, so every observer computes the same peers for the same round (meshPeers) and the
 * analysis solves each round's edges together. Probes go one at a time, paced to at most
 * `maxProbeRate` a second. A round that cannot be sent is counted (drops.mesh_rounds).
 */
import { Prober, unixMsAt, WARMUP_PROBES } from './prober.js';
import { estimateRound, probeOffset } from './estimator.js';
import { MESH_FORMAT, MESH_MANAGER, meshPeers, type MeshBatch, type MeshEdgeRow } from '../protocol/mesh.js';
import { toFields } from '../protocol/redis.js';
import { median } from '../lib/stats.js';
import type { Sample } from '../protocol/timesync.js';

/** What an observer needs for the mesh (the manager writes it, with the fleet's names and addresses, into the observer's mesh_info.yaml). */
export interface MeshProbingOptions {
  /** The interface the prober stamps on (ping_info.yaml eth). */
  iface: string;
  port: number;
  key: bigint;
  /** Every server of the fleet, this one included. */
  nodes: { name: string; address: string }[];
  intervalMs: number;
  probes: number;
  fullMesh: number;
  ring: number;
  random: number;
  timeoutMs: number;
  maxProbeRate: number;
  /** For an anchor: the manager's address (its responder answers the anchors), probed each round as the peer MESH_MANAGER. */
  manager?: string;
}

export interface MeshCounters {
  rounds: number;
  probesSent: number;
  probesLost: number;
  /** Rounds whose entry could not be sent (Redis away): lost, counted in drops.mesh_rounds. */
  unsent: number;
  lastError: string;
}

type Log = { warn(o: object, msg: string): void };

/** Sends a round's entry (the observer's signed, capped send to the mesh stream): false when it could not. */
export type SendRound = (fields: string[]) => Promise<{ sent: boolean; error?: string }>;

/** Lowest and median of a list. */
const minP50 = (xs: number[]): [number, number] => [Math.min(...xs), median(xs)];

/** One peer's edge from its round of probes (none kept: only what was sent and lost). */
export function meshEdge(peer: string, samples: Sample[], sent: number, lost: number): MeshEdgeRow {
  const row: MeshEdgeRow = { peer, sent, lost };
  const delays = samples.map((s) => probeOffset(s).delayNs);
  const sane = samples.filter((_, i) => delays[i]! >= 0);
  if (!sane.length) return row;
  const est = estimateRound(sane);
  const off = est.offsetNs;
  // each probe's one-way delays as if `off` were the truth; the analysis corrects them with the solved clocks
  const fwd = sane.map((s) => Number(s.t2 - s.t1 - off)), bwd = sane.map((s) => Number(s.t4 - s.t3 + off));
  const rtt = delays.filter((d) => d >= 0);
  [row.fwdMinNs, row.fwdP50Ns] = minP50(fwd);
  [row.bwdMinNs, row.bwdP50Ns] = minP50(bwd);
  [row.rttMinNs, row.rttP50Ns] = minP50(rtt);
  const atUnixMs = Math.round(unixMsAt(est.atNs));
  return { ...row, offsetNs: off.toString(), boundNs: est.boundNs, atNs: est.atNs.toString(), atUnixMs };
}

export class MeshProbing {
  readonly counters: MeshCounters = { rounds: 0, probesSent: 0, probesLost: 0, unsent: 0, lastError: '' };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  private constructor(
    private readonly node: string,
    private readonly o: MeshProbingOptions,
    private readonly prober: Prober,
    private readonly send: SendRound,
    private readonly log: Log,
  ) {}

  static async start(node: string, o: MeshProbingOptions, send: SendRound, log: Log): Promise<MeshProbing> {
    if (!o.nodes.some((n) => n.name === node)) throw new Error(`mesh_info.yaml: this server (${node}) is not one of its nodes; provision again with latscope manager start`);
    // t4 at tc: the XDP hook of this interface is the responder's (answering the peers' probes)
    const prober = await Prober.open({ ifaces: [o.iface], port: o.port, key: o.key, replyAt: 'tc' });
    const m = new MeshProbing(node, o, prober, send, log);
    m.schedule();
    return m;
  }

  /** The next round at the next multiple of the interval on the wall clock. */
  private schedule(): void {
    if (this.stopped) return;
    const wait = this.o.intervalMs - (Date.now() % this.o.intervalMs);
    this.timer = setTimeout(() => {
      this.running = this.round(Math.round(Date.now() / this.o.intervalMs)).then(() => {})
        .catch((e: Error) => {
          if (this.stopped) return; // the prober closed under it
          this.counters.lastError = e.message;
          this.log.warn({ node: this.node, err: e.message }, 'a mesh round failed');
        })
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, wait);
  }

  /** One round: every peer of this epoch, one after the other, then one entry. */
  async round(epoch: number): Promise<MeshEdgeRow[]> {
    const o = this.o;
    const byName = new Map(o.nodes.map((n) => [n.name, n.address]));
    const peers = meshPeers([...byName.keys()], this.node, { fullMesh: o.fullMesh, ring: o.ring, random: o.random, epoch });
    if (o.manager) {
      byName.set(MESH_MANAGER, o.manager);
      peers.push(MESH_MANAGER);
    }
    const edges: MeshEdgeRow[] = [];
    // pacing: a probe every 1/maxProbeRate s at most (the prober waits for each reply, so it is slower on any real path)
    const gapMs = 1000 / o.maxProbeRate;
    for (const peer of peers) {
      if (this.stopped) break;
      const address = byName.get(peer)!;
      const t0 = performance.now();
      const r = await this.prober.round([address], o.probes, epoch, o.timeoutMs);
      const lost = r.lost.get(address) ?? 0;
      edges.push(meshEdge(peer, r.samples.get(address) ?? [], o.probes, lost));
      this.counters.probesSent += o.probes;
      this.counters.probesLost += lost;
      const least = gapMs * (o.probes + WARMUP_PROBES) - (performance.now() - t0);
      if (least > 0) await new Promise((res) => setTimeout(res, least));
    }
    if (this.stopped) return edges;
    this.counters.rounds++;
    const fields = toFields({ node: this.node, format: MESH_FORMAT, epoch, intervalMs: o.intervalMs, at: Date.now(), edges: JSON.stringify(edges) } satisfies MeshBatch);
    const r = await this.send(fields);
    if (!r.sent) {
      this.counters.unsent++;
      this.counters.lastError = r.error || 'Redis not ready';
    }
    return edges;
  }

  /** Stops within about 300 ms: a round under way is given that long, then its prober closes under it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 300))]);
    await this.prober.close().catch(() => {});
  }
}
