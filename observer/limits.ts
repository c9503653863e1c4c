/** What an observer process may hold and spend, and what it counts when a bound is reached. */

/**
 * What an observer may hold and spend, whatever the traffic. Beyond each bound records are
 * spooled or dropped, and counted by reason (heartbeat `drops`, Prometheus latscope_dropped_total).
 */
export interface ObserverLimits {
  /** Share of one core the ring reader may use; the rest waits in the ring, and a full ring drops (counted: ring). */
  cpuShare: number;
  /** Records waiting for their layers; beyond, the oldest goes out as it is (counted: evicted). */
  pendingRecords: number;
  /** Encoded records waiting for Redis in memory; beyond, the oldest half goes to the disk spool. */
  memoryBytes: number;
  /** Disk spool; beyond, records are dropped (counted: spool). */
  spoolBytes: number;
  /** Record stream length beyond which this observer adds nothing (the ingest is behind; redis_info.yaml max_stream_entries; 0: none). */
  streamEntries: number;
  /** Milliseconds a stop may spend sending; the rest goes to the disk spool for the next start. */
  stopMs: number;
}

/**
 * The observer process's V8 heap bound (node --max-old-space-size; `latscope observer` sets it).
 * With the limits below the live heap stays well under it, so it only makes the collector keep
 * garbage small: resident memory stays under about 256 MB under any traffic (bench/overload).
 */
export const OBSERVER_HEAP_MB = 192;

/**
 * The observer's Prometheus endpoint by default: loopback only, on a port of its own (9464, used
 * before, is OpenTelemetry's default). function_info.yaml metrics sets both; port 0 turns it off.
 */
export const OBSERVER_METRICS = { address: '127.0.0.1', port: 9478 } as const;

export const OBSERVER_LIMITS: ObserverLimits = {
  cpuShare: 0.5,
  pendingRecords: 30_000,
  memoryBytes: 32 << 20,
  spoolBytes: 256 << 20,
  streamEntries: 10_000,
  stopMs: 5000,
};

/** How an observer publishes its records (observer/publisher.ts): entries of this many records, this many entries per round trip, a send every flushMs. */
export const OBSERVER_PUBLISHING = { batchRecords: 256, pipelineEntries: 64, flushMs: 100 } as const;

/**
 * How the record assembler waits for a sample's layers (observer/records.ts): a complete record
 * goes out lingerMs after its last event, an incomplete one after timeoutMs; one event carries at
 * most maxSamplesPerEvent samples (beyond: counted as capped). Finished records are flushed every
 * flushMs.
 */
export const OBSERVER_ASSEMBLY = { lingerMs: 30, timeoutMs: 2000, maxSamplesPerEvent: 1024, flushMs: 50 } as const;

/**
 * The host-jitter modules in an observer (observer/host-jitter.ts): outliers kept while Redis is
 * away (beyond: counted as drops.host_events), the host stream's cap in entries, and the
 * modules' own ring drain and recent-event memory.
 */
export const HOST_JITTER = { eventsKept: 20_000, streamEntries: 100_000, keepRecent: 100, drainMs: 200 } as const;

/** Everything lost so far, by reason (the heartbeat's `drops` and latscope_dropped_total). */
export interface Drops {
  /** Kernel: the ring buffer was full (events, each one or more records). */
  ring: number;
  /** Kernel: flow states dropped for a new flow (its set of the flow table full: the least recently sampled goes). */
  flow_table: number;
  /** Sample bytes beyond the per-event limit. */
  capped: number;
  /** Ring records too short to be an event. */
  undecodable: number;
  /** Records that fit neither in memory nor in the disk spool. */
  spool: number;
  /** Events still in the ring when the stop's time for them ran out. */
  stop: number;
  /** Host-module outliers beyond the ones kept while Redis was away. */
  host_events: number;
  /** Mesh rounds whose entry could not be sent (Redis away). */
  mesh_rounds: number;
}
