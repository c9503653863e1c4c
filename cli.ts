#!/usr/bin/env node
/**
 * The latscope command. Each subcommand lives in cli/NAME.ts; this file only wires them up and
 * is, with them, the only place that sets the process's exit code. Only the subcommand being
 * run is loaded (all of them for help): the observer, its supervisor and `cleanup` start on
 * every server at once, and loading the manager's libraries there would cost each ~0.25 s CPU.
 */
import { Command } from 'commander';

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./cli/demo.js')).demoCommand(),
  observer: async () => (await import('./cli/observer.js')).observerCommand(),
  timesync: async () => (await import('./cli/timesync.js')).timesyncCommand(),
  conf: async () => (await import('./cli/conf.js')).confCommand(),
  analyze: async () => (await import('./cli/analyze.js')).analyzeCommand(),
  host: async () => (await import('./cli/host.js')).hostCommand(),
  retention: async () => (await import('./cli/retention.js')).retentionCommand(),
  report: async () => (await import('./cli/report.js')).reportCommand(),
  graph: async () => (await import('./cli/graph.js')).graphCommand(),
  manager: async () => (await import('./cli/manager.js')).managerCommand(),
  supervise: async () => (await import('./cli/supervise.js')).superviseCommand(),
  cleanup: async () => (await import('./cli/cleanup.js')).cleanupCommand(),
  testbed: async () => (await import('./cli/testbed.js')).testbedCommand(),
  servers: async () => (await import('./cli/servers.js')).serversCommand(),
};

async function main(): Promise<void> {
  const program = new Command()
    .name('latscope')
    .description('Cross-layer network latency for Linux fleets, with eBPF: where the time goes, and why.')
    .version('0.1.0')
    .showHelpAfterError();
  const wanted = process.argv[2];
  for (const [name, load] of Object.entries(COMMANDS)) if (!wanted || !(wanted in COMMANDS) || wanted === name) program.addCommand(await load());
  await program.parseAsync(process.argv);
}

main().catch((e: unknown) => {
  console.error(`latscope: ${(e as Error).message}`);
  process.exitCode = 1;
});
