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
  observer: { summary: 'run the observer on this server: latency probes, records to Redis', load: async () => (await import('./cli/observer.js')).observerCommand() },
  supervise: { summary: 'keep a command running (the manager starts observers with it)', hidden: true, load: async () => (await import('./cli/supervise.js')).superviseCommand() },
  cleanup: { summary: 'remove BPF attachments left by latscope processes that died', hidden: true, load: async () => (await import('./cli/cleanup.js')).cleanupCommand() },
};

// run only as the program itself, not when cli.ts imports the table
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  runCli('latscope-observer', 'latscope on a server: the observer, its supervisor, the leftover sweeper.', SERVER_COMMANDS);
