import * as assert from 'uvu/assert';
import { parseRunArgs } from '#runtime/cli/run/args';
import { jobVolumes, runJobOnCluster, withProbedCluster, type JobOnCluster, type ProbedCluster } from '#runtime/job/run-job';
import type { OutputLine } from '#runtime/launcher/rank-output';
import { pathChars } from '#runtime/orchestrator/path-kind';
import { placeRanks } from '#runtime/orchestrator/placement';
import { resolveJobUser } from '#runtime/spec/user';

export interface FaultedJob {
  readonly jobId: string;
  readonly result: JobOnCluster;
  /** The ranks' output lines, joined. */
  readonly output: string;
  /** ffrun's progress notes (warnings) in order. */
  readonly notes: readonly string[];
  /** Path rows as planned and as the BTL reported them (`smht…`). */
  readonly planned: readonly string[];
  readonly actual: readonly string[];
}

/**
 * Runs `ffrun <args>` (a multi-host job on network freeflow: agents run) through ffrun's own job
 * functions, with `fault` applied between the cluster's start and the job's plan: a fault no ffrun
 * option makes (a dead agent, a filtered port, probe results changed). `fault` returns what the job then
 * runs on; nothing else is replaced.
 */
export async function runJobWithFault(args: readonly string[], fault: (probed: ProbedCluster) => Promise<ProbedCluster> | ProbedCluster): Promise<FaultedJob> {
  const { spec } = parseRunArgs(args);
  const slots = placeRanks(spec.cluster, spec.ranks, spec.placement);
  const lines: OutputLine[] = [];
  const notes: string[] = [];
  const hooks = {
    progress: { step: <T>(_label: string, work: () => Promise<T>) => work(), note: (message: string) => void notes.push(message) },
    interrupt: new AbortController().signal,
    onPlan: () => {},
    onLine: (line: OutputLine) => void lines.push(line),
  };
  let jobId = '';
  const { result } = await withProbedCluster(
    { ...spec.cluster, ...jobVolumes(spec), user: resolveJobUser(spec.user), agents: true },
    hooks,
    async (probed): Promise<JobOnCluster> => {
      jobId = probed.cluster.jobId;
      return runJobOnCluster(await fault(probed), spec, slots, hooks);
    },
  );
  return {
    jobId,
    result,
    output: lines.map((line) => line.text).join('\n'),
    notes,
    planned: result.plan.paths.map(pathChars),
    actual: (result.outcomes ?? []).map((row) => pathChars(row.map((outcome) => outcome.actual))),
  };
}

/** The job passed, and its pairs were planned as `rows` and carried so (the BTL's own report). */
export function assertPassedAsPlanned(job: FaultedJob, rows: readonly string[]): void {
  assert.is(job.result.mpirun.exitCode, 0, job.output);
  assert.equal(job.planned, rows);
  assert.equal(job.actual, rows, job.output);
}
