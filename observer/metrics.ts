/**
 * The observer's Prometheus endpoint (prom-client): the in-kernel layer histograms, every
 * record and drop counter, and each BPF program's run count and run time. Values are read when
 * scraped, so the kernel maps are the single source.
 */
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { PAIRS } from '../protocol/layers.js';
import type { LatencyProbe } from './probe.js';
import type { AssemblerState } from './records.js';
import type { PublisherCounters } from './publisher.js';
import type { Drops } from './limits.js';
import { registerHostMetrics } from '../host/metrics.js';
import type { HostSnapshot } from '../host/session.js';

type Value = { value: number; labels?: Record<string, string | number>; metricName?: string };

/** A metric computed at scrape time (its values may take turns of the event loop to read). */
function metric(registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[] | Promise<Value[]>): void {
  registry.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: await values(), aggregator: 'sum' }) } as never);
}

export interface MetricSources {
  node: string;
  probe: LatencyProbe;
  assembler: () => AssemblerState;
  publisher: () => PublisherCounters & { backlogMemory: number; backlogDiskBytes: number; holding: boolean };
  drops: () => Drops;
  /** The host-jitter modules, when the observer runs them. */
  host?: () => HostSnapshot | undefined;
}

export function observerRegistry(s: MetricSources): Registry {
  const r = new Registry();
  r.setDefaultLabels({ node: s.node });
  metric(r, 'latscope_layer_delay_seconds', 'Delay between adjacent layers of every matched TCP segment (in-kernel log2 histogram; _sum estimated from bucket midpoints)', 'histogram', async () =>
    (await s.probe.histograms()).flatMap((h) => {
      const labels = { port: h.port, dir: h.dir, from: h.from, to: h.to };
      let cum = 0;
      let sum = 0;
      const out: Value[] = h.buckets.map((c, b) => {
        cum += Number(c);
        sum += Number(c) * (b === 0 ? 1 : 1.5 * 2 ** b) * 1e-9;
        return { metricName: 'latscope_layer_delay_seconds_bucket', labels: { ...labels, le: (2 ** (b + 1) * 1e-9).toPrecision(6) }, value: cum };
      });
      out.push({ metricName: 'latscope_layer_delay_seconds_bucket', labels: { ...labels, le: '+Inf' }, value: cum });
      out.push({ metricName: 'latscope_layer_delay_seconds_sum', labels, value: sum });
      out.push({ metricName: 'latscope_layer_delay_seconds_count', labels, value: cum });
      return out;
    }),
  );
  const pairLabels = (i: number) => ({ dir: PAIRS[i]!.dir, from: PAIRS[i]!.from, to: PAIRS[i]!.to });
  metric(r, 'latscope_segments_matched_total', 'Segments joined to their previous-layer event', 'counter', () => s.probe.counters().matched.map((v, i) => ({ value: Number(v), labels: pairLabels(i) })));
  metric(r, 'latscope_segments_unmatched_total', 'Segments whose previous-layer event was not found', 'counter', () => s.probe.counters().unmatched.map((v, i) => ({ value: Number(v), labels: pairLabels(i) })));
  metric(r, 'latscope_segments_excluded_total', 'Retransmitted segments kept out of the histograms (filter_retrans)', 'counter', () => s.probe.counters().excluded.map((v, i) => ({ value: Number(v), labels: pairLabels(i) })));
  metric(r, 'latscope_retransmissions_total', 'Retransmitted segments (tx: at the IP layer; rx: behind the highest byte seen)', 'counter', () => {
    const c = s.probe.counters();
    return [{ value: Number(c.retransTx), labels: { dir: 'tx' } }, { value: Number(c.retransRx), labels: { dir: 'rx' } }];
  });
  metric(r, 'latscope_events_total', 'Sample events the kernel wrote to the ring buffer', 'counter', () => [{ value: Number(s.probe.counters().events) }]);
  metric(r, 'latscope_dropped_total', 'Things lost, by where: ring (ring buffer full: events), flow_table (flow states dropped for new flows: their set of the flow table was full), capped (sample bytes beyond the per-event limit), undecodable (ring records too short), spool (memory and disk spool full: records), stop (events left in the ring at stop), host_events (host outliers beyond those kept while Redis was away), mesh_rounds (mesh rounds that could not be sent), unparsed (IP packets whose headers could not be read, any port)', 'counter', () => [
    ...Object.entries(s.drops()).map(([where, value]) => ({ value, labels: { where } })),
    { value: Number(s.probe.counters().unparsed), labels: { where: 'unparsed' } },
  ]);
  metric(r, 'latscope_ring_unread_bytes', 'Events in the ring buffer not read yet (the reader behind its CPU budget; a full ring drops, counted as ring)', 'gauge', () => [{ value: s.probe.ring.pending() }]);
  metric(r, 'latscope_flows_total', 'Flow states created', 'counter', () => [{ value: Number(s.probe.counters().flows) }]);
  metric(r, 'latscope_records_total', 'Per-packet records assembled', 'counter', () => [{ value: s.assembler().records }]);
  metric(r, 'latscope_records_assembling', 'Records waiting for their layers or their reader (sent when complete and quiet, or timed out)', 'gauge', () => [{ value: s.assembler().assembling }]);
  metric(r, 'latscope_records_incomplete_total', 'Records sent without every layer (timed out)', 'counter', () => [{ value: s.assembler().incomplete }]);
  metric(r, 'latscope_records_published_total', 'Records written to Redis', 'counter', () => [{ value: s.publisher().published }]);
  metric(r, 'latscope_records_spooled_total', 'Records that waited in the disk spool while Redis was away', 'counter', () => [{ value: s.publisher().spooledToDisk }]);
  metric(r, 'latscope_redis_errors_total', 'Failed sends to Redis (records stay spooled)', 'counter', () => [{ value: s.publisher().redisErrors }]);
  metric(r, 'latscope_records_evicted_total', 'Records sent before their time because too many were waiting for their layers', 'counter', () => [{ value: s.assembler().evicted }]);
  metric(r, 'latscope_redis_full_total', 'Sends Redis refused for memory (maxmemory): the records stayed spooled', 'counter', () => [{ value: s.publisher().redisFull }]);
  metric(r, 'latscope_redis_held_back_total', 'Send rounds held back because the record stream was at max_stream_entries (the ingest is behind)', 'counter', () => [{ value: s.publisher().heldBack }]);
  metric(r, 'latscope_redis_held_back', '1 while the record stream is at max_stream_entries and this observer spools instead', 'gauge', () => [{ value: s.publisher().holding ? 1 : 0 }]);
  metric(r, 'latscope_spool_corrupt_lines_total', 'Disk spool lines that did not parse (cut short by a crash or a full disk): skipped', 'counter', () => [{ value: s.publisher().spoolCorrupt }]);
  metric(r, 'latscope_backlog_records', 'Records waiting in memory for Redis', 'gauge', () => [{ value: s.publisher().backlogMemory }]);
  metric(r, 'latscope_backlog_disk_bytes', 'Bytes waiting in the disk spool for Redis', 'gauge', () => [{ value: s.publisher().backlogDiskBytes }]);
  if (s.host) registerHostMetrics(r, s.host);
  metric(r, 'latscope_bpf_program_runs_total', 'Runs of each BPF program (bpf_stats; 0 unless enabled)', 'counter', () => s.probe.programStats().map((p) => ({ value: Number(p.runCount), labels: { program: p.name } })));
  metric(r, 'latscope_bpf_program_run_seconds_total', 'Time spent in each BPF program (bpf_stats)', 'counter', () => s.probe.programStats().map((p) => ({ value: Number(p.runTimeNs) * 1e-9, labels: { program: p.name } })));
  return r;
}

/** Serves the registry at http://HOST:PORT/metrics. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(`${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`metrics endpoint on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another with --metrics-port (function_info.yaml metrics.port)' : e.message}`)));
    server.listen(port, host, resolve);
  });
  return server;
}
