import type { JobPlan } from '../orchestrator/plan';

/**
 * How mpirun starts a job's ranks (docs/node-sharing.md).
 * - `host`: one orted per simulated host, in the host's network namespace; ffrun-fork-agent starts each
 *   rank inside its planned container. Co-located containers are then one node to Open MPI:
 *   MPI_COMM_TYPE_SHARED groups a host's ranks and MPI_Win_allocate_shared spans its containers (backing
 *   files in the host's shared directory).
 * - `container`: one orted per container, every container its own node (the network `overlay` is the
 *   status quo for comparison: there vader must not reach across containers, which a host-wide node with
 *   its backing files in the shared directory would let it do).
 */
export type LaunchMode = 'host' | 'container';

export function launchModeOf(plan: Pick<JobPlan, 'network'>): LaunchMode {
  return plan.network === 'freeflow' ? 'host' : 'container';
}

export function describeLaunch(plan: Pick<JobPlan, 'network'>): string {
  return launchModeOf(plan) === 'host'
    ? 'one orted per host; each rank enters its container (co-located containers are one MPI node: shared communicators and windows span them)'
    : 'one orted per container (every container is its own MPI node)';
}
