import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { ffrunArgs, type RunFlags } from './ffrun-args';
import type { FfrunResult } from './ffrun';

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

/**
 * ffrun's arguments for a run of the manifest with `--json` and `plane` (the network and inter-host
 * options): its placement (enough slots per container for its ranks), timeout and name, and the program
 * relative to the repository (so that jobs can share a cluster).
 */
export function manifestRunArgs(run: ManifestRun, plane: Pick<RunFlags, 'network' | 'interHost'>): string[] {
  const flags: RunFlags = {
    ranks: run.ranks,
    hosts: run.hosts,
    containersPerHost: run.containersPerHost,
    slotsPerContainer: Math.ceil(run.ranks / (run.hosts * run.containersPerHost)),
    ...plane,
    timeout: run.timeoutSeconds,
    name: run.name,
    json: true,
  };
  return ffrunArgs(flags, [path.join('build', 'bin', run.program), ...run.args]);
}

/** Asserts that a `--json` job (the ranks' output on stderr) ended as the manifest says: its exit, the output it expects and forbids. */
export function assertManifestOutcome(run: ManifestRun, result: Pick<FfrunResult, 'code' | 'stderr'>): void {
  const output = result.stderr;
  if (run.expectExit === 0) assert.is(result.code, 0, output);
  else assert.ok(result.code !== 0 && result.code !== 124, `expected a prompt non-zero exit, got ${result.code}:\n${output}`);
  for (const pattern of run.expectOutput) assert.match(output, new RegExp(pattern, 'm'), `missing /${pattern}/`);
  for (const pattern of run.forbidOutput) assert.not.match(output, new RegExp(pattern, 'm'), `forbidden /${pattern}/`);
}

/**
 * Processes of this checkout's build of `program` (a prefix such as `ffcheck_` matches every program):
 * other sessions on this machine run the same programs from other checkouts at the same time.
 */
export function programMarker(program: string): RegExp {
  return new RegExp(path.join(REPO_ROOT, 'build', 'bin', program).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}
