/**
 * The manager's status endpoint (management_server_info.yaml `port`; 0: none): Prometheus
 * metrics of this manager process at http://ADDRESS:PORT/metrics. Names follow Prometheus'
 * conventions: a unit in the name (seconds, bytes), `_total` on counters, one meaning per name.
 * - this process: latscope_build_info, the standard process_* and nodejs_* metrics, BullMQ jobs
 *   completed and failed, worker errors, the ingest's and the stream stage's counters;
 * - the fleet: servers per provisioning state, the ingest lag (age of the oldest record waiting);
 * - the results (analyzer/gauges.ts, read from MySQL at most every 10 s): per pair the newest
 *   window's delay p50 and p99 and clock faults, per server its clock offset and bound, unmatched
 *   samples by reason over the last hour.
 * deploy/prometheus/latscope-rules.yml alerts on them; deploy/grafana/latscope.json shows them.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { JobCounters } from './queues.js';
import type { ServerStatus } from './state.js';
import type { IngestCounters } from '../ingest/ingest.js';
import type { StreamCounters } from '../analyzer/stream/stage.js';
import { resultGauges, type ResultGauges } from '../analyzer/gauges.js';
import type { Pool } from '../db/pool.js';
import { projectRoot } from '../lib/paths.js';

export interface ManagerMetricSources {
  jobs: () => JobCounters;
  ingest: () => IngestCounters | undefined;
  /** The stream stage's counters (analysis_info engine stream), when this process runs one. */
  stream?: () => StreamCounters | undefined;
  states: () => Promise<Map<string, ServerStatus>>;
  /** The results database, for the result gauges. */
  pool?: Pool;
  /** The Redis and the records streams whose oldest waiting entry is the ingest lag. */
  redis?: Redis;
  recordStreams?: string[];
}

type Value = { value: number; labels?: Record<string, string | number> };

function metric(r: Registry, name: string, help: string, type: 'counter' | 'gauge', values: () => Value[] | Promise<Value[]>): void {
  r.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: await values(), aggregator: 'sum' }) } as never);
}

/** One figure of a counters object this process may have (none: no series). */
const valuesOf =
  <C>(source: (() => C | undefined) | undefined) =>
  (pick: (c: C) => number) =>
  (): Value[] => {
    const c = source?.();
    return c ? [{ value: pick(c) }] : [];
  };

const byKey = (m: Record<string, number>, label: string): Value[] => Object.entries(m).map(([k, value]) => ({ value, labels: { [label]: k } }));

