import type { JobPlan } from '#runtime/orchestrator/plan';

/** The example of docs/path-table.md. */
export const EXAMPLE_PLAN: JobPlan = {
  jobId: '3f9c2a',
  key: '8d2f0a4be61c9d7700112233445566ff',
  network: 'freeflow',
  launch: 'host',
  placement: 'fill',
  interHost: { requested: 'tcp', agents: [], pairs: [{ hosts: [0, 1], plane: 'tcp', reason: 'FF_PLANE_REASON_USER_TCP', why: 'tcp' }] },
  hosts: [
    { index: 0, name: 'h0' },
    { index: 1, name: 'h1' },
  ],
  ranks: [0, 1, 2, 3].map((rank) => ({ rank, host: rank >> 1, containerIndex: rank & 1, container: `ff-3f9c2a-h${rank >> 1}c${rank & 1}` })),
  paths: [
    ['self', 'shm', 'tcp', 'tcp'],
    ['shm', 'self', 'tcp', 'tcp'],
    ['tcp', 'tcp', 'self', 'shm'],
    ['tcp', 'tcp', 'shm', 'self'],
  ],
};
