import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';

/** test/mpi/manifest.json: the MPI programs' runs that the end-to-end tests replay through ffrun. */
const manifestSchema = z.object({
  version: z.literal(1),
  runs: z.array(
    z.object({
      name: z.string(),
      program: z.string(),
      args: z.array(z.string()),
      ranks: z.number().int().positive(),
      hosts: z.number().int().positive(),
      containersPerHost: z.number().int().positive(),
      timeoutSeconds: z.number().int().positive(),
      expectExit: z.union([z.literal(0), z.literal('nonzero')]),
      expectOutput: z.array(z.string()).default([]),
      forbidOutput: z.array(z.string()).default([]),
    }),
  ),
});

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestRun = Manifest['runs'][number];

export function loadManifest(): Manifest {
  return manifestSchema.parse(JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'mpi', 'manifest.json'), 'utf8')));
}

/**
 * One run per program among the runs that span hosts (the one with the fewest ranks, manifest order on a
 * tie): what the replays over a second inter-host plane need to show that every program passes on it,
 * without repeating every placement the default plane already covers.
 */
export function onePerProgramAcrossHosts(manifest: Manifest): ManifestRun[] {
  const chosen = new Map<string, ManifestRun>();
  for (const run of manifest.runs) {
    if (run.hosts < 2) continue;
    const current = chosen.get(run.program);
    if (current === undefined || run.ranks < current.ranks) chosen.set(run.program, run);
  }
  return [...chosen.values()];
}
