import type { FfError } from '../errors';
import type { Progress } from '../job/progress';

/** What main.ts gives every command. */
export interface CommandContext {
  readonly progress: Progress;
  /** Aborted with the signal's name as reason on SIGINT/SIGTERM. */
  readonly interrupt: AbortSignal;
  /** Prints an error on stderr the way main.ts does, for commands that report one and choose their exit code. */
  readonly reportError: (error: FfError) => void;
}