const VERSION = (() => {
  try {
    return String(JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
})();

/** The results, read at most every 10 s (a scrape every few seconds must not load MySQL). */
function cachedResults(pool: Pool): () => Promise<ResultGauges | undefined> {
  let at = 0;
  let last: Promise<ResultGauges | undefined> | undefined;
  return () => {
    if (!last || Date.now() - at > 10_000) {
      at = Date.now();
      last = resultGauges(pool).catch(() => undefined); // a database away: no result gauges this time
    }
    return last;
  };
}

export function managerRegistry(s: ManagerMetricSources): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  metric(r, 'latscope_build_info', 'Always 1: the running latscope version', 'gauge', () => [{ value: 1, labels: { version: VERSION } }]);
  metric(r, 'latscope_manager_jobs_completed_total', 'BullMQ jobs this process completed, by queue:job', 'counter', () => byKey(s.jobs().completed, 'job'));
  metric(r, 'latscope_manager_jobs_failed_total', 'BullMQ jobs that failed in this process (each attempt), by queue:job', 'counter', () => byKey(s.jobs().failed, 'job'));
  metric(r, 'latscope_manager_worker_errors_total', 'BullMQ worker errors (Redis outages), by queue', 'counter', () => byKey(s.jobs().errors, 'queue'));
  // the ingest: one counter per meaning
  const ingest = valuesOf(s.ingest);
  metric(r, 'latscope_ingest_entries_total', 'Stream entries the ingest handled (records, histograms, host figures)', 'counter', ingest((c) => c.entries));
  metric(r, 'latscope_ingest_rows_total', 'Record rows the ingest loaded into packets', 'counter', ingest((c) => c.rows));
  metric(r, 'latscope_ingest_histogram_rows_total', 'Histogram bucket rows loaded into layer_histograms', 'counter', ingest((c) => c.histogramRows));
  metric(r, 'latscope_ingest_host_rows_total', 'Host-jitter figures and outliers loaded', 'counter', ingest((c) => c.hostRows));
  metric(r, 'latscope_ingest_mesh_rows_total', 'Probe mesh edges loaded into mesh_edges', 'counter', ingest((c) => c.meshRows));
  metric(r, 'latscope_ingest_duplicate_rows_total', 'Rows that came again and were already loaded (redelivery)', 'counter', ingest((c) => c.duplicates));
  metric(r, 'latscope_ingest_db_errors_total', 'Database errors of the ingest (it retries)', 'counter', ingest((c) => c.dbErrors));
  metric(r, 'latscope_ingest_bad_entries_total', 'Entries that were not what an observer writes (set aside in latscope:records:bad)', 'counter', ingest((c) => c.badEntries));
  metric(r, 'latscope_ingest_forged_entries_total', 'Entries not signed by the server they name (observer users; set aside in latscope:records:bad)', 'counter', ingest((c) => c.forgedEntries));
  metric(r, 'latscope_ingest_reclaimed_entries_total', 'Entries taken over from a consumer that died', 'counter', ingest((c) => c.reclaimed));
  // the stream stage
  const stream = valuesOf(s.stream);
  metric(r, 'latscope_stream_records_total', 'Records the stream stage analyzed', 'counter', stream((c) => c.records));
  metric(r, 'latscope_stream_paths_total', 'Paths the stream stage joined', 'counter', stream((c) => c.paths));
  metric(r, 'latscope_stream_unmatched_total', 'Samples the stream stage could not join (by reason in the unmatched table)', 'counter', stream((c) => c.unmatched));
  metric(r, 'latscope_stream_bad_entries_total', 'Stream entries that were not well-formed record batches (set aside in latscope:records:bad)', 'counter', stream((c) => c.badEntries));
  metric(r, 'latscope_stream_forged_entries_total', 'Records entries not signed by the server they name (observer users; set aside in latscope:records:bad)', 'counter', stream((c) => c.forgedEntries));
  metric(r, 'latscope_stream_replayed_entries_total', 'Entries delivered again that the checkpoint already covered (after a takeover)', 'counter', stream((c) => c.replayed));
  metric(r, 'latscope_stream_evicted_records_total', 'Waiting records pushed out by the waiting bound', 'counter', stream((c) => c.evicted));
  metric(r, 'latscope_stream_unusable_records_total', 'Records with no time at any layer', 'counter', stream((c) => c.unusable));
  metric(r, 'latscope_stream_waiting_records', 'Records waiting for the other end of their path', 'gauge', stream((c) => c.waiting));
  metric(r, 'latscope_stream_held_records', 'Records analyzed by steps that hold their results for a later commit (a backlog; see commit_steps)', 'gauge', stream((c) => c.held));
  metric(r, 'latscope_manager_servers', 'Servers per provisioning state', 'gauge', async () => {
    const counts: Record<string, number> = {};
    for (const st of (await s.states()).values()) counts[st.state] = (counts[st.state] ?? 0) + 1;
    return byKey(counts, 'state');
  });
  if (s.redis && s.recordStreams?.length) {
    const redis = s.redis;
    metric(r, 'latscope_ingest_lag_seconds', 'Age of the oldest record batch still waiting in a records stream (0: none waits)', 'gauge', async () => {
      const out: Value[] = [];
      for (const stream of s.recordStreams!) {
        const first = (await redis.xrange(stream, '-', '+', 'COUNT', 1).catch(() => [])) as [string, string[]][];
        const ms = first.length ? Number(first[0]![0].split('-')[0]) : Date.now();
        out.push({ value: Math.max(0, (Date.now() - ms) / 1000), labels: { stream } });
      }
      return out;
    });
  }
  if (s.pool) {
    const results = cachedResults(s.pool);
    metric(r, 'latscope_pair_delay_seconds', "Each server pair's delay in its newest window, by segment (one_way, end_to_end, wire) and quantile", 'gauge', async () =>
      ((await results())?.pairs ?? []).flatMap((p) => [
        { value: p.p50Ns / 1e9, labels: { src: p.src, dst: p.dst, segment: p.segment, quantile: '0.5' } },
        { value: p.p99Ns / 1e9, labels: { src: p.src, dst: p.dst, segment: p.segment, quantile: '0.99' } },
      ]),
    );
    metric(r, 'latscope_pair_samples', "Samples behind each pair's newest window, by segment", 'gauge', async () =>
      ((await results())?.pairs ?? []).map((p) => ({ value: p.samples, labels: { src: p.src, dst: p.dst, segment: p.segment } })),
    );
    metric(r, 'latscope_pair_clock_faults', "Paths in each pair's newest window whose one-way delay was below zero by more than its bound", 'gauge', async () =>
      ((await results())?.pairs ?? []).filter((p) => p.segment === 'end_to_end').map((p) => ({ value: p.faults, labels: { src: p.src, dst: p.dst } })),
    );
    metric(r, 'latscope_mesh_one_way_seconds', 'One-way delay between servers from the probe mesh (time_sync.yaml mesh), without application traffic: the median of its rounds of the last minute', 'gauge', async () =>
      ((await results())?.mesh ?? []).map((d) => ({ value: d.oneWayP50Ns / 1e9, labels: { src: d.src, dst: d.dst } })),
    );
    metric(r, 'latscope_mesh_one_way_bound_seconds', 'The clock bound of that one-way delay', 'gauge', async () =>
      ((await results())?.mesh ?? []).map((d) => ({ value: d.boundNs / 1e9, labels: { src: d.src, dst: d.dst } })),
    );
    metric(r, 'latscope_mesh_loss_ratio', 'Share of the mesh probes between two servers without a reply, over the last minute', 'gauge', async () =>
      ((await results())?.mesh ?? []).map((d) => ({ value: d.lossRatio, labels: { src: d.src, dst: d.dst } })),
    );
    metric(r, 'latscope_clock_offset_seconds', "Each server's clock minus the manager's, at its newest time-sync round", 'gauge', async () =>
      ((await results())?.clocks ?? []).map((c) => ({ value: c.offsetNs / 1e9, labels: { server: c.server } })),
    );
    metric(r, 'latscope_clock_offset_bound_seconds', 'The error bound of that offset', 'gauge', async () =>
      ((await results())?.clocks ?? []).map((c) => ({ value: c.boundNs / 1e9, labels: { server: c.server } })),
    );
    metric(r, 'latscope_unmatched_samples', 'Samples not joined into a path over the last hour of windows, by reason', 'gauge', async () =>
      ((await results())?.unmatched ?? []).map((u) => ({ value: u.samples, labels: { reason: u.reason } })),
    );
  }
  return r;
}

export async function serveManagerMetrics(host: string, port: number, s: ManagerMetricSources): Promise<Server> {
  const registry = managerRegistry(s);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end('not found: try /metrics\n');
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(`${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`manager status endpoint on ${host}:${port} (management_server_info.yaml port): ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another' : e.message}`)));
    server.listen(port, host, resolve);
  });
  return server;
}
