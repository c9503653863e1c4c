/**
 * The observer process on one server: loads the cross-layer latency probe, turns its events into
 * per-packet records, publishes them to Redis (spooling while Redis is away), serves Prometheus
 * metrics, and sends a heartbeat every interval so the manager sees that it runs and what it
 * counted. stop() detaches every hook and sends what is left.
 */
import type { Server } from 'node:http';
import { daemonLogger } from '../lib/log.js';
import { enableBpfStats, forEachRecord, inNetns, netnsInode, type RingPoll } from '../native/addon.js';
import { sweepLeftovers } from '../native/leftovers.js';
import { HIST_FORMAT, encodeHistograms } from '../protocol/histograms.js';
import { HEARTBEAT_STREAM, HISTOGRAM_STREAM, toFields, type Heartbeat, type HistogramSnapshot } from '../protocol/redis.js';
import type { PacketRecord } from '../protocol/records.js';
import { decodeEvent, EVENT_BYTES, LatencyProbe } from './probe.js';
import { RecordAssembler } from './records.js';
import { RecordPublisher, type ObserverRedis } from './publisher.js';
import { observerRegistry, serveMetrics } from './metrics.js';
import type { SamplingInfo } from '../conf/schema.js';
import { OBSERVER_ASSEMBLY, OBSERVER_LIMITS, OBSERVER_PUBLISHING, type Drops, type ObserverLimits } from './limits.js';
import { HostJitter } from './host-jitter.js';
import type { HostModuleName } from '../protocol/host.js';

const log = daemonLogger('observer');

export { OBSERVER_HEAP_MB, OBSERVER_LIMITS, type Drops, type ObserverLimits } from './limits.js';

export interface ObserverOptions {
  /** This server's name (connect_info hostname). */
  node: string;
  /** The Redis to publish to; `tls` (conf/tls.ts TlsFiles) when redis_info.yaml has a tls block. */
  redis: ObserverRedis;
  sampling: SamplingInfo;
  /** Interfaces for the receive-side IP hook. */
  interfaces: string[];
  /** Watch only this host's network namespace (true) or every namespace (false: a host with containers or VMs). */
  ownNetnsOnly: boolean;
  /** The record stream (default latscope:records; tests use their own). */
  stream?: string;
  /** Record streams the records are sharded into (redis_info.yaml record_shards). */
  recordShards?: number;
  /** Observe the named network namespace (/run/netns/NAME) instead of this process's own. */
  netns?: string;
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
  /** Milliseconds between snapshots of the layer histograms to Redis (0: only at stop). */
  histogramMs?: number;
  /** Milliseconds between ring-buffer drains. */
  drainMs: number;
  spoolDir: string;
  /** Bounds on what this process holds and does (defaults: OBSERVER_LIMITS). */
  limits?: Partial<ObserverLimits>;
  /** Prometheus endpoint; port 0: none. */
  metrics: { host: string; port: number };
  /** Count run time of each BPF program (bpf_stats: a small cost on every hook). */
  bpfStats: boolean;
  /** Host-jitter modules to run (function_info.yaml jitter); their figures go with the histogram snapshots. */
  jitter?: HostModuleName[];
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
  /** Times the metrics endpoint could not bind (logged; the observer runs on). */
  private metricsBindFailures = 0;
  private stopStats?: () => void;
  private drain?: RingPoll;
  private heartbeatTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  private histogramTimer?: NodeJS.Timeout;
  private seq = 0;
  private undecodable = 0;
  private host?: HostJitter;
  /** Counts of what others running beside it lost, by Drops key (the probe mesh's unsent rounds). */
  private readonly dropSources: { mesh_rounds?: () => number } = {};
  private unreadAtStop = 0;
  readonly limits: ObserverLimits;
  private finalProbeCounters?: ReturnType<LatencyProbe['counters']>;

  constructor(private readonly o: ObserverOptions) {
    this.limits = { ...OBSERVER_LIMITS, ...o.limits };
  }

