#!/usr/bin/env node
/**
 * The latscope command. Each subcommand lives in cli/NAME.ts; this file only wires them up and
 * is, with them, the only place that sets the process's exit code.
 */
import { Command } from 'commander';
import { testbedCommand } from './cli/testbed.js';
import { serversCommand } from './cli/servers.js';
import { observerCommand } from './cli/observer.js';
import { demoCommand } from './cli/demo.js';
import { timesyncCommand } from './cli/timesync.js';
import { confCommand } from './cli/conf.js';
import { superviseCommand } from './cli/supervise.js';
import { cleanupCommand } from './cli/cleanup.js';
import { managerCommand } from './cli/manager.js';

const program = new Command()
  .name('latscope')
  .description('Cross-layer network latency for Linux fleets, with eBPF: where the time goes, and why.')
  .version('0.1.0')
  .showHelpAfterError();

program.addCommand(demoCommand());
program.addCommand(observerCommand());
program.addCommand(timesyncCommand());
program.addCommand(confCommand());
program.addCommand(managerCommand());
program.addCommand(superviseCommand());
program.addCommand(cleanupCommand());
program.addCommand(testbedCommand());
program.addCommand(serversCommand());

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`latscope: ${(e as Error).message}`);
  process.exitCode = 1;
});
