import type { BtlReport } from './btl-report';
import type { PathKind } from './path-kind';
import type { JobPlan } from './plan';

/** What a pair actually used: `unknown` when the sending rank wrote no report or never met the peer. */
export interface PairOutcome {
  readonly planned: PathKind;
  readonly actual: PathKind | 'unknown';
  /** The BTL's stable reason when it declined the pair. */
  readonly reason?: string;
}

/**
 * Compares the plan with the BTL reports. A declined pair went to the next BTL of `self,freeflow,tcp`,
 * so it used tcp.
 */
export function compareWithReports(plan: JobPlan, reports: ReadonlyMap<number, BtlReport>): PairOutcome[][] {
  return plan.paths.map((row, from) =>
    row.map((planned, to): PairOutcome => {
      if (from === to) return { planned, actual: 'self' };
      const outcome = reports.get(from)?.peers.get(to);
      if (outcome === undefined) return { planned, actual: 'unknown' };
      if (outcome.kind === 'shm') return { planned, actual: 'shm' };
      return { planned, actual: 'tcp', reason: outcome.reason };
    }),
  );
}

/** A pair the plan gave shared memory that the BTL reported on another path: freeflow's promise broken. */
export function isFallback(outcome: PairOutcome): boolean {
  return outcome.planned === 'shm' && outcome.actual !== 'shm' && outcome.actual !== 'unknown';
}

export function fallbacks(outcomes: readonly (readonly PairOutcome[])[]): Array<{ from: number; to: number; outcome: PairOutcome }> {
  return outcomes.flatMap((row, from) => row.flatMap((outcome, to) => (isFallback(outcome) ? [{ from, to, outcome }] : [])));
}
