/**
 * Turns layer events into per-packet records: one record per sample byte, per direction, per
 * transmission, with the time it passed each layer on this host. The kernel reports each layer
 * crossing of a range that holds a sample byte; here the sample bytes in each range are
 * enumerated and their layers joined. A record is complete when it has every layer its
 * direction passes (a retransmission skips the sender's socket layer), and goes out
 * once nothing arrived for it during `lingerMs` (more device hops may follow), or, incomplete,
 * after `timeoutMs`.
 */
import { F_DEV_RX, F_HOP, F_INTERVAL, F_RETRANS, type LayerEvent } from './probe.js';
import { sampleOffsets, seqDiff } from './sampling.js';
import type { Direction, Layer } from '../protocol/layers.js';
import type { Flow, PacketRecord } from '../protocol/records.js';

export type { PacketRecord } from '../protocol/records.js';

export interface AssemblerOptions {
  node: string;
  /** Bytes between samples, as set in the kernel (0: size rule off). */
  sampleSize: number;
  lingerMs: number;
  timeoutMs: number;
  /** Most sample bytes taken from one event (a 1 MiB write at size 1 would hold a million). */
  maxSamplesPerEvent: number;
  /** Most records waiting for their layers; beyond it the oldest goes out as it is (bounds memory). */
  maxPending: number;
}

export interface AssemblerCounters {
  events: number;
  records: number;
  incomplete: number;
  /** Sample bytes beyond maxSamplesPerEvent in one event: counted, not recorded. */
  samplesCapped: number;
  /** Records sent out before their time because maxPending records were waiting (they may miss layers). */
  evicted: number;
}

/** The counters with the records still being assembled (waiting for layers or for their reader): a gauge. */
export type AssemblerState = AssemblerCounters & { assembling: number };

interface Pending {
  rec: PacketRecord;
  lastMs: number;
  firstMs: number;
}

const REQUIRED: Record<Direction, Layer[]> = { tx: ['sock', 'tcp', 'ip', 'dev'], rx: ['dev', 'ip', 'tcp', 'sock'] };
const REQUIRED_RETRANS: Record<Direction, Layer[]> = { tx: ['tcp', 'ip', 'dev'], rx: ['dev', 'ip', 'tcp', 'sock'] };

export const flowKey = (f: Flow): string => `${f.src}|${f.sport}|${f.dst}|${f.dport}`;

export class RecordAssembler {
  private readonly pending = new Map<string, Pending>();
  /** Received copies TCP took, waiting for the reader while a later copy of their bytes is pending. */
  private readonly awaitingReader = new Map<string, Pending>();
  private seq = Date.now() * 1000;
  readonly counters: AssemblerCounters = { events: 0, records: 0, incomplete: 0, samplesCapped: 0, evicted: 0 };

  constructor(
    private readonly o: AssemblerOptions,
    private readonly out: (r: PacketRecord) => void,
  ) {}

  add(e: LayerEvent, nowMs: number): void {
    this.counters.events++;
    const start = seqDiff(e.startSeq, e.baseSeq);
    const length = seqDiff(e.endSeq, e.startSeq);
    const offsets = sampleOffsets(start, length, this.o.sampleSize, this.o.maxSamplesPerEvent);
    if (this.o.sampleSize > 0) {
      const all = Math.floor((start + length) / this.o.sampleSize) - Math.floor(start / this.o.sampleSize);
      this.counters.samplesCapped += Math.max(0, all - offsets.length);
    }
    const interval = e.flags & F_INTERVAL ? seqDiff(e.isampleSeq, e.baseSeq) : -1;
    if (interval >= 0 && seqDiff(e.isampleSeq, e.startSeq) < length && !offsets.includes(interval)) offsets.push(interval);
    for (const off of offsets) this.place(e, off, off === interval, nowMs);
  }

