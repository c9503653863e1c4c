/**
 * The daemons' log: one JSON line per event with its level, an ISO time and the process
 * (pino), so that a server's log can be searched and filtered by level. LATSCOPE_LOG_LEVEL
 * chooses the level (default info). Written synchronously: the last lines before a crash are kept.
 */
import pino from 'pino';

export type Logger = pino.Logger;

/** A logger for daemon `name`, to standard error or to `sink` (e.g. a rotating file). */
export function daemonLogger(name: string, bindings: Record<string, unknown> = {}, sink?: { write(line: string): void }): Logger {
  return pino(
    { name, level: process.env.LATSCOPE_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime },
    sink ?? pino.destination({ fd: 2, sync: true }),
  );
}
