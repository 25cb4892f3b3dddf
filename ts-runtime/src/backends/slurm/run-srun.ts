import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { FfError } from '../../errors';
import type { OutputLine } from '../../launcher/rank-output';
import type { MpirunOutcome } from '../../launcher/run-mpirun';
import { SrunOutputParser } from './srun-output';

export interface SrunRunOptions {
  /** Prefix that puts srun where it reaches slurmctld (nsenter into the launcher namespace), or none. */
  readonly prefix: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  readonly interrupt: AbortSignal;
  readonly onLine: (line: OutputLine) => void;
}

/** After a forwarded signal or the timeout, srun gets this long to cancel the step before SIGKILL. */
const STOP_GRACE_MS = 5_000;
const OUTPUT_DRAIN_MS = 2_000;

/**
 * Runs srun and resolves with its outcome in mpirun's terms (srun exits with the highest task exit code).
 * srun runs in its own process group: on SIGINT/SIGTERM to ffrun or the timeout it gets one SIGTERM (it
 * cancels the step), and its group SIGKILL after the grace period. Ranks that outlive srun die with the
 * cluster's teardown.
 */
export function runSrun(argv: readonly string[], options: SrunRunOptions): Promise<MpirunOutcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(options.prefix[0] ?? argv[0]!, [...options.prefix.slice(1), ...(options.prefix.length > 0 ? argv : argv.slice(1))], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env,
      detached: true,
    });
    let timedOut = false;
    let interruptedBy: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const stop = (signal: NodeJS.Signals): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      killTimer ??= setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, STOP_GRACE_MS);
    };
    const timeout = setTimeout(() => {
      timedOut = true;
      stop('SIGTERM');
    }, options.timeoutMs);
    const onInterrupt = (): void => {
      interruptedBy = options.interrupt.reason as NodeJS.Signals;
      // srun takes one SIGINT as "print the tasks' status" (a second within a second aborts); SIGTERM cancels the step
      stop('SIGTERM');
    };
    if (options.interrupt.aborted) onInterrupt();
    else options.interrupt.addEventListener('abort', onInterrupt, { once: true });
    const parsers = (['stdout', 'stderr'] as const).map((stream) => {
      const parser = new SrunOutputParser(stream, options.onLine);
      child[stream].setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
      return parser;
    });
    child.on('error', (error) => {
      clearTimeout(timeout);
      reject(new FfError('SLURM_NOT_INSTALLED', `could not start srun: ${error.message}`, { hint: 'scripts/setup.sh installs slurm-client', cause: error }));
    });
    child.on('exit', () => {
      drainTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, OUTPUT_DRAIN_MS);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      options.interrupt.removeEventListener('abort', onInterrupt);
      for (const parser of parsers) parser.end();
      resolve({ exitCode: code ?? 128 + (signal === null ? 0 : constants.signals[signal]), signal, timedOut, interruptedBy, durationMs: Date.now() - started });
    });
  });
}
