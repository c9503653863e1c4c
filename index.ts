/**
 * latscope as a library: what `import … from 'latscope'` gives. The host-jitter side for
 * low-latency teams (HostMonitor, or HostSession and buildReport for the `latscope host` report);
 * the rest of latscope runs as commands.
 */
export { HostMonitor, UnsupportedError, hasHardwarePmu } from './host/monitor.js';
export type { HostMonitorOptions, AttachOptions, ContextSwitch, LatencySpike, ThreadSchedulingInfo, NumaStats, HostMonitorEvents } from './host/monitor.js';
export { HostSession, DEFAULT_OUTLIERS } from './host/session.js';
export type { SessionOptions, HostSnapshot, OutlierThresholds } from './host/session.js';
export { buildReport, DEFAULT_THRESHOLDS } from './host/report.js';
export type { HostReport, Thresholds, Finding } from './host/report.js';
export type { HostEvent, HostTarget } from './host/probe.js';
export { percentiles, histQuantile } from './host/hist.js';
export type { Histogram, Percentiles } from './host/hist.js';
export { HOST_MODULES, type HostModuleName } from './protocol/host.js';
