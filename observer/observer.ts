/**
 * The observer process on one server: loads the cross-layer latency probe, turns its events into
 * per-packet records, publishes them to Redis (spooling while Redis is away), serves Prometheus
 * metrics, and sends a heartbeat every interval so the manager sees that it runs and what it
 * counted. stop() detaches every hook and sends what is left.
 */
import type { Server } from 'node:http';
import { enableBpfStats, forEachRecord, inNetns, netnsInode } from '../native/addon.js';
import { sweepLeftovers } from '../native/leftovers.js';
import { HIST_FORMAT, encodeHistograms } from '../protocol/histograms.js';
import { HEARTBEAT_STREAM, HISTOGRAM_STREAM, toFields, type Heartbeat, type HistogramSnapshot } from '../protocol/redis.js';
import type { PacketRecord } from '../protocol/records.js';
import { decodeEvent, EVENT_BYTES, LatencyProbe } from './probe.js';
import { RecordAssembler } from './records.js';
import { RecordPublisher } from './publisher.js';
import { observerRegistry, serveMetrics } from './metrics.js';
import type { SamplingInfo } from '../conf/schema.js';

export interface ObserverOptions {
  /** This server's name (connect_info hostname). */
  node: string;
  redis: { host: string; port: number; password?: string };
  sampling: SamplingInfo;
  /** Interfaces for the receive-side IP hook. */
  interfaces: string[];
  /** Watch only this host's network namespace (true) or every namespace (false: a host with containers or VMs). */
  ownNetnsOnly: boolean;
  /** Observe the named network namespace (/run/netns/NAME) instead of this process's own. */
  netns?: string;
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
  /** Milliseconds between snapshots of the layer histograms to Redis (0: only at stop). */
  histogramMs?: number;
  /** Milliseconds between ring-buffer drains. */
  drainMs: number;
  spoolDir: string;
  maxMemoryRecords: number;
  maxSpoolBytes: number;
  /** Prometheus endpoint; port 0: none. */
  metrics: { host: string; port: number };
  /** Count run time of each BPF program (bpf_stats: a small cost on every hook). */
  bpfStats: boolean;
  /** Called with every record (tests, the library API). */
  onRecord?: (r: PacketRecord) => void;
  /**
   * Tests only: a synthetic clock error on every timestamp this observer reports,
   * t + offsetNs + (t − epochNs)·driftPpb/1e9, as the time-sync responder's test clock does, so
   * the analyzer's clock correction can be checked against a known truth on one machine.
   */
  testClock?: { offsetNs: bigint; driftPpb: bigint; epochNs: bigint };
}

/** t on a test clock: t + offset + (t − epoch)·drift/1e9. */
export const onTestClock = (t: bigint, c: { offsetNs: bigint; driftPpb: bigint; epochNs: bigint }): bigint => t + c.offsetNs + ((t - c.epochNs) * c.driftPpb) / 1_000_000_000n;


export class Observer {
  private probe?: LatencyProbe;
  private publisher?: RecordPublisher;
  private assembler?: RecordAssembler;
  private metricsServer?: Server;
  private stopStats?: () => void;
  private drain?: { stop(): void };
  private heartbeatTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  private histogramTimer?: NodeJS.Timeout;
  private seq = 0;
  private finalProbeCounters?: ReturnType<LatencyProbe['counters']>;

  constructor(private readonly o: ObserverOptions) {}

