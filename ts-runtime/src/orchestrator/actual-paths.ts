import type { BtlReport } from './btl-report';
import { pathChars, type PathKind } from './path-kind';
import type { JobPlan } from './plan';

/** What a pair actually used: `unknown` when the sending rank wrote no report or never met the peer. */
export interface PairOutcome {
  readonly planned: PathKind;
  readonly actual: PathKind | 'unknown';
  /** The BTL's stable reason when it declined the pair, or NO_REPORT. */
  readonly reason?: string;
}

/** The reason of a pair whose sender finished successfully without a report: the freeflow BTL was not
 * loaded, was disabled at start-up, or did not see the job's directory, so its traffic went elsewhere. */
export const NO_REPORT = 'no-report-from-a-rank-that-finished';

/**
 * Compares the plan with the BTL reports. A declined pair went to the next BTL of `self,vader,freeflow,tcp`,
 * so it used tcp. A rank without a report is only suspicious if the job succeeded: a rank that died
 * before MPI_Finalize cannot write one.
 */
export function compareWithReports(plan: JobPlan, reports: ReadonlyMap<number, BtlReport>, job: { readonly succeeded: boolean }): PairOutcome[][] {
  return plan.paths.map((row, from) =>
    row.map((planned, to): PairOutcome => {
      if (from === to) return { planned, actual: 'self' };
      const report = reports.get(from);
      if (report === undefined) return job.succeeded ? { planned, actual: 'unknown', reason: NO_REPORT } : { planned, actual: 'unknown' };
      const outcome = report.peers.get(to);
      if (outcome === undefined) return { planned, actual: 'unknown' };
      if (outcome.kind === 'shm' || outcome.kind === 'handoff' || outcome.kind === 'router') return { planned, actual: outcome.kind };
      return { planned, actual: 'tcp', reason: outcome.kind === 'declined' ? outcome.reason : undefined };
    }),
  );
}

/** The paths the freeflow BTL itself carries: a pair planned one of them that used something else broke
 * freeflow's promise. (`tcp` is the tcp BTL's.) */
const FREEFLOW_PATHS: ReadonlySet<PathKind> = new Set(['shm', 'handoff', 'router']);

/** A pair the plan gave shared memory or handoff that did not use it: freeflow's promise broken. Until
 * the BTL carries `h`, every pair planned `h` is one (declined: path-table-says-handoff), by design loud. */
export function isFallback(outcome: PairOutcome): boolean {
  if (!FREEFLOW_PATHS.has(outcome.planned) || outcome.actual === outcome.planned) return false;
  return outcome.actual !== 'unknown' || outcome.reason === NO_REPORT;
}

export function fallbacks(outcomes: readonly (readonly PairOutcome[])[]): Array<{ from: number; to: number; outcome: PairOutcome }> {
  return outcomes.flatMap((row, from) => row.flatMap((outcome, to) => (isFallback(outcome) ? [{ from, to, outcome }] : [])));
}

/** The planned and the reported path matrices as rows of characters (docs/path-table.md), as the --json
 * document and ffbench's raw.json carry them; `actual` is null when the BTL was not in use. */
export function pathRows(plan: Pick<JobPlan, 'paths'>, outcomes: readonly (readonly PairOutcome[])[] | null): { planned: string[]; actual: string[] | null } {
  return { planned: plan.paths.map(pathChars), actual: outcomes?.map((row) => pathChars(row.map((outcome) => outcome.actual))) ?? null };
}
