import type { JobPlan } from './plan';

/**
 * Which MPI one-sided (osc) components a job may use, and what serves its windows (docs/onesided.md).
 *
 * Debian's openmpi-mca-params.conf sets `osc = ^ucx,pt2pt`, leaving osc sm (shared windows, one node) and
 * osc rdma (needs ONE BTL module with RDMA and atomics that reaches every rank of the window). Open MPI
 * asks every allowed component per window and takes the highest priority that accepts: rdma (101) when one
 * module reaches the whole window, ucx (60) otherwise, pt2pt (10) last. The freeflow BTL's RDMA module
 * reaches shm (`m`), handoff (`h`) and router (`r`) pairs, so only windows spanning tcp pairs (`t`: the
 * overlay network, `--inter-host tcp`, agents that cannot reach each other) are left to the others.
 * There osc pt2pt refuses MPI_THREAD_MULTIPLE and Open MPI 4.1's tcp BTL has no atomics, so ffrun lets osc
 * ucx in (its own UCX worker over UCX's tcp transport, with UCX's software RMA and atomics; it accepts
 * every thread level). Jobs without tcp pairs keep ucx out: they never need it, and it would open a UCX
 * context for nothing. Plain mpirun outside ffrun keeps Debian's default.
 */
export const OSC_WITHOUT_TCP_PAIRS = '^ucx';
/** Every component but the monitoring wrapper: pt2pt stays as the last resort for a window ucx declines. */
export const OSC_WITH_TCP_PAIRS = 'sm,rdma,ucx,pt2pt';

export interface OneSidedPlan {
  /** The `osc` MCA value. */
  readonly components: string;
  /** One line for the printed plan: which component serves windows across which pairs. */
  readonly summary: string;
}

export function planOneSided(plan: JobPlan): OneSidedPlan {
  const containers = new Set(plan.ranks.map((rank) => rank.container)).size;
  if (containers <= 1) {
    return { components: OSC_WITHOUT_TCP_PAIRS, summary: 'osc rdma over freeflow (or vader) for every window: all ranks share one container' };
  }
  if (plan.network === 'overlay') {
    return {
      components: OSC_WITH_TCP_PAIRS,
      summary: 'osc ucx (UCX over tcp) for windows across containers, every thread level; osc rdma over vader within one container',
    };
  }
  if (plan.paths.some((row) => row.includes('tcp'))) {
    return {
      components: OSC_WITH_TCP_PAIRS,
      summary: 'osc rdma over the freeflow BTL for windows whose pairs are all shm, handoff or router; osc ucx (UCX over tcp) for windows spanning tcp pairs',
    };
  }
  return {
    components: OSC_WITHOUT_TCP_PAIRS,
    summary: 'osc rdma over the freeflow BTL (single copy or target-side RDMA over shm rings, handoff sockets and router routes) for every window',
  };
}