  /** Loads and attaches the probe and connects to Redis; throws a clear error if it cannot, leaving nothing attached. */
  async start(): Promise<void> {
    const o = this.o;
    // A killed predecessor may have left netlink attachments behind: remove them first.
    for (const what of sweepLeftovers()) console.error(`observer ${o.node}: removed leftover ${what}`);
    try {
      this.publisher = new RecordPublisher({
        node: o.node, redis: o.redis, batchRecords: 256, pipelineEntries: 64, maxMemoryRecords: o.maxMemoryRecords,
        spoolDir: o.spoolDir, maxSpoolBytes: o.maxSpoolBytes, flushMs: 100,
      });
      await this.publisher.connect();
      if (o.bpfStats) this.stopStats = enableBpfStats();
      const open = () =>
        LatencyProbe.open({
          ports: o.sampling.ports,
          sampleSize: o.sampling.size,
          intervalNs: BigInt(Math.round(o.sampling.interval * 1e9)),
          filterRetrans: o.sampling.filter_retrans,
          interfaces: o.interfaces,
          netnsIno: o.ownNetnsOnly ? netnsInode(o.netns) : 0,
        });
      this.probe = o.netns ? inNetns(o.netns, open) : open();
      this.assembler = new RecordAssembler({ node: o.node, sampleSize: o.sampling.size, lingerMs: 30, timeoutMs: 2000, maxSamplesPerEvent: 1024 }, (r) => {
        if (o.testClock) {
          for (const s of Object.values(r.layers)) s.tsNs = onTestClock(s.tsNs, o.testClock);
          for (const d of r.devices) d.tsNs = onTestClock(d.tsNs, o.testClock);
        }
        this.publisher!.push(r);
        o.onRecord?.(r);
      });
      this.drain = this.probe.ring.poll(o.drainMs, (batch, _records, used) => this.onBatch(batch, used));
      if (o.metrics.port) {
        const p = this.probe, a = this.assembler, pub = this.publisher;
        this.metricsServer = await serveMetrics(
          observerRegistry({ node: o.node, probe: p, assembler: () => a.counters, publisher: () => ({ ...pub.counters, backlogMemory: pub.backlog.memory, backlogDiskBytes: pub.backlog.diskBytes }) }),
          o.metrics.host, o.metrics.port,
        );
      }
      await this.beat('running');
    } catch (e) {
      this.teardown();
      await this.publisher?.close(0);
      throw e;
    }
    this.heartbeatTimer = setInterval(() => void this.beat('running').catch(() => {}), o.heartbeatMs);
    // Records also go out when traffic stops: the drain only flushes when events arrive.
    this.flushTimer = setInterval(() => this.assembler!.flush(Date.now()), 100);
    if (o.histogramMs) this.histogramTimer = setInterval(() => void this.snapshotHistograms().catch(() => {}), o.histogramMs);
  }

  private onBatch(batch: Buffer, used: number): void {
    const now = Date.now();
    forEachRecord(batch, used, (off, len) => {
      if (len >= EVENT_BYTES) this.assembler!.add(decodeEvent(batch, off), now);
    });
    this.assembler!.flush(now);
  }

  heartbeat(state: Heartbeat['state']): Heartbeat {
    const c = this.probe!.counters();
    const a = this.assembler!.counters;
    const p = this.publisher!.counters;
    return {
      node: this.o.node, seq: ++this.seq, pid: process.pid, state,
      records: a.records, published: p.published, backlog: this.publisher!.backlog.memory,
      dropped: Number(c.ringFull + c.flowFull) + p.overflow + a.samplesCapped,
      retransTx: Number(c.retransTx), retransRx: Number(c.retransRx),
    };
  }

  get counters() {
    return { probe: this.finalProbeCounters ?? this.probe!.counters(), assembler: { ...this.assembler!.counters }, publisher: { ...this.publisher!.counters }, backlog: this.publisher!.backlog };
  }

  get latencyProbe(): LatencyProbe {
    return this.probe!;
  }

  private async beat(state: Heartbeat['state']): Promise<void> {
    const hb = this.heartbeat(state);
    // Through the publisher's connection: a heartbeat never waits for a Redis that is away.
    await this.publisher!.heartbeat(HEARTBEAT_STREAM, toFields({ ...hb }));
  }

  /** Sends the histograms as they are now (skipped while Redis is away). */
  private async snapshotHistograms(): Promise<void> {
    const rows = encodeHistograms(this.probe!.histograms());
    // cumulative: a lost snapshot loses nothing, the next one has it all
    if (rows) await this.publisher!.heartbeat(HISTOGRAM_STREAM, toFields({ node: this.o.node, at: Date.now(), format: HIST_FORMAT, rows } satisfies HistogramSnapshot));
  }

  private teardown(): void {
    this.drain?.stop();
    this.probe?.close();
    this.stopStats?.();
    this.metricsServer?.close();
  }

  /** Detaches every hook, sends the records still in the ring and in memory, a last heartbeat, and disconnects. */
  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.histogramTimer) clearInterval(this.histogramTimer);
    try {
      this.drain?.stop();
      // Hooks off first, then the last events out of the ring.
      const ring = this.probe!.ring;
      const buf = Buffer.alloc(1 << 20);
      this.probe!.detachAll();
      for (;;) {
        const [n, used] = ring.drainInto(buf);
        if (!n) break;
        this.onBatch(buf, used);
      }
      this.assembler!.flush(Date.now(), true);
      await this.publisher!.send(true);
      await this.snapshotHistograms().catch(() => {});
      await this.beat('stopped').catch(() => {});
      this.finalProbeCounters = this.probe!.counters();
    } finally {
      this.teardown();
      await this.publisher?.close();
    }
  }
}
