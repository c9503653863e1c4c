#!/usr/bin/env node
/**
 * The latscope command. Each subcommand lives in cli/NAME.ts; this file only wires them up and
 * is, with them, the only place that sets the process's exit code. Only the subcommand being
 * run is loaded (all of them for help). What a server runs (observer, supervise, cleanup) has
 * its own entry point, observer-cli.ts, whose import graph is the observer bundle.
 */
import { runCli, type CommandTable } from './cli/run.js';
import { SERVER_COMMANDS } from './observer-cli.js';

const COMMANDS: CommandTable = {
  demo: { summary: 'run latscope end to end on a local testbed and find a link slowed on purpose', load: async () => (await import('./cli/demo.js')).demoCommand() },
  ...SERVER_COMMANDS,
  timesync: { summary: 'clock offsets between this manager and the servers', load: async () => (await import('./cli/timesync.js')).timesyncCommand() },
  conf: { summary: 'check a conf/ folder, or write a commented one to start from (conf init)', load: async () => (await import('./cli/conf.js')).confCommand() },
  analyze: { summary: 'run the analysis once: paths, statistics per window, tail attribution, spikes', load: async () => (await import('./cli/analyze.js')).analyzeCommand() },
  host: { summary: 'host jitter on this machine: run queues, IRQs, memory stalls, syscalls, block I/O', load: async () => (await import('./cli/host.js')).hostCommand() },
  retention: { summary: "apply database_info.yaml's retention now", load: async () => (await import('./cli/retention.js')).retentionCommand() },
  report: { summary: 'where the time went: server pairs, layers, flows, tail, spikes', load: async () => (await import('./cli/report.js')).reportCommand() },
  graph: { summary: 'the same as SVG graphs and a self-contained report.html', load: async () => (await import('./cli/graph.js')).graphCommand() },
  manager: { summary: 'provision observers on every server over SSH and collect into MySQL', load: async () => (await import('./cli/manager.js')).managerCommand() },
  testbed: { summary: 'the local testbed: hosts as network namespaces, each with its own sshd', load: async () => (await import('./cli/testbed.js')).testbedCommand() },
  servers: { summary: 'the local Redis and MariaDB', load: async () => (await import('./cli/servers.js')).serversCommand() },
};

runCli('latscope', 'Cross-layer network latency for Linux fleets, with eBPF: where the time goes, and why.', COMMANDS);
