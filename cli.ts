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
  demo: async () => (await import('./cli/demo.js')).demoCommand(),
  ...SERVER_COMMANDS,
  timesync: async () => (await import('./cli/timesync.js')).timesyncCommand(),
  conf: async () => (await import('./cli/conf.js')).confCommand(),
  analyze: async () => (await import('./cli/analyze.js')).analyzeCommand(),
  host: async () => (await import('./cli/host.js')).hostCommand(),
  retention: async () => (await import('./cli/retention.js')).retentionCommand(),
  report: async () => (await import('./cli/report.js')).reportCommand(),
  graph: async () => (await import('./cli/graph.js')).graphCommand(),
  manager: async () => (await import('./cli/manager.js')).managerCommand(),
  testbed: async () => (await import('./cli/testbed.js')).testbedCommand(),
  servers: async () => (await import('./cli/servers.js')).serversCommand(),
};

runCli('latscope', 'Cross-layer network latency for Linux fleets, with eBPF: where the time goes, and why.', COMMANDS);
