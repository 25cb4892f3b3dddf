import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { loadManifest, onePerProgramAcrossHosts, type ManifestRun } from './support/manifest';
import { SharedClusters, shapeName, shapeOf, type ClusterShape } from './support/shared-cluster';
import { shmEntries } from './support/leftovers';

/**
 * The freeflow BTL under real MPI programs across real containers: every run of test/mpi/manifest.json
 * (p2p, datatypes, collectives, threads, stress, allpairs, abort, a rank dying mid-transfer; 2 to 8 ranks
 * over 2 to 4 containers per host, one and two hosts, so jobs mix shm and tcp pairs) through ffrun with
 * network freeflow. Each run must end as the manifest says, every pair the plan put on shared memory must
 * have used it (the BTL's own report), and nothing may be left behind. By default (auto) every pair
 * across hosts is planned and carried as `h` (the agents answer, no RDMA here); runs across hosts run a
 * second time with --inter-host tcp (one run per program), so the overlay path between hosts stays covered.
 * Runs of one cluster shape share one cluster (each job with its own key, plan, path tables and mpirun,
 * as ffrun runs it); nothing of a job may be left in the cluster after it, nor of the cluster after all.
 */
const manifest = loadManifest();

const reportSchema = z.object({
  job: z.object({ id: z.string(), network: z.string() }),
  paths: z.object({
    planned: z.array(z.string()),
    actual: z.array(z.string()).nullable().optional(),
    fallbacks: z.array(z.unknown()).optional(),
  }),
});

// Every run (auto: `h` across hosts), and every program once more across hosts over the overlay (`t`).
const plans = [
  ...manifest.runs.map((run) => ({ run, interHost: 'auto' as const })),
  ...onePerProgramAcrossHosts(manifest).map((run) => ({ run, interHost: 'tcp' as const })),
];

/** ffrun's arguments for a run of the manifest. */
function ffrunArgs(run: ManifestRun, interHost: 'auto' | 'tcp'): string[] {
  const slots = Math.ceil(run.ranks / (run.hosts * run.containersPerHost));
  return [
    '-n',
    String(run.ranks),
    '--hosts',
    String(run.hosts),
    '--containers-per-host',
    String(run.containersPerHost),
    '--slots-per-container',
    String(slots),
    '--network',
    'freeflow',
    '--inter-host',
    interHost,
    '--timeout',
    String(run.timeoutSeconds),
    '--name',
    run.name,
    '--json',
    '--',
    path.join('build', 'bin', run.program),
    ...run.args,
  ];
}

// Runs that need the same cluster share one (test/support/shared-cluster.ts): one boot per shape, not per run.
const clusters = new SharedClusters();
const byShape = new Map<string, { shape: ClusterShape; plans: typeof plans }>();
for (const plan of plans) {
  const shape = shapeOf(ffrunArgs(plan.run, plan.interHost));
  const key = shapeName(shape);
  if (!byShape.has(key)) byShape.set(key, { shape, plans: [] });
  byShape.get(key)!.plans.push(plan);
}

for (const { shape, plans: group } of byShape.values()) {
  for (const { run, interHost } of group) {
    test(`${run.name}${interHost === 'tcp' ? ' --inter-host tcp' : ''}: ${run.ranks} ranks on ${run.hosts} host(s) x ${run.containersPerHost} containers`, async () => {
      const cluster = await clusters.for(shape);
      const shmBefore = shmEntries();
      const result = await cluster.run(ffrunArgs(run, interHost));
      // With --json, stdout is the JSON document and the ranks' output goes to stderr.
      const output = result.stderr;
      if (run.expectExit === 0) assert.is(result.code, 0, output);
      else assert.ok(result.code !== 0 && result.code !== 124, `expected a prompt non-zero exit, got ${result.code}:\n${output}`);
      for (const pattern of run.expectOutput) assert.match(output, new RegExp(pattern, 'm'), `missing /${pattern}/`);
      for (const pattern of run.forbidOutput) assert.not.match(output, new RegExp(pattern, 'm'), `forbidden /${pattern}/`);

      const report = reportSchema.parse(JSON.parse(result.stdout));
      assert.is(report.job.network, 'freeflow');
      // auto: every pair across hosts is planned h, every pair within a host m (or s); tcp: t across hosts, never h
      if (interHost === 'auto')
        assert.ok(
          report.paths.planned.every((row) => !row.includes('t')),
          JSON.stringify(report.paths.planned),
        );
      if (run.hosts > 1)
        assert.ok(
          report.paths.planned.some((row) => row.includes(interHost === 'auto' ? 'h' : 't')),
          JSON.stringify(report.paths.planned),
        );
      if (interHost === 'tcp')
        assert.ok(
          report.paths.planned.every((row) => !row.includes('h')),
          JSON.stringify(report.paths.planned),
        );
      if (run.expectExit === 0) {
        // Every rank reported; a planned shm pair that fell back to tcp is a failure of the BTL.
        assert.equal(report.paths.fallbacks ?? [], [], `fell back: ${JSON.stringify(report.paths)}`);
        const actual = report.paths.actual ?? [];
        report.paths.planned.forEach((row, from) =>
          [...row].forEach((planned, to) => {
            if (planned === 'm' || planned === 'h') assert.is(actual[from]?.[to], planned, `pair ${from}->${to}: ${JSON.stringify(report.paths)}`);
          }),
        );
      }
      // This checkout's binary only: other sessions on this machine may run the same program meanwhile.
      const problems = await cluster.jobLeftovers({ shmBefore, marker: programMarker(run.program) });
      assert.equal(problems, [], `job ${report.job.id} left: ${problems.join('\n')}`);
    });
  }
  test(`the cluster of ${shapeName(shape)} (${group.length} runs above) is torn down and leaves nothing`, async () => {
    const problems = await clusters.close(shape, { marker: programMarker('ffcheck_') });
    assert.equal(problems, [], problems.join('\n'));
  });
}

function programMarker(program: string): RegExp {
  return new RegExp(path.join(REPO_ROOT, 'build', 'bin', program).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

test.run();
