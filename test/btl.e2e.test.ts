import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { assertManifestOutcome, loadManifest, manifestRunArgs, onePerProgramAcrossHosts, programMarker } from './support/manifest';
import { groupByShape, SharedClusters, shapeName } from './support/shared-cluster';
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

const plane = (interHost: 'auto' | 'tcp') => ({ network: 'freeflow', interHost });

// Runs that need the same cluster share one (test/support/shared-cluster.ts): one boot per shape, not per run.
const clusters = new SharedClusters();

for (const { shape, cases: group } of groupByShape(plans, ({ run, interHost }) => manifestRunArgs(run, plane(interHost)))) {
  for (const { run, interHost } of group) {
    test(`${run.name}${interHost === 'tcp' ? ' --inter-host tcp' : ''}: ${run.ranks} ranks on ${run.hosts} host(s) x ${run.containersPerHost} containers`, async () => {
      const cluster = await clusters.for(shape);
      const shmBefore = shmEntries();
      const result = await cluster.run(manifestRunArgs(run, plane(interHost)));
      // With --json, stdout is the JSON document and the ranks' output goes to stderr.
      assertManifestOutcome(run, result);

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

test.run();
