import type { JobPlan } from './plan';

/**
 * Which MPI one-sided (osc) components a job may use, and what serves its windows (docs/onesided.md).
 *
 * Debian's openmpi-mca-params.conf sets `osc = ^ucx,pt2pt`, leaving osc sm (shared windows, one node) and
 * osc rdma (needs ONE BTL module with RDMA and atomics that reaches every rank of the window). Between
 * containers that default fails with MPI_ERR_WIN whenever osc rdma finds no such module. ffrun keeps ucx
 * out (its transports here are tcp only) and lets osc pt2pt back in: Open MPI asks rdma first (priority 101)
 * and only windows rdma cannot serve fall to pt2pt (priority 10), which works over any BTL but refuses
 * MPI_THREAD_MULTIPLE. Plain mpirun outside ffrun keeps Debian's default.
 */
export const OSC_COMPONENTS = '^ucx';

export interface OneSidedPlan {
  /** The `osc` MCA value. */
  readonly components: string;
  /** One line for the printed plan: which component serves windows across which pairs. */
  readonly summary: string;
}

export function planOneSided(plan: JobPlan): OneSidedPlan {
  const containers = new Set(plan.ranks.map((rank) => rank.container)).size;
  // the rdma module reaches shm and handoff pairs only (no router transport yet)
  const anyTcp = plan.paths.some((row) => row.includes('tcp') || row.includes('router'));
  let summary: string;
  if (containers <= 1) {
    summary = 'osc rdma over freeflow (or vader) for every window: all ranks share one container';
  } else if (plan.network === 'overlay') {
    summary = 'osc pt2pt for windows across containers (not with MPI_THREAD_MULTIPLE); osc rdma over vader within one container';
  } else if (anyTcp) {
    summary =
      'osc rdma over the freeflow BTL for windows whose ranks share a host; osc pt2pt for windows spanning tcp or router pairs ' +
      '(not with MPI_THREAD_MULTIPLE: use --inter-host handoff)';
  } else {
    summary = 'osc rdma over the freeflow BTL (target-side RDMA over shm rings and handoff sockets) for every window';
  }
  return { components: OSC_COMPONENTS, summary };
}