  /** Loads and attaches the probe and connects to Redis; throws a clear error if it cannot, leaving nothing attached. */
  async start(): Promise<void> {
    const o = this.o;
    // A killed predecessor may have left netlink attachments behind: remove them first.
    for (const what of sweepLeftovers()) log.warn({ node: o.node, what }, 'removed a leftover of an earlier observer');
    try {
      this.publisher = new RecordPublisher({
        node: o.node, redis: o.redis, stream: o.stream, shards: o.recordShards, ...OBSERVER_PUBLISHING, maxMemoryBytes: this.limits.memoryBytes,
        spoolDir: o.spoolDir, maxSpoolBytes: this.limits.spoolBytes, maxStreamEntries: this.limits.streamEntries,
      });
      await this.publisher.connect();
      if (o.bpfStats) this.stopStats = enableBpfStats();
      const open = () =>
        LatencyProbe.open({
          ...LatencyProbe.optionsOf(o.sampling),
          interfaces: o.interfaces,
          netnsIno: o.ownNetnsOnly ? netnsInode(o.netns) : 0,
        });
      this.probe = o.netns ? inNetns(o.netns, open) : open();
      this.assembler = new RecordAssembler({ node: o.node, sampleSize: o.sampling.size, lingerMs: OBSERVER_ASSEMBLY.lingerMs, timeoutMs: OBSERVER_ASSEMBLY.timeoutMs, maxSamplesPerEvent: OBSERVER_ASSEMBLY.maxSamplesPerEvent, maxPending: this.limits.pendingRecords }, (r) => {
        if (o.testClock) {
          for (const s of Object.values(r.layers)) s.tsNs = onTestClock(s.tsNs, o.testClock);
          for (const d of r.devices) d.tsNs = onTestClock(d.tsNs, o.testClock);
        }
        this.publisher!.push(r);
        o.onRecord?.(r);
      });
      this.drain = this.probe.ring.poll(o.drainMs, (batch, _records, used) => this.onBatch(batch, used), { budgetMs: o.drainMs * this.limits.cpuShare });
      if (o.metrics.port) {
        try {
          const p = this.probe, a = this.assembler, pub = this.publisher;
          this.metricsServer = await serveMetrics(
            observerRegistry({ node: o.node, probe: p, assembler: () => a.state(), drops: () => this.drops(), host: o.jitter?.length ? () => this.host?.snapshot() : undefined, publisher: () => ({ ...pub.counters, backlogMemory: pub.backlog.memory, backlogDiskBytes: pub.backlog.diskBytes, holding: pub.backlog.heldBack }) }),
            o.metrics.host, o.metrics.port,
          );
        } catch (e) {
          // the endpoint is a convenience: a port in use must not cost the records
          this.metricsBindFailures++;
          log.warn({ node: o.node, err: (e as Error).message }, 'the metrics endpoint is not available; the observer runs on without it');
        }
      }
      if (o.jitter?.length) this.host = new HostJitter(o.node, o.jitter, this.publisher, log);
      await this.beat('running');
    } catch (e) {
      this.teardown();
      await this.publisher?.close(0);
      throw e;
    }
    this.heartbeatTimer = setInterval(() => void this.beat('running').catch(() => {}), o.heartbeatMs);
    // finished records go out on a timer, not per drained batch: a flush looks at every waiting record
    this.flushTimer = setInterval(() => this.assembler!.flush(Date.now()), OBSERVER_ASSEMBLY.flushMs);
    if (o.histogramMs) this.histogramTimer = setInterval(() => void Promise.all([this.snapshotHistograms(), this.host?.publish()]).catch(() => {}), o.histogramMs);
  }

  private onBatch(batch: Buffer, used: number): void {
    const now = Date.now();
    forEachRecord(batch, used, (off, len) => {
      if (len >= EVENT_BYTES) this.assembler!.add(decodeEvent(batch, off), now);
      else this.undecodable++;
    });
  }

  heartbeat(state: Heartbeat['state']): Heartbeat {
    const c = this.probe!.counters();
    const a = this.assembler!.counters;
    const p = this.publisher!.counters;
    return {
      node: this.o.node, seq: ++this.seq, pid: process.pid, state,
      records: a.records, published: p.published, backlog: this.publisher!.backlog.memory,
      dropped: Object.values(this.drops()).reduce((x, y) => x + y, 0),
      drops: JSON.stringify(this.drops()),
      retransTx: Number(c.retransTx), retransRx: Number(c.retransRx),
      metrics: this.o.metrics.port ? (this.metricsServer ? `${this.o.metrics.host}:${this.o.metrics.port}` : 'unavailable') : 'off',
    };
  }

