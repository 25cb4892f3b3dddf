import * as path from 'node:path';
import type { ProbedCluster } from '#runtime/job/run-job';
import { runJobOnCluster } from '#runtime/job/run-job';
import type { Progress } from '#runtime/job/progress';
import { FfError, isFfError } from '#runtime/errors';
import { formatOutputLine, type OutputLine } from '#runtime/launcher/rank-output';
import { pathRows, type PairOutcome } from '#runtime/orchestrator/actual-paths';
import { REPO_ROOT } from '#runtime/util/repo-root';
import type { RankLauncher } from '#runtime/backends/slurm/index';
import { BENCH_CLUSTER, jobForMode, modeById, type BenchMode } from './modes';
import { parseMpiResult, ranksOnDistinctCores, type MpiResult } from './mpi-result';
import { NETPIPE_PROGRAM, netpipeArgs, parseNetpipeOutput } from './netpipe';
import type { MpiPass, Profile } from './profiles';
import type { RunRecord } from './raw';
import { FFBENCH_RMA, FFBENCH_SHMWIN, ONE_SIDED_MCA, parseRmaOutput, parseShmwinOutput, SHMWIN_ARGS } from './rma-result';
import { clearResultFile, resultPathInContainer, takeResultFile } from './result-file';
import { loadAverage } from './machine';
import type { ScheduledRun } from './schedule';

export const FFBENCH_MPI = path.join(REPO_ROOT, 'build', 'bin', 'ffbench_mpi');

/** mpirun output kept for a failed run's report. */
const OUTPUT_TAIL_LINES = 30;

export interface RunContext {
  readonly probed: ProbedCluster;
  readonly profile: Pick<Profile, 'passes' | 'netpipe'>;
  /** ffbench_mpi --validate: every received byte is checked (timings then mean nothing). */
  readonly validate: boolean;
  readonly timeoutSeconds: number;
  readonly progress: Progress;
  readonly interrupt: AbortSignal;
  /** Containers per host of the cluster (default BENCH_CLUSTER's): passes with more ranks need more. */
  readonly containersPerHost?: number;
  /** Starts the ranks instead of mpirun: srun of the cluster's embedded Slurm (ffrun bench --backend slurm). */
  readonly launcher?: RankLauncher;
}

/** ffbench_mpi's arguments for one pass; rank 0 writes the JSON into host 0's shared directory. */
export function mpiArgs(pass: MpiPass, validate: boolean): string[] {
  return [
    pass.benchmark,
    '--sizes',
    pass.sizes.join(','),
    ...(pass.iterations === null ? [] : ['--iterations', String(pass.iterations)]),
    ...(pass.warmup === null ? [] : ['--warmup', String(pass.warmup)]),
    ...(validate ? ['--validate'] : []),
    '--json',
    resultPathInContainer('mpi'),
  ];
}

interface Program {
  readonly command: string;
  readonly args: string[];
  readonly ranks: number;
  /** MCA parameters the program needs in every mode, over the mode's own. */
  readonly mca?: Readonly<Record<string, string>>;
}

function programOf(run: ScheduledRun, context: RunContext): Program {
  if (run.work.kind === 'rma') return { command: FFBENCH_RMA, args: [], ranks: 2, mca: ONE_SIDED_MCA };
  if (run.work.kind === 'shmwin') return { command: FFBENCH_SHMWIN, args: [...SHMWIN_ARGS], ranks: 2, mca: ONE_SIDED_MCA };
  if (run.work.kind === 'netpipe') {
    if (context.profile.netpipe === null) throw new FfError('INTERNAL', 'a NetPIPE run was scheduled without a NetPIPE plan');
    return { command: NETPIPE_PROGRAM, args: netpipeArgs(context.profile.netpipe), ranks: 2 };
  }
  const pass = context.profile.passes[run.work.pass];
  if (pass === undefined) throw new FfError('INTERNAL', `run ${run.index} names pass ${run.work.pass}, which the profile does not have`);
  return { command: FFBENCH_MPI, args: mpiArgs(pass, context.validate), ranks: pass.ranks ?? 2 };
}

/**
 * Runs one scheduled measurement on the benchmark's cluster and records it. A run that cannot measure
 * (mpirun fails, times out, writes no valid result) is `failed`; one that measured something other than
 * its mode claims (the BTL reports another path, ranks not on distinct cores, bytes corrupted) is
 * `invalid`. Only an interruption throws.
 */
