import { FfError } from '../errors';
import type { LAUNCH_MODES, NetworkMode } from '../spec/schema';

/**
 * How mpirun starts a job's ranks (docs/node-sharing.md).
 * - `host`: one orted per simulated host, in the host's network namespace; ffrun-fork-agent starts each
 *   rank inside its planned container. Co-located containers are then one node to Open MPI:
 *   MPI_COMM_TYPE_SHARED groups a host's ranks and MPI_Win_allocate_shared spans its containers (backing
 *   files in the host's shared directory).
 * - `container`: one orted per container, every container its own node. The network `overlay` (the
 *   status quo for comparison) keeps it: a host-wide node would let vader reach across containers there.
 *   So do jobs with a non-root user: a host's orted runs as root (it must enter containers), and its PMIx
 *   datastore would be root's alone, which the ranks cannot map (MPI_Init fails).
 */
export type LaunchMode = 'host' | 'container';

/** `requested` is the spec's `launch` (the schema already refuses host with network overlay). */
export function chooseLaunch(network: NetworkMode, user: { readonly uid: number }, requested: (typeof LAUNCH_MODES)[number] = 'auto'): LaunchMode {
  const possible = network === 'freeflow' && user.uid === 0;
  if (requested === 'host' && !possible)
    throw new FfError('SPEC_INVALID', `launch host needs a root job on network freeflow (this job: network ${network}, uid ${user.uid})`, {
      hint: "a host's orted runs as root to enter the containers, and non-root ranks cannot map its PMIx datastore: drop --launch host (or launch: host), or run the job as root",
    });
  if (requested === 'container') return 'container';
  return possible ? 'host' : 'container';
}

export function describeLaunch(launch: LaunchMode): string {
  return launch === 'host'
    ? 'one orted per host; each rank enters its container (co-located containers are one MPI node: shared communicators and windows span them)'
    : 'one orted per container (every container is its own MPI node)';
}
