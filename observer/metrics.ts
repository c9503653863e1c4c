/**
 * The observer's Prometheus endpoint (prom-client): the in-kernel layer histograms, every
 * record and drop counter, and each BPF program's run count and run time. Values are read when
 * scraped, so the kernel maps are the single source.
 */
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { PAIRS } from '../protocol/layers.js';
import type { LatencyProbe } from './probe.js';
import type { AssemblerCounters } from './records.js';
import type { PublisherCounters } from './publisher.js';

type Value = { value: number; labels?: Record<string, string | number>; metricName?: string };

/** A metric computed at scrape time. */
function metric(registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[]): void {
  registry.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }) } as never);
}

export interface MetricSources {
  node: string;
  probe: LatencyProbe;
  assembler: () => AssemblerCounters;
  publisher: () => PublisherCounters & { backlogMemory: number; backlogDiskBytes: number };
}

export function observerRegistry(s: MetricSources): Registry {
  const r = new Registry();
  r.setDefaultLabels({ node: s.node });
  metric(r, 'latscope_layer_delay_seconds', 'Delay between adjacent layers of every matched TCP segment (in-kernel log2 histogram; _sum estimated from bucket midpoints)', 'histogram', () =>
    s.probe.histograms().flatMap((h) => {
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
  metric(r, 'latscope_dropped_total', 'Things lost, by where: ring (ring buffer full), flow_table (no room for a flow), unparsed (IP packets whose headers could not be read, any port), spool (Redis away and spool full), capped (sample bytes beyond the per-event limit)', 'counter', () => {
    const c = s.probe.counters();
    return [
      { value: Number(c.ringFull), labels: { where: 'ring' } },
      { value: Number(c.flowFull), labels: { where: 'flow_table' } },
      { value: Number(c.unparsed), labels: { where: 'unparsed' } },
      { value: s.publisher().overflow, labels: { where: 'spool' } },
      { value: s.assembler().samplesCapped, labels: { where: 'capped' } },
    ];
  });
  metric(r, 'latscope_flows_total', 'Flow states created', 'counter', () => [{ value: Number(s.probe.counters().flows) }]);
  metric(r, 'latscope_records_total', 'Per-packet records assembled', 'counter', () => [{ value: s.assembler().records }]);
  metric(r, 'latscope_records_incomplete_total', 'Records sent without every layer (timed out)', 'counter', () => [{ value: s.assembler().incomplete }]);
  metric(r, 'latscope_records_published_total', 'Records written to Redis', 'counter', () => [{ value: s.publisher().published }]);
  metric(r, 'latscope_records_spooled_total', 'Records that waited in the disk spool while Redis was away', 'counter', () => [{ value: s.publisher().spooledToDisk }]);
  metric(r, 'latscope_redis_errors_total', 'Failed sends to Redis (records stay spooled)', 'counter', () => [{ value: s.publisher().redisErrors }]);
  metric(r, 'latscope_backlog_records', 'Records waiting in memory for Redis', 'gauge', () => [{ value: s.publisher().backlogMemory }]);
  metric(r, 'latscope_backlog_disk_bytes', 'Bytes waiting in the disk spool for Redis', 'gauge', () => [{ value: s.publisher().backlogDiskBytes }]);
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
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`metrics endpoint on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another with metrics_port' : e.message}`)));
    server.listen(port, host, resolve);
  });
  return server;
}
