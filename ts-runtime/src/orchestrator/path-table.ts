import { pathChars, PATH_SINCE_VERSION, type PathKind } from './path-kind';
import type { PlacedRank, PlannedHost } from './plan';

/** The content of a path table (docs/path-table.md), version 1 or 2. */
export interface PathTable {
  readonly jobId: string;
  readonly key: string;
  readonly hosts: readonly PlannedHost[];
  readonly ranks: readonly Pick<PlacedRank, 'rank' | 'host' | 'container'>[];
  readonly paths: readonly (readonly PathKind[])[];
}

/** Format 2 added the path `h` (handoff); the core (native/src/path_table.c) reads both. */
const OLDEST_VERSION = 1;
const HEADER = 'freeflow-path-table';

/** The lowest version that defines every path of the table: a job without `h` writes version 1, byte for
 * byte what ffrun wrote before format 2, so readers of version 1 (an older installed BTL) keep working. */
export function pathTableVersionFor(paths: readonly (readonly PathKind[])[]): number {
  return Math.max(OLDEST_VERSION, ...paths.flat().map((kind) => PATH_SINCE_VERSION[kind]));
}

export function formatPathTable(table: PathTable): string {
  const lines = [
    `# written by ffrun; format: docs/path-table.md`,
    `${HEADER} ${pathTableVersionFor(table.paths)}`,
    `job ${table.jobId}`,
    `key ${table.key}`,
    `hosts ${table.hosts.length}`,
    ...table.hosts.map((host) => `host ${host.index} ${host.name}`),
    `ranks ${table.ranks.length}`,
    ...table.ranks.map((rank) => `rank ${rank.rank} ${rank.host} ${rank.container}`),
    'paths',
    ...table.paths.map(pathChars),
    'end',
  ];
  return `${lines.join('\n')}\n`;
}
