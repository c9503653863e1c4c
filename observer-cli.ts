#!/usr/bin/env node
/**
 * What the manager runs on a server: the observer, its supervisor and the leftover sweeper.
 * This file is the entry point of the observer bundle: the bundle ships exactly its import graph
 * (scripts/bundle-manifest.ts), so nothing here may load the manager's libraries.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCli, type CommandTable } from './cli/run.js';

export const SERVER_COMMANDS: CommandTable = {
  observer: async () => (await import('./cli/observer.js')).observerCommand(),
  supervise: async () => (await import('./cli/supervise.js')).superviseCommand(),
  cleanup: async () => (await import('./cli/cleanup.js')).cleanupCommand(),
};

// run only as the program itself, not when cli.ts imports the table
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  runCli('latscope-observer', 'latscope on a server: the observer, its supervisor, the leftover sweeper.', SERVER_COMMANDS);
