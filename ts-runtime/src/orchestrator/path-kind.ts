/**
 * The path a rank pair's traffic takes. `router` (through per-host routers, the FreeFlow design for
 * RDMA fabrics) is part of the vocabulary so that tables, reports and printers handle it, but the
 * orchestrator never chooses it yet: it needs an RDMA device and a running router, and this project has
 * neither (see decide-paths.ts).
 */
export const PATH_KINDS = ['self', 'shm', 'tcp', 'router'] as const;
export type PathKind = (typeof PATH_KINDS)[number];

/** The one-character codes of docs/path-table.md. */
export const PATH_CHAR: Readonly<Record<PathKind, string>> = { self: 's', shm: 'm', tcp: 't', router: 'r' };

export function pathKindOfChar(char: string): PathKind | undefined {
  return PATH_KINDS.find((kind) => PATH_CHAR[kind] === char);
}
