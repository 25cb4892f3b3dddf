/**
 * The path a rank pair's traffic takes. `handoff` (path table format 2) is a TCP socket over the host
 * network that the hosts' ffagents connect and hand to the ranks (docs/agent.md); the orchestrator plans it
 * across hosts only when the job asks for it (see decide-paths.ts). `router` (through per-host routers, the
 * FreeFlow design for RDMA fabrics) is part of the vocabulary so that tables, reports and printers handle
 * it, but the orchestrator never chooses it yet: no router exists in this project.
 */
export const PATH_KINDS = ['self', 'shm', 'tcp', 'handoff', 'router'] as const;
export type PathKind = (typeof PATH_KINDS)[number];

/** The one-character codes of docs/path-table.md. */
export const PATH_CHAR: Readonly<Record<PathKind, string>> = { self: 's', shm: 'm', tcp: 't', handoff: 'h', router: 'r' };

/** One row of a path matrix as characters ("smth"); `?` where a pair's path is unknown (no BTL report). */
export function pathChars(row: readonly (PathKind | 'unknown')[]): string {
  return row.map((kind) => (kind === 'unknown' ? '?' : PATH_CHAR[kind])).join('');
}

/** The path table format version that introduced each path; a table is written in the lowest version that
 * can express all of its paths, so jobs that plan no `h` keep writing format 1 exactly as before. */
export const PATH_SINCE_VERSION: Readonly<Record<PathKind, number>> = { self: 1, shm: 1, tcp: 1, handoff: 2, router: 1 };
