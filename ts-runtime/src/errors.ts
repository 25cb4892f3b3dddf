/**
 * Every error freeflow reports to a user is an FfError: a stable machine-readable `code`, a message that
 * names the problem, and a `hint` that says how to fix it. Only the CLI entry turns one into an exit code.
 */
/** Every code, in the order of docs/errors.md (each has an entry there: what it means and the fix). */
export const FF_ERROR_CODES = [
  'NOT_ROOT',
  'MISSING_DEPENDENCY',
  'SPEC_INVALID',
  'SPEC_NOT_FOUND',
  'USAGE',
  'PROGRAM_NOT_FOUND',
  'TOO_MANY_RANKS',
  'NETWORK_UNAVAILABLE',
  'CLUSTER_SETUP_FAILED',
  'CLUSTER_REQUEST_INVALID',
  'CLUSTER_TEARDOWN_FAILED',
  'EXEC_FAILED',
  'ADDON_NOT_BUILT',
  'ADDON_FAILED',
  'PROBE_FAILED',
  'JOB_FAILED',
  'JOB_TIMEOUT',
  'INTERRUPTED',
  'BENCH_RESULT_INVALID',
  'BENCH_INCOMPLETE',
  'REPORT_WRITE_FAILED',
  'RENDER_WRITE_FAILED',
  'INTERNAL',
  // the Slurm backend (ts-runtime/src/backends/slurm, docs/slurm.md)
  'SLURM_NOT_INSTALLED',
  'SLURM_SETUP_FAILED',
  'SLURM_UNREACHABLE',
  'SLURM_MISCONFIGURED',
  'SPANK_PLUGIN_NOT_BUILT',
  'SPANK_PLUGIN_NOT_LOADED',
  'RUNC_MISSING',
] as const;

export type FfErrorCode = (typeof FF_ERROR_CODES)[number];

export class FfError extends Error {
  readonly code: FfErrorCode;
  readonly hint: string | undefined;
  readonly notes: readonly string[];

  constructor(code: FfErrorCode, message: string, options: { hint?: string; notes?: readonly string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FfError';
    this.code = code;
    this.hint = options.hint;
    this.notes = options.notes ?? [];
  }
}

export function isFfError(value: unknown): value is FfError {
  return value instanceof FfError;
}
