import type { NetworkMode } from '../spec/schema';
import type { HostCapabilities } from '../native/capabilities';
import type { PathKind } from './path-kind';
import type { RankSlot } from './placement';

/**
 * Decides the path of every ordered rank pair.
 * - the same rank: `self`.
 * - network `freeflow`, the same host, and the host's shared directory is in memory with room: `shm`.
 * - network `overlay` (the status quo): only ranks in the same container share memory (Open MPI's
 *   vader); every other pair is `tcp`, because containers do not share IPC or PID namespaces.
 * - otherwise `tcp` over the overlay. `router` would be chosen across hosts only when both hosts have an
 *   active RDMA port and a FreeFlow router runs on them; no router exists in this project yet and this
 *   machine has no RDMA device, so it is never chosen (the probe records `rdma` for that day).
 */
export function decidePaths(ranks: readonly RankSlot[], hosts: readonly HostCapabilities[], network: NetworkMode): PathKind[][] {
  return ranks.map((from) => ranks.map((to) => decidePair(from, to, hosts, network)));
}

function decidePair(from: RankSlot, to: RankSlot, hosts: readonly HostCapabilities[], network: NetworkMode): PathKind {
  if (from.rank === to.rank) return 'self';
  const sameHost = from.host === to.host;
  const sameContainer = sameHost && from.containerIndex === to.containerIndex;
  if (network === 'overlay') return sameContainer ? 'shm' : 'tcp';
  if (sameHost && canShareMemory(hosts[from.host])) return 'shm';
  return 'tcp';
}

/** Filesystems whose files live in memory: segments there cost no disk I/O. */
const MEMORY_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

/** Whether co-located ranks can put their shared segments into this host's shared directory. */
export function canShareMemory(host: HostCapabilities | undefined): boolean {
  return host !== undefined && MEMORY_FILESYSTEMS.has(host.sharedDir.fs) && host.sharedDir.bytes > 0;
}
