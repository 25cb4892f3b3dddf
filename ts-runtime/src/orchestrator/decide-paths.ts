import type { InterHostMode, NetworkMode } from '../spec/schema';
import type { HostCapabilities } from '../native/capabilities';
import type { PathKind } from './path-kind';
import type { RankSlot } from './placement';

/** Which plane carries pairs on different hosts, and why; ffrun prints the reason under the plan. */
export interface InterHostDecision {
  readonly requested: InterHostMode;
  readonly plane: 'tcp' | 'handoff' | 'router';
  readonly reason: string;
}

/**
 * The inter-host plane of a job. `auto` stays `tcp` (the overlay) for now: the freeflow BTL does not
 * carry `h` yet, so a pair planned `h` is declined by the BTL (`path-table-says-handoff`) and falls to the
 * tcp BTL over the overlay anyway; `auto` switches to `handoff` only once the BTL carries it and the whole
 * test/mpi manifest passes across hosts with it (issue 8).
 */
export function decideInterHost(network: NetworkMode, requested: InterHostMode): InterHostDecision {
  if (network === 'overlay') return { requested, plane: 'tcp', reason: 'network overlay: every pair between containers uses TCP over the overlay' };
  if (requested === 'handoff') return { requested, plane: 'handoff', reason: 'handoff requested (--inter-host handoff / interHost: handoff): ffagent sockets over the host network' };
  if (requested === 'router') return { requested, plane: 'router', reason: 'router requested (--inter-host router / interHost: router): ranks -> shared memory -> ffagent -> UCX -> ffagent -> shared memory' };
  if (requested === 'tcp') return { requested, plane: 'tcp', reason: 'tcp requested (--inter-host tcp / interHost: tcp): TCP over the overlay' };
  return { requested, plane: 'tcp', reason: 'auto: TCP over the overlay (handoff is opt-in until the BTL carries it: --inter-host handoff)' };
}

/**
 * Decides the path of every ordered rank pair.
 * - the same rank: `self`.
 * - network `freeflow`, the same host, and the host's shared directory is in memory with room: `shm`.
 * - network `overlay` (the status quo): only ranks in the same container share memory (Open MPI's
 *   vader); every other pair is `tcp`, because containers do not share IPC or PID namespaces.
 * - network `freeflow`, different hosts: the inter-host plane (decideInterHost), `handoff` or `tcp`.
 * - otherwise (same host without usable shared memory) `tcp` over the overlay. `router` would be chosen
 *   across hosts only when both hosts have an active RDMA port and a FreeFlow router runs on them; no
 *   router exists in this project yet and this machine has no RDMA device, so it is never chosen (the
 *   probe records `rdma` for that day).
 */
export function decidePaths(
  ranks: readonly RankSlot[],
  hosts: readonly HostCapabilities[],
  network: NetworkMode,
  interHost: InterHostDecision = decideInterHost(network, 'auto'),
): PathKind[][] {
  return ranks.map((from) => ranks.map((to) => decidePair(from, to, hosts, network, interHost)));
}

function decidePair(from: RankSlot, to: RankSlot, hosts: readonly HostCapabilities[], network: NetworkMode, interHost: InterHostDecision): PathKind {
  if (from.rank === to.rank) return 'self';
  const sameHost = from.host === to.host;
  const sameContainer = sameHost && from.containerIndex === to.containerIndex;
  if (network === 'overlay') return sameContainer ? 'shm' : 'tcp';
  if (sameHost && canShareMemory(hosts[from.host])) return 'shm';
  if (!sameHost && interHost.plane === 'handoff') return 'handoff';
  if (!sameHost && interHost.plane === 'router') return 'router';
  return 'tcp';
}

/** Filesystems whose files live in memory: segments there cost no disk I/O. */
const MEMORY_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

/** Whether co-located ranks can put their shared segments into this host's shared directory. */
export function canShareMemory(host: HostCapabilities | undefined): boolean {
  return host !== undefined && MEMORY_FILESYSTEMS.has(host.sharedDir.fs) && host.sharedDir.bytes > 0;
}