export async function executeRun(run: ScheduledRun, context: RunContext): Promise<RunRecord> {
  const mode = modeById(run.mode);
  const program = programOf(run, context);
  const job = jobForMode(program.mca === undefined ? mode : { ...mode, mca: { ...mode.mca, ...program.mca } }, program, context.timeoutSeconds, {
    ranks: program.ranks,
    containersPerHost: context.containersPerHost ?? BENCH_CLUSTER.containersPerHost,
  });
  const tail: string[] = [];
  // The one-sided programs print their results on rank 0's stdout (a few short lines each).
  const rankZeroStdout: string[] = [];
  const onLine = (line: OutputLine): void => {
    if (line.rank === 0 && line.stream === 'stdout') rankZeroStdout.push(line.text);
    tail.push(formatOutputLine(line));
    if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
  };
  const kind = run.work.kind;
  const sharedDir = context.probed.cluster.hosts[0]!.sharedDir;
  if (kind === 'mpi' || kind === 'netpipe') clearResultFile(sharedDir, kind);
  const startedAt = new Date();
  const load1 = loadAverage()[0];
  const outcome = await runJobOnCluster(
    context.probed,
    job.spec,
    job.slots,
    {
      progress: context.progress,
      interrupt: context.interrupt,
      onPlan: () => {},
      onLine,
    },
    context.launcher,
  );
  if (context.interrupt.aborted) {
    throw new FfError('INTERRUPTED', `interrupted by ${String(context.interrupt.reason)} during the ${mode.id} run; the cluster is being removed`);
  }
  const base = {
    index: run.index,
    repetition: run.repetition,
    mode: run.mode,
    work: run.work,
    startedAt: startedAt.toISOString(),
    durationMs: outcome.mpirun.durationMs,
    load1,
    exitCode: outcome.mpirun.exitCode,
    paths: {
      ...pathRows(outcome.plan, outcome.outcomes),
      declined: (outcome.outcomes ?? []).flatMap((row, from) => row.flatMap((o, to) => (o.reason === undefined ? [] : [{ from, to, reason: o.reason }]))),
    },
  };
  const failed = (problem: string): RunRecord => ({ ...base, status: 'failed', problem, output: tail, mpi: null, netpipe: null });
  if (outcome.mpirun.timedOut) return failed(`timed out after ${context.timeoutSeconds} s`);
  if (outcome.mpirun.exitCode !== 0) return failed(`mpirun exited with code ${outcome.mpirun.exitCode}`);

  let measured: Pick<RunRecord, 'mpi' | 'netpipe' | 'rma'>;
  try {
    if (kind === 'rma' || kind === 'shmwin') {
      measured = { mpi: null, netpipe: null, rma: kind === 'rma' ? parseRmaOutput(rankZeroStdout) : parseShmwinOutput(rankZeroStdout) };
    } else {
      measured =
        kind === 'netpipe'
          ? { mpi: null, netpipe: parseNetpipeOutput(takeResultFile(sharedDir, kind, 'NetPIPE'), 'NetPIPE output') }
          : { mpi: parseMpiResult(takeResultFile(sharedDir, kind, 'ffbench_mpi'), `ffbench_mpi (${mode.id})`), netpipe: null };
    }
  } catch (error) {
    if (isFfError(error)) return failed(error.message);
    throw error;
  }
  const problem = pathProblem(mode, outcome.outcomes) ?? (measured.mpi === null ? null : resultProblem(measured.mpi, context.validate));
  return { ...base, status: problem === null ? 'ok' : 'invalid', problem, output: problem === null ? [] : tail, ...measured };
}

/**
 * For modes with the freeflow BTL: both directions of the pair must have used the mode's path, as the
 * BTL reported it. Other modes name one transport only, so Open MPI had no other path to take.
 */
export function pathProblem(mode: BenchMode, outcomes: readonly (readonly PairOutcome[])[] | null): string | null {
  if (outcomes === null) return null;
  const problems: string[] = [];
  // Every ordered pair of the run's ranks. With more than 2 ranks some pairs never talk (mr pairs rank i
  // with i + n/2 only) and the BTL reports nothing for them: only a pair that used another path is wrong,
  // and at least one must have used the mode's.
  const ranks = Math.max(2, outcomes.length);
  const pairs = Array.from({ length: ranks }, (_, from) => Array.from({ length: ranks }, (_, to) => [from, to] as const))
    .flat()
    .filter(([from, to]) => from !== to);
  if (ranks > 2 && !pairs.some(([from, to]) => outcomes[from]?.[to]?.actual === mode.expectedPath)) {
    problems.push(`no pair of the ${ranks} ranks used ${mode.expectedPath}`);
  }
  for (const [from, to] of pairs) {
    const outcome = outcomes[from]?.[to];
    if (outcome?.actual === mode.expectedPath || (ranks > 2 && outcome?.actual === 'unknown')) continue;
    const used = outcome === undefined || outcome.actual === 'unknown' ? 'an unreported path' : outcome.actual;
    problems.push(`rank ${from} -> rank ${to} used ${used}${outcome?.reason === undefined ? '' : ` (${outcome.reason})`}, not ${mode.expectedPath}`);
  }
  return problems.length === 0 ? null : `the BTL reports: ${problems.join('; ')}`;
}

function resultProblem(result: MpiResult, validate: boolean): string | null {
  if (!result.complete) return 'ffbench_mpi stopped before its last size';
  if (validate && result.validation.passed !== true)
    return `validation did not pass (${result.validation.bad_bytes} bad of ${result.validation.checked_bytes} checked bytes)`;
  if (!validate && !ranksOnDistinctCores(result)) return `the ranks were not pinned to distinct cores (cpus ${result.job.cpus.join(', ')})`;
  return null;
}
