import type { LaunchMode } from './launch-mode';
import type { NetworkMode, PlacementStrategy } from '../spec/schema';
import type { InterHostDecision } from './decide-paths';
import type { PathKind } from './path-kind';
import type { RankSlot } from './placement';

export interface PlacedRank extends RankSlot {
  /** The container's name, as Open MPI sees it (hostfile, rankfile). */
  readonly container: string;
}

export interface PlannedHost {
  readonly index: number;
  readonly name: string;
}

/** Everything the orchestrator decided for a job: what the path table records and ffrun prints. */
export interface JobPlan {
  readonly jobId: string;
  readonly key: string;
  readonly network: NetworkMode;
  readonly placement: PlacementStrategy;
  /** One orted per host or per container (docs/node-sharing.md). */
  readonly launch: LaunchMode;
  /** The plane of pairs on different hosts and why (printed under the planned matrix). */
  readonly interHost: InterHostDecision;
  readonly hosts: readonly PlannedHost[];
  readonly ranks: readonly PlacedRank[];
  /** paths[i][j]: the path from rank i to rank j. */
  readonly paths: readonly (readonly PathKind[])[];
}
