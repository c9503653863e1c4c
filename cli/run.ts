/**
 * The one way a latscope command line starts. `latscope --help` lists the commands from their
 * one-line summaries without loading any (it stays fast); otherwise only the subcommand being run
 * is loaded. Exit codes: 0 success, 1 a failure the command reports (its --help says more), 64 a
 * usage error (an unknown command or option, a missing or malformed argument), as sysexits(3)'s
 * EX_USAGE. Both entry points use it: cli.ts (every command) and observer-cli.ts (what a server runs).
 */
import { Command, CommanderError } from 'commander';

export interface CommandEntry {
  /** One line for `latscope --help`; the command's own --help has the whole description. */
  summary: string;
  load: () => Promise<Command>;
  /** Used by the manager on servers, not by people: left out of the list. */
  hidden?: boolean;
}
export type CommandTable = Record<string, CommandEntry>;

export const EXIT_USAGE = 64;

const EXIT_CODES = `
Exit codes:
  0   success
  1   the command failed (it says why; some commands document more codes in their --help)
  64  usage error: an unknown command or option, a missing or malformed argument`;

/** Usage errors throw instead of exiting, in every (sub)command, so that they exit 64. */
function throwOnUsageErrors(c: Command): void {
  c.exitOverride();
  for (const sub of c.commands) throwOnUsageErrors(sub);
}

/**
 * Every command's --help ends with its exit codes: a command that documents its own (in its
 * help text) keeps them, every other one gets the common ones. Its help is watched as it is
 * written, so a command's own text decides.
 */
function exitCodesInHelp(c: Command, isRoot = true): void {
  if (!isRoot) {
    let written = '';
    c.configureOutput({ writeOut: (str) => void ((written += str), process.stdout.write(str)) });
    c.on('beforeHelp', () => (written = ''));
    c.addHelpText('after', () => (/Exit codes:/.test(written) ? '' : EXIT_CODES.replace('\n', '') + '\n'));
  }
  for (const sub of c.commands) exitCodesInHelp(sub, false);
}

export function runCli(name: string, description: string, commands: CommandTable): void {
  // output piped into a reader that stopped (latscope report | head): stop quietly, as cat does
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const main = async () => {
    const program = new Command().name(name).description(description).version('0.1.0').showHelpAfterError().addHelpText('after', EXIT_CODES);
    const wanted = process.argv[2];
    // `latscope help CMD` shows CMD's whole help: load it too
    const named = wanted === 'help' ? process.argv[3] : wanted;
    const entry = named !== undefined && Object.hasOwn(commands, named) ? commands[named] : undefined;
    if (entry) program.addCommand(await entry.load());
    else for (const [cmd, e] of Object.entries(commands)) program.addCommand(new Command(cmd).description(e.summary).allowUnknownOption(), { hidden: !!e.hidden });
    throwOnUsageErrors(program);
    if (entry) exitCodesInHelp(program);
    try {
      await program.parseAsync(process.argv);
      
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      // help and version print and succeed; everything else commander throws is a usage error
      process.exitCode = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(e.code) ? 0 : EXIT_USAGE;
    }
  };
  main().catch((e: unknown) => {
    console.error(`${name}: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
