import type { ModeId } from './modes';
import type { Profile } from './profiles';

/** What one run measures: a pass of ffbench_mpi (index into the profile's passes), NetPIPE, or a one-sided program (rma-result.ts). */
export type RunWork = { readonly kind: 'mpi'; readonly pass: number } | { readonly kind: 'netpipe' } | { readonly kind: 'rma' } | { readonly kind: 'shmwin' };

export interface ScheduledRun {
  /** Position in the schedule, from 0. */
  readonly index: number;
  /** From 1. */
  readonly repetition: number;
  readonly mode: ModeId;
  readonly work: RunWork;
}

/**
 * The order of all runs: repetitions one after the other, and within one the same measurement in every
 * mode back to back (A B C, A B C, ...). On a machine whose speed drifts (other work, frequency, the
 * neighbour's noise), modes measured close in time see the same conditions, so their ratios hold even
 * when the absolute numbers move; repetition r of every mode is comparable with repetition r of the others.
 */
export function scheduleRuns(profile: Pick<Profile, 'modes' | 'passes' | 'netpipe' | 'rma'>, repetitions: number): ScheduledRun[] {
  const runs: ScheduledRun[] = [];
  const add = (repetition: number, mode: ModeId, work: RunWork): void => {
    runs.push({ index: runs.length, repetition, mode, work });
  };
  for (let repetition = 1; repetition <= repetitions; repetition++) {
    profile.passes.forEach((_, pass) => {
      for (const mode of profile.modes) add(repetition, mode, { kind: 'mpi', pass });
    });
    for (const mode of profile.netpipe?.modes ?? []) add(repetition, mode, { kind: 'netpipe' });
    if (profile.rma === true) {
      for (const kind of ['rma', 'shmwin'] as const) for (const mode of profile.modes) add(repetition, mode, { kind });
    }
  }
  return runs;
}
