import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from '../../ts-runtime/src/util/repo-root';

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