  private place(e: LayerEvent, offset: number, interval: boolean, nowMs: number): void {
    const key = `${e.dir}|${flowKey(e.flow)}|${offset}`;
    let p = this.pending.get(key);
    const retrans = (e.flags & F_RETRANS) !== 0;
    // The same bytes again at a layer this record already has: a new transmission.
    const again = p && retrans && (e.layer === 'dev' ? !(e.flags & F_HOP) && p.rec.layers.dev !== undefined : p.rec.layers[e.layer] !== undefined);
    if (p && again) {
      // A copy received while an earlier one that TCP took still waits for the reader: TCP drops
      // the new one, and the reader's event will belong to the earlier (held aside until then).
      if (e.dir === 'rx' && p.rec.layers.tcp && !p.rec.layers.sock) this.holdForReader(key, p);
      else this.finish(key, p);
      p = this.start(key, e, offset, interval, nowMs, p.rec.attempt + 1);
    }
    const held = e.layer === 'sock' && e.dir === 'rx' ? this.awaitingReader.get(key) : undefined;
    if (held) p = held;
    if (!p) p = this.start(key, e, offset, interval, nowMs, retrans ? 1 : 0);
    const r = p.rec;
    r.retrans ||= retrans && !held;
    r.interval ||= interval;
    p.lastMs = nowMs;
    const stamp = { tsNs: e.tsNs, cpu: e.cpu, tid: e.tid };
    if (e.layer === 'dev') {
      r.devices.push({ ifindex: e.ifindex, netns: e.netns, rx: (e.flags & F_DEV_RX) !== 0, tsNs: e.tsNs });
      if (!r.layers.dev) {
        r.layers.dev = stamp;
        r.segStart = e.startSeq;
        r.segEnd = e.endSeq;
      }
      return;
    }
    if (r.layers[e.layer]) return; // a second copy of bytes already taken (partial read): keep the first
    r.layers[e.layer] = stamp;
    // TCP's departure time of a sent segment travels with its IP event
    if (e.layer === 'ip' && e.dir === 'tx' && e.tcpNs > 0n && !r.layers.tcp) r.layers.tcp = { tsNs: e.tcpNs, cpu: e.cpu, tid: e.tid };
  }

  private holdForReader(key: string, p: Pending): void {
    const older = this.awaitingReader.get(key);
    if (older) this.finish(key, older, this.awaitingReader);
    this.awaitingReader.set(key, p);
    this.pending.delete(key);
  }

  private start(key: string, e: LayerEvent, offset: number, interval: boolean, nowMs: number, attempt: number): Pending {
    const rec: PacketRecord = {
      node: this.o.node,
      observerSeq: 0,
      dir: e.dir,
      flow: e.flow,
      sampleSeq: (e.baseSeq + offset) >>> 0,
      streamOffset: offset,
      segStart: e.startSeq,
      segEnd: e.endSeq,
      attempt,
      retrans: attempt > 0,
      interval,
      complete: false,
      layers: {},
      devices: [],
    };
    if (this.pendingCount >= this.o.maxPending) {
      // a Map iterates in insertion order: the first is the oldest
      const from = this.awaitingReader.size > 0 ? this.awaitingReader : this.pending;
      const [oldKey, old] = from.entries().next().value as [string, Pending];
      this.counters.evicted++;
      this.finish(oldKey, old, from);
    }
    const p = { rec, lastMs: nowMs, firstMs: nowMs };
    this.pending.set(key, p);
    return p;
  }

  private isComplete(r: PacketRecord): boolean {
    const need = r.retrans && r.dir === 'tx' && !r.layers.sock ? REQUIRED_RETRANS.tx : REQUIRED[r.dir];
    return need.every((l) => r.layers[l] !== undefined);
  }

  private finish(key: string, p: Pending, from = this.pending): void {
    from.delete(key);
    const r = p.rec;
    r.complete = this.isComplete(r);
    // microseconds of wall time, or one more than the last: unique and increasing, and a range of them is a span of time (retention drops whole partitions by it)
    this.seq = Math.max(this.seq + 1, Date.now() * 1000);
    r.observerSeq = this.seq;
    this.counters.records++;
    if (!r.complete) this.counters.incomplete++;
    this.out(r);
  }

  /** Sends out records that are complete and quiet for lingerMs, or older than timeoutMs. */
  flush(nowMs: number, all = false): void {
    for (const from of [this.awaitingReader, this.pending]) {
      for (const [key, p] of from) {
        if (all || nowMs - p.firstMs >= this.o.timeoutMs || (nowMs - p.lastMs >= this.o.lingerMs && this.isComplete(p.rec))) this.finish(key, p, from);
      }
    }
  }

  get pendingCount(): number {
    return this.pending.size + this.awaitingReader.size;
  }

  state(): AssemblerState {
    return { ...this.counters, assembling: this.pendingCount };
  }
}
