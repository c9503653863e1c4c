/**
 * The manager's status endpoint (management_server_info.yaml `port`; 0: none): Prometheus
 * metrics of this manager process at http://ADDRESS:PORT/metrics: jobs completed and failed per
 * queue and job, worker errors, ingest counters, and servers per state.
 */
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import type { JobCounters } from './queues.js';
import type { ServerStatus } from './state.js';
import type { IngestCounters } from '../ingest/ingest.js';
import type { StreamCounters } from '../analyzer/stream/stage.js';

export interface ManagerMetricSources {
  jobs: () => JobCounters;
  ingest: () => IngestCounters | undefined;
  /** The stream stage's counters (analysis_info engine stream), when this process runs one. */
  stream?: () => StreamCounters | undefined;
  states: () => Promise<Map<string, ServerStatus>>;
}

type Value = { value: number; labels?: Record<string, string | number> };

function metric(r: Registry, name: string, help: string, type: 'counter' | 'gauge', values: () => Value[] | Promise<Value[]>): void {
  r.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: await values(), aggregator: 'sum' }) } as never);
}

const byKey = (m: Record<string, number>, label: string): Value[] => Object.entries(m).map(([k, value]) => ({ value, labels: { [label]: k } }));

export function managerRegistry(s: ManagerMetricSources): Registry {
  const r = new Registry();
  metric(r, 'latscope_manager_jobs_completed_total', 'BullMQ jobs this process completed, by queue:job', 'counter', () => byKey(s.jobs().completed, 'job'));
  metric(r, 'latscope_manager_jobs_failed_total', 'BullMQ jobs that failed in this process (each attempt), by queue:job', 'counter', () => byKey(s.jobs().failed, 'job'));
  metric(r, 'latscope_manager_worker_errors_total', 'BullMQ worker errors (Redis outages), by queue', 'counter', () => byKey(s.jobs().errors, 'queue'));
  metric(r, 'latscope_manager_ingest_total', 'Ingest counters of this process, by what: entries, rows, histogram_rows, duplicates, db_errors, bad_entries, reclaimed', 'counter', () => {
    const c = s.ingest();
    if (!c) return [];
    const pick = { entries: c.entries, rows: c.rows, histogram_rows: c.histogramRows, host_rows: c.hostRows, duplicates: c.duplicates, db_errors: c.dbErrors, bad_entries: c.badEntries, reclaimed: c.reclaimed, groups_recreated: c.groupsRecreated };
    return byKey(pick, 'what');
  });
  // the stream stage: one counter per meaning, as Prometheus names them
  const stream = (pick: (c: StreamCounters) => number) => (): Value[] => {
    const c = s.stream?.();
    return c ? [{ value: pick(c) }] : [];
  };
  metric(r, 'latscope_stream_records_total', 'Records the stream stage analyzed', 'counter', stream((c) => c.records));
  metric(r, 'latscope_stream_paths_total', 'Paths the stream stage joined', 'counter', stream((c) => c.paths));
  metric(r, 'latscope_stream_unmatched_total', 'Samples the stream stage could not join (by reason in the unmatched table)', 'counter', stream((c) => c.unmatched));
  metric(r, 'latscope_stream_bad_entries_total', 'Stream entries that were not well-formed record batches (set aside in latscope:records:bad)', 'counter', stream((c) => c.badEntries));
  metric(r, 'latscope_stream_replayed_entries_total', 'Entries delivered again that the checkpoint already covered (after a takeover)', 'counter', stream((c) => c.replayed));
  metric(r, 'latscope_stream_evicted_records_total', 'Waiting records pushed out by the waiting bound', 'counter', stream((c) => c.evicted));
  metric(r, 'latscope_stream_unusable_records_total', 'Records with no time at any layer', 'counter', stream((c) => c.unusable));
  metric(r, 'latscope_stream_waiting_records', 'Records waiting for the other end of their path', 'gauge', stream((c) => c.waiting));
  metric(r, 'latscope_manager_servers', 'Servers per provisioning state', 'gauge', async () => {
    const counts: Record<string, number> = {};
    for (const st of (await s.states()).values()) counts[st.state] = (counts[st.state] ?? 0) + 1;
    return byKey(counts, 'state');
  });
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
