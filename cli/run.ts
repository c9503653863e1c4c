/**
 * The one way a latscope command line starts: load only the subcommand being run (all of them
 * for help), parse, and turn an error into a message and exit code 1. Both entry points use it:
 * cli.ts (every command) and observer-cli.ts (what a server runs).
 */
import { Command } from 'commander';

export type CommandTable = Record<string, () => Promise<Command>>;

export function runCli(name: string, description: string, commands: CommandTable): void {
  const main = async () => {
    const program = new Command().name(name).description(description).version('0.1.0').showHelpAfterError();
    const wanted = process.argv[2];
    for (const [cmd, load] of Object.entries(commands)) if (!wanted || !(wanted in commands) || wanted === cmd) program.addCommand(await load());
    await program.parseAsync(process.argv);
  };
  main().catch((e: unknown) => {
    console.error(`${name}: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
