import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { FfError } from '../errors';
import type { MpirunInvocation } from './mpirun-invocation';
import { formatOutputLine, isIgnorable, RankOutputParser, type OutputLine } from './rank-output';
import { superviseLauncher } from './supervise-launcher';

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

/**
 * Runs mpirun inside the launcher's network namespace (`nsenter --net` execs it, so the child pid is
 * mpirun's; unlike `ip netns exec` it keeps the machine's /sys, whose cgroup mounts runc needs when the
 * rsh agent starts orted in a container), streams its output line by line and resolves when it exits. mpirun runs in its own process
 * group: a terminal's Ctrl-C reaches ffrun only, which forwards exactly one signal.
 */
export function runMpirun(invocation: MpirunInvocation, options: RunOptions): Promise<MpirunOutcome> {
  for (const file of invocation.files) writeFileSync(file.path, file.text, { mode: 0o600 });
  const child = spawn('nsenter', [`--net=/run/netns/${options.launcherNetns}`, '--', ...invocation.argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...invocation.env },
    detached: true,
  });
  return superviseLauncher(child, {
    timeoutMs: options.timeoutMs,
    interrupt: options.interrupt,
    signalFor: (interruptedBy) => interruptedBy,
    parserFor: (stream) =>
      new RankOutputParser(stream, (line) => {
        if (!isIgnorable(line)) options.onLine(line);
      }),
    startFailure: (error) =>
      new FfError('EXEC_FAILED', `could not start mpirun through nsenter: ${error.message}`, {
        hint: '`npm run setup` installs util-linux and Open MPI',
        cause: error,
      }),
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

/** Writes a line where it belongs: rank stdout to stdout (stderr when stdout carries JSON), the rest to stderr. */
export function printOutputLine(line: OutputLine, stdoutIsJson: boolean): void {
  const target = line.stream === 'stdout' && !stdoutIsJson ? process.stdout : process.stderr;
  target.write(`${formatOutputLine(line)}\n`);
}
