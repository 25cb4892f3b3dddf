import { spawn } from 'node:child_process';
import { FfError } from '../../errors';
import type { OutputLine } from '../../launcher/rank-output';
import type { MpirunOutcome } from '../../launcher/run-mpirun';
import { superviseLauncher } from '../../launcher/supervise-launcher';
import { SrunOutputParser } from './srun-output';
import { srunFailure } from './failures';

export interface SrunRunOptions {
  /** Prefix that puts srun where it reaches slurmctld (nsenter into the launcher namespace), or none. */
  readonly prefix: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  readonly interrupt: AbortSignal;
  readonly onLine: (line: OutputLine) => void;
}

/**
 * Runs srun and resolves with its outcome in mpirun's terms (srun exits with the highest task exit code).
 * srun runs in its own process group: on SIGINT/SIGTERM to ffrun or the timeout it gets one SIGTERM (it
 * cancels the step), and its group SIGKILL after the grace period. Ranks that outlive srun die with the
 * cluster's teardown.
 */
export function runSrun(argv: readonly string[], options: SrunRunOptions): Promise<MpirunOutcome> {
  const child = spawn(options.prefix[0] ?? argv[0]!, [...options.prefix.slice(1), ...(options.prefix.length > 0 ? argv : argv.slice(1))], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env,
    detached: true,
  });
  return superviseLauncher(child, {
    timeoutMs: options.timeoutMs,
    interrupt: options.interrupt,
    // srun takes one SIGINT as "print the tasks' status" (a second within a second aborts); SIGTERM cancels the step
    signalFor: () => 'SIGTERM',
    parserFor: (stream) => new SrunOutputParser(stream, options.onLine),
    startFailure: (error) =>
      new FfError('SLURM_NOT_INSTALLED', `could not start srun: ${error.message}`, { hint: 'scripts/setup.sh installs slurm-client', cause: error }),
  });
}

/**
 * runSrun, then srun's own failures (the plugin missing or refusing, the controller unreachable) as their
 * typed errors, from srun's own lines (those without a rank); the ranks' failures stay the job's outcome.
 */
export async function runSrunChecked(argv: readonly string[], options: SrunRunOptions): Promise<MpirunOutcome> {
  const lines: string[] = [];
  const outcome = await runSrun(argv, {
    ...options,
    onLine: (line) => {
      if (line.rank === undefined && lines.length < 200) lines.push(line.text);
      options.onLine(line);
    },
  });
  const failure = srunFailure(outcome, lines);
  if (failure !== undefined) throw failure;
  return outcome;
}
