import { FfError } from '../errors';
import type { PlacementStrategy } from '../spec/schema';

export interface ClusterShape {
  readonly hosts: number;
  readonly containersPerHost: number;
  readonly slotsPerContainer: number;
}

/** Where one rank runs, before the cluster (and so the container names) exists. */
export interface RankSlot {
  readonly rank: number;
  readonly host: number;
  /** The container's index within its host. */
  readonly containerIndex: number;
}

export function totalSlots(shape: ClusterShape): number {
  return shape.hosts * shape.containersPerHost * shape.slotsPerContainer;
}

/**
 * Places ranks onto container slots.
 * - `fill`: fills each container's slots, container after container, host after host, so neighbouring
 *   ranks share a host (what Open MPI's default by-slot mapping does on real nodes).
 * - `round-robin`: one rank per container in turn, hosts interleaved (h0c0, h1c0, h0c1, h1c1, ...), so
 *   neighbouring ranks are on different hosts; after a full round it starts again.
 */
export function placeRanks(shape: ClusterShape, ranks: number, strategy: PlacementStrategy): RankSlot[] {
  const capacity = totalSlots(shape);
  if (ranks > capacity) {
    throw new FfError(
      'TOO_MANY_RANKS',
      `${ranks} ranks do not fit: ${shape.hosts} hosts x ${shape.containersPerHost} containers x ${shape.slotsPerContainer} slots = ${capacity} slots`,
      { hint: 'lower ranks (-n), or raise hosts, containersPerHost or slotsPerContainer (--hosts, --containers-per-host, --slots-per-container)' },
    );
  }
  const order = containerOrder(shape, strategy);
  return Array.from({ length: ranks }, (_, rank) => {
    const index = strategy === 'fill' ? Math.floor(rank / shape.slotsPerContainer) : rank % order.length;
    const container = order[index]!;
    return { rank, host: container.host, containerIndex: container.containerIndex };
  });
}

function containerOrder(shape: ClusterShape, strategy: PlacementStrategy): Array<Omit<RankSlot, 'rank'>> {
  const order: Array<Omit<RankSlot, 'rank'>> = [];
  if (strategy === 'fill') {
    for (let host = 0; host < shape.hosts; host++)
      for (let containerIndex = 0; containerIndex < shape.containersPerHost; containerIndex++) order.push({ host, containerIndex });
  } else {
    for (let containerIndex = 0; containerIndex < shape.containersPerHost; containerIndex++)
      for (let host = 0; host < shape.hosts; host++) order.push({ host, containerIndex });
  }
  return order;
}
