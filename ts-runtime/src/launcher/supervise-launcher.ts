import type { ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import type { FfError } from '../errors';
import type { MpirunOutcome } from './run-mpirun';

/** After a forwarded signal or the timeout, the launcher gets this long to stop its ranks before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/**
 * After the launcher exits, its output pipes may stay open in children that outlive it (rsh agents of a
 * killed mpirun); output still in flight gets this long, then the pipes are closed so that teardown can run.
 */
const OUTPUT_DRAIN_MS = 2_000;

/** Splits a launcher's output stream into lines. */
export interface LineParser {
  push(chunk: string): void;
  end(): void;
}

export interface SuperviseOptions {
  readonly timeoutMs: number;
  /** Aborted with a signal name as reason (SIGINT/SIGTERM): forwarded to the launcher as `signalFor` says. */
  readonly interrupt: AbortSignal;
  readonly signalFor: (interruptedBy: NodeJS.Signals) => NodeJS.Signals;
  readonly parserFor: (stream: 'stdout' | 'stderr') => LineParser;
  readonly startFailure: (error: Error) => FfError;
}

/**
 * Supervises a launcher (mpirun, srun) spawned detached, so that it leads its own process group: streams
 * its output through the parsers, forwards one signal on interrupt or timeout, SIGKILLs its group after the
 * grace period, and resolves with its outcome when its pipes close.
 */
export function superviseLauncher(child: ChildProcessByStdio<null, Readable, Readable>, options: SuperviseOptions): Promise<MpirunOutcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let timedOut = false;
    let interruptedBy: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const stop = (signal: NodeJS.Signals): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      // the launcher leads its own process group (detached): SIGKILL takes its rsh agents along
      killTimer ??= setTimeout(() => killProcessGroup(child.pid), STOP_GRACE_MS);
    };
    const timeout = setTimeout(() => {
      timedOut = true;
      stop('SIGTERM');
    }, options.timeoutMs);
    const onInterrupt = (): void => {
      interruptedBy = options.interrupt.reason as NodeJS.Signals;
      stop(options.signalFor(interruptedBy));
    };
    if (options.interrupt.aborted) onInterrupt();
    else options.interrupt.addEventListener('abort', onInterrupt, { once: true });

    const parsers = (['stdout', 'stderr'] as const).map((stream) => {
      const parser = options.parserFor(stream);
      child[stream].setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
      return parser;
    });
    child.on('error', (error) => {
      clearTimeout(timeout);
      reject(options.startFailure(error));
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

function killProcessGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is already gone
  }
}
