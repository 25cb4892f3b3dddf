import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { FfError } from '../errors';
import type { MpirunInvocation } from './mpirun-invocation';
import { formatOutputLine, isIgnorable, RankOutputParser, type OutputLine } from './rank-output';

export interface MpirunOutcome {
  /**
   * mpirun's exit code: the first failing rank's code (or MPI_Abort's), 0 when all succeeded; 128 + N
   * when mpirun itself was killed by signal N (`signal`).
   */
  readonly exitCode: number;
  /** The signal that killed mpirun itself (not a rank: mpirun reports a rank's death in its exit code). */
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly interruptedBy: NodeJS.Signals | null;
  readonly durationMs: number;
}

export interface RunOptions {
  readonly launcherNetns: string;
  readonly timeoutMs: number;
  /** Aborted with a signal name as reason (SIGINT/SIGTERM): forwarded to mpirun, which stops the ranks. */
  readonly interrupt: AbortSignal;
  /** Receives each line, rank-tagged lines already parsed. */
  readonly onLine: (line: OutputLine) => void;
}

/** After a forwarded signal or the timeout, mpirun gets this long to stop its ranks before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/**
 * After mpirun exits, its output pipes may stay open in children that outlive it (rsh agents of a killed
 * mpirun); output still in flight gets this long, then the pipes are closed so that teardown can run.
 */
const OUTPUT_DRAIN_MS = 2_000;

/**
 * Runs mpirun inside the launcher's network namespace (`nsenter --net` execs it, so the child pid is
 * mpirun's; unlike `ip netns exec` it keeps the machine's /sys, whose cgroup mounts runc needs when the
 * rsh agent starts orted in a container), streams its output line by line and resolves when it exits. mpirun runs in its own process
 * group: a terminal's Ctrl-C reaches ffrun only, which forwards exactly one signal.
 */
export function runMpirun(invocation: MpirunInvocation, options: RunOptions): Promise<MpirunOutcome> {
  for (const file of invocation.files) writeFileSync(file.path, file.text, { mode: 0o600 });
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${options.launcherNetns}`, '--', ...invocation.argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...invocation.env },
      detached: true,
    });
    let timedOut = false;
    let interruptedBy: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const stop = (signal: NodeJS.Signals): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      // mpirun leads its own process group (detached): SIGKILL takes its rsh agents along.
      killTimer ??= setTimeout(() => killProcessGroup(child.pid), STOP_GRACE_MS);
    };
    const timeout = setTimeout(() => {
      timedOut = true;
      stop('SIGTERM');
    }, options.timeoutMs);
    const onInterrupt = (): void => {
      interruptedBy = options.interrupt.reason as NodeJS.Signals;
      stop(interruptedBy);
    };
    if (options.interrupt.aborted) onInterrupt();
    else options.interrupt.addEventListener('abort', onInterrupt, { once: true });

    const splitters = (['stdout', 'stderr'] as const).map((stream) => {
      const parser = new RankOutputParser(stream, (line) => {
        if (!isIgnorable(line)) options.onLine(line);
      });
      child[stream].setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
      return parser;
    });
    child.on('error', (error) => {
      clearTimeout(timeout);
      reject(
        new FfError('EXEC_FAILED', `could not start mpirun through nsenter: ${error.message}`, {
          hint: '`npm run setup` installs util-linux and Open MPI',
          cause: error,
        }),
      );
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
      for (const splitter of splitters) splitter.end();
      resolve({ exitCode: code ?? 128 + (signal === null ? 0 : constants.signals[signal]), signal, timedOut, interruptedBy, durationMs: Date.now() - started });
    });
  });
}

/**
 * The JOB_FAILED error for a job whose mpirun exited non-zero. A rank killed by signal N makes mpirun
 * exit with 128 + N; mpirun killed itself (by a user, the out-of-memory killer) gives the same number,
 * but the job was cut short by losing its launcher, not by a rank: the two are told apart.
 */
export function jobFailure(outcome: Pick<MpirunOutcome, 'exitCode' | 'signal'>): FfError {
  const { exitCode, signal } = outcome;
  if (signal !== null) {
    return new FfError(
      'JOB_FAILED',
      `the job failed: mpirun (the launcher) was killed by ${signal}, which ended the job (exit code ${exitCode} = 128 + ${exitCode - 128})`,
      {
        hint: `mpirun was killed from outside ffrun, by a user or by the kernel (the out-of-memory killer logs to \`dmesg\`); the rank output above shows how far the job got; ffrun exits with ${exitCode}`,
      },
    );
  }
  const rankSignal = exitCode > 128 ? Object.entries(constants.signals).find(([, number]) => number === exitCode - 128)?.[0] : undefined;
  const meaning =
    rankSignal === undefined ? "the first failing rank's exit code, or MPI_Abort's" : `128 + ${exitCode - 128}: a rank was killed by ${rankSignal}`;
  return new FfError('JOB_FAILED', `the job failed: mpirun exited with code ${exitCode} (${meaning})`, {
    hint: 'see the rank output above; ffrun exits with the same code',
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

/** Writes a line where it belongs: rank stdout to stdout (stderr when stdout carries JSON), the rest to stderr. */
export function printOutputLine(line: OutputLine, stdoutIsJson: boolean): void {
  const target = line.stream === 'stdout' && !stdoutIsJson ? process.stdout : process.stderr;
  target.write(`${formatOutputLine(line)}\n`);
}
