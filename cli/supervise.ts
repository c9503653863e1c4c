/** `latscope supervise --run-dir DIR --log FILE -- CMD…`: keep CMD running (the manager starts observers this way). */
import { numberIn } from './options.js';
import { Command } from 'commander';
import { supervise } from '../observer/supervisor.js';

export function superviseCommand(): Command {
  return new Command('supervise')
    .description('run a command and restart it when it dies; SIGTERM stops both (used by the manager on each server)')
    .requiredOption('--run-dir <dir>', 'where supervisor.pid and supervisor.json are kept')
    .requiredOption('--log <file>', "file the command's output is appended to")
    .option('--stop-timeout-ms <ms>', 'milliseconds between SIGTERM and SIGKILL when stopping', numberIn('--stop-timeout-ms', 0, 600_000), 15_000)
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (argv: string[], o: { runDir: string; log: string; stopTimeoutMs: number }) => {
      await supervise({ runDir: o.runDir, argv, logFile: o.log, stopTimeoutMs: o.stopTimeoutMs });
    });
}
