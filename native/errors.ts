/** What goes wrong in the kernel or libbpf, explained: BpfError and the errors it specialises into. */
/** Errors from the kernel or libbpf: "doing what: detail", with errno code and verifier log. */
export class BpfError extends Error {
  override readonly name: string = 'BpfError';
  constructor(
    message: string,
    /** errno name, e.g. "EPERM", "ENODEV". */
    readonly code: string,
    readonly errno: number,
    /** What was being done, e.g. "loading hook_kinds". */
    readonly step: string,
    /** The verifier's log when the kernel refused a program, else "". */
    readonly verifierLog = '',
    /** Everything libbpf printed during the failed step. */
    readonly libbpfLog = '',
  ) {
    super(message);
  }
}

/** The kernel lacks a feature latscope needs (a program type, attach type or helper). */
export class MissingFeatureError extends BpfError {
  override readonly name = 'MissingFeatureError';
}

/** A struct shared with the kernel is laid out differently in the object than TypeScript expects. */
export class LayoutError extends BpfError {
  override readonly name = 'LayoutError';
}

const FEATURE_CODES = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOTSUPP', 'ENOSYS']);

export function explain(e: unknown, context?: string): never {
  const err = e as { message?: string; code?: string; errno?: number; step?: string; libbpfLog?: string };
  if (typeof err?.code !== 'string' || typeof err.errno !== 'number') throw e;
  const log = err.libbpfLog ?? '';
  const verifierLog = /-- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/.exec(log)?.[1] ?? '';
  let message = context ? `${context}: ${err.message}` : err.message ?? 'BPF error';
  message += ` (${err.code})`;
  if ((err.code === 'EPERM' || err.code === 'EACCES') && process.geteuid?.() !== 0)
    message += ': latscope needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; run it with sudo';
  else if (verifierLog) message += ': the verifier refused the program; see verifierLog';
  const Cls = FEATURE_CODES.has(err.code) ? MissingFeatureError : BpfError;
  throw new Cls(message, err.code, err.errno, err.step ?? context ?? '', verifierLog, log);
}

export function call<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (e) {
    explain(e, context);
  }
}