  drops(): Drops {
    const c = this.finalProbeCounters ?? this.probe!.counters();
    return { ring: Number(c.ringFull), flow_table: Number(c.flowFull), capped: this.assembler!.counters.samplesCapped, undecodable: this.undecodable, spool: this.publisher!.counters.overflow, stop: this.unreadAtStop, host_events: this.host?.dropped ?? 0, mesh_rounds: this.dropSources.mesh_rounds?.() ?? 0 };
  }

  get counters() {
    return {
      probe: this.finalProbeCounters ?? this.probe!.counters(), assembler: this.assembler!.state(), ringUnreadBytes: this.finalProbeCounters ? 0 : this.probe!.ring.pending(), publisher: { ...this.publisher!.counters },
      backlog: this.publisher!.backlog, drops: this.drops(), drainOverBudget: this.drain?.overBudget ?? 0, metricsBindFailures: this.metricsBindFailures,
    };
  }

  /**
   * An entry on a capped stream beside the records (signed like them with observer users), for
   * what runs beside the observer (the probe mesh); false while Redis is away (not spooled).
   */
  async sendCapped(stream: string, maxLen: number, fields: string[]): Promise<{ sent: boolean; error?: string }> {
    const sent = await this.publisher!.sendCapped(stream, maxLen, fields);
    return sent ? { sent } : { sent, error: this.publisher!.error };
  }

  /** Counts what runs beside the observer as its own drops (heartbeats, latscope_dropped_total). */
  countDrops(key: 'mesh_rounds', count: () => number): void {
    this.dropSources[key] = count;
  }

  /** Where the metrics endpoint serves, or undefined (off, or it could not bind). */
  get metricsEndpoint(): string | undefined {
    return this.metricsServer ? `http://${this.o.metrics.host}:${this.o.metrics.port}/metrics` : undefined;
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
    const rows = encodeHistograms(await this.probe!.histograms());
    // cumulative: a lost snapshot loses nothing, the next one has it all
    if (rows) await this.publisher!.heartbeat(HISTOGRAM_STREAM, toFields({ node: this.o.node, at: Date.now(), format: HIST_FORMAT, rows } satisfies HistogramSnapshot));
  }

  private teardown(): void {
    this.host?.close();
    this.drain?.stop();
    this.probe?.close();
    this.stopStats?.();
    this.metricsServer?.close();
  }

  /**
   * Detaches every hook at once, turns what is still in the ring (bounded by its size) into
   * records, sends for at most limits.stopMs and spools the rest to disk for the next start.
   * Returns how long it took and how many records were spooled.
   */
  async stop(): Promise<{ ms: number; spooled: number }> {
    const t0 = Date.now();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.histogramTimer) clearInterval(this.histogramTimer);
    let spooled = 0;
    try {
      // hooks off first, then the last events out of the ring
      this.probe!.detachAll();
      // the ring can hold millions of records' worth of events: half the stop time for them, the rest counted
      this.unreadAtStop += this.drain?.stop(this.limits.stopMs / 2) ?? 0;
      this.assembler!.flush(Date.now(), true);
      this.finalProbeCounters = this.probe!.counters();
      const budget = Math.max(0, this.limits.stopMs - (Date.now() - t0));
      const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<void>((r) => setTimeout(r, ms))]);
      await within(this.publisher!.send(true), budget / 2); // the last heartbeat then counts them as published
      await within(Promise.all([this.snapshotHistograms(), this.host?.publish()]).catch(() => {}), budget / 4);
      await within(this.beat('stopped').catch(() => {}), budget / 4);
    } finally {
      this.teardown();
      // the last tenth (at most 500 ms) of the stop is for writing what is left to the disk spool
      const reserve = Math.min(500, this.limits.stopMs / 10);
      spooled = (await this.publisher?.close(Math.max(0, this.limits.stopMs - reserve - (Date.now() - t0)))) ?? 0;
    }
    return { ms: Date.now() - t0, spooled };
  }
}
