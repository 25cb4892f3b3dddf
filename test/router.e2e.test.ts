import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { ffrunOutput, jobLinkBytes, killAgentMidJob, startStreamingAllpairs, waitForStreamingRanks } from './support/agent-fault';
import { assertPassedAsPlanned, runJobWithFault } from './support/faulted-job';
import { runFfrun } from './support/ffrun';
import { ffrunArgs } from './support/ffrun-args';
import { assertManifestOutcome, loadManifest, manifestRunArgs, onePerProgramAcrossHosts, programMarker, type ManifestRun } from './support/manifest';
import { groupByShape, SharedClusters, shapeName } from './support/shared-cluster';
import { assertJobClean } from './support/leftovers';

/**
 * The router plane (`r`, issue 8) end to end through ffrun with `--inter-host router`: every program of
 * test/mpi/manifest.json once across hosts (its multi-host run with the fewest ranks, 2 hosts x 1-3
 * containers: pairs within a host on shared memory `m`, across hosts through the routers `r`, including
 * abort and a rank dying mid-transfer), runs on 3
 * hosts, the traffic on the hosts' underlay rather than the overlay, an agent SIGKILLed mid-job (the job
 * fails within 10 s naming the agent), and nothing left behind after any of them. Runs of one cluster
 * shape share one cluster (each job with its own key, registration, plan and mpirun, as ffrun runs it).
 * Needs root.
 */
const BIN = path.join(REPO_ROOT, 'build', 'bin');

const manifest = loadManifest();

const reportSchema = z.object({
  job: z.object({ id: z.string(), network: z.string(), interHost: z.object({ plane: z.string() }) }),
  paths: z.object({
    planned: z.array(z.string()),
    actual: z.array(z.string()).nullable().optional(),
    fallbacks: z.array(z.unknown()).optional(),
  }),
});

/** Programs on 3 hosts (the manifest has none). */
const threeHostRuns: ManifestRun[] = [
  {
    ...byName('allpairs-2h2c-4r'),
    name: 'allpairs-3h1c-3r',
    ranks: 3,
    hosts: 3,
    containersPerHost: 1,
    expectOutput: ['ffcheck_allpairs: all \\d+ subtests passed on 3 ranks', 'PASS allpairs \\(3 ranks on 3 hostnames'],
  },
  { ...byName('collectives-2h3c-6r'), name: 'collectives-3h2c-6r', ranks: 6, hosts: 3, containersPerHost: 2, expectOutput: [] },
  { ...byName('p2p-2h2c-4r'), name: 'p2p-3h2c-6r', ranks: 6, hosts: 3, containersPerHost: 2, expectOutput: [] },
];

function byName(name: string): ManifestRun {
  const run = manifest.runs.find((candidate) => candidate.name === name);
  if (run === undefined) throw new Error(`test/mpi/manifest.json has no run ${name}`);
  return run;
}

const ROUTER = { interHost: 'router' } as const;

// Every program once across hosts (the default plane, `h`, runs every placement in btl.e2e), and 3 hosts.
// Runs that need the same cluster share one (test/support/shared-cluster.ts): one boot per shape, not per run.
const clusters = new SharedClusters();

for (const { shape, cases: runs } of groupByShape([...onePerProgramAcrossHosts(manifest), ...threeHostRuns], (run) => manifestRunArgs(run, ROUTER))) {
  for (const run of runs) {
    test(`${run.name} --inter-host router: ${run.ranks} ranks on ${run.hosts} hosts x ${run.containersPerHost} containers`, async () => {
      const cluster = await clusters.for(shape);
      const result = await cluster.run(manifestRunArgs(run, ROUTER));
      assertManifestOutcome(run, result);

      const report = reportSchema.parse(JSON.parse(result.stdout));
      assert.is(report.job.interHost.plane, 'router');
      // every pair across hosts planned r, within a host m: no t anywhere
      report.paths.planned.forEach((row) => assert.match(row, /^[smr]+$/, JSON.stringify(report.paths.planned)));
      assert.ok(
        report.paths.planned.some((row) => row.includes('r')),
        'no pair planned r',
      );
      if (run.expectExit === 0) {
        // every rank reported, and each pair used the path it was planned (the BTL's own report)
        assert.equal(report.paths.fallbacks ?? [], [], `fell back: ${JSON.stringify(report.paths)}`);
        assert.equal(report.paths.actual, report.paths.planned, JSON.stringify(report.paths));
      }
      // Other sessions run the same programs from other checkouts on this machine at the same time, and
      // plain mpiruns of theirs create /dev/shm entries: look for processes of this checkout's binary (tests
      // here run one at a time) and leave /dev/shm to the job-scoped checks (ffrun jobs keep their segments
      // in the job's shared tmpfs, which leftoversOf checks; router memory is a memfd, never a file).
      const problems = await cluster.jobLeftovers({ marker: programMarker(run.program) });
      assert.equal(problems, [], `job ${report.job.id} left: ${problems.join('\n')}`);
    });
  }
  test(`the router cluster of ${shapeName(shape)} (${runs.length} runs above) is torn down and leaves nothing`, async () => {
    const problems = await clusters.close(shape, { marker: programMarker('ffcheck_') });
    assert.equal(problems, [], problems.join('\n'));
  });
}

test('router traffic goes over the underlay (ul0 busy, vxlan0 ~idle); the agent SIGKILLed mid-job ends the job within 10 s naming it; nothing left', async () => {
  const ffrun = startStreamingAllpairs(ROUTER, 100000);
  try {
    const jobId = await waitForStreamingRanks(ffrun);
    const host0 = `ff-${jobId}-h0`;
    const linkBytes = (link: string): number => jobLinkBytes(ffrun, host0, link);
    // MPI_Init and the first (checked) 4 MiB messages take seconds on a loaded machine: wait until data
    // flows on the underlay (at least 4 MiB in a second), then measure.
    const deadline = Date.now() + 60_000;
    for (let last = linkBytes('ul0'); ;) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = linkBytes('ul0');
      if (now - last > 4 * 1024 * 1024) break;
      last = now;
      assert.ok(Date.now() < deadline, `no data on the underlay within 60 s:\n${ffrunOutput(ffrun)}`);
    }
    const before = { vxlan: linkBytes('vxlan0'), underlay: linkBytes('ul0') };
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const vxlan = linkBytes('vxlan0') - before.vxlan;
    const underlay = linkBytes('ul0') - before.underlay;
    // a direction, not a speed: at least one 4 MiB message on the underlay, the overlay nearly silent
    // (16 MiB here failed at load 40 on 2 vCPUs with 9 MB moved)
    assert.ok(underlay > 4 * 1024 * 1024, `the underlay carried only ${underlay} B in 2 s`);
    assert.ok(vxlan < 256 * 1024, `vxlan0 carried ${vxlan} B in 2 s while router pairs streamed (${underlay} B on ul0)`);

    await killAgentMidJob(ffrun, jobId, 1, /ffagent \(\S*agent\.sock\) closed this rank's router connection: the agent died/);
  } finally {
    await ffrun.stop();
  }
});

/**
 * A rank with both `h` and `r` pairs: a job on hosts with and without RDMA. This machine has no RDMA, so
 * the test sets the RDMA flag of h0 and h1 in the hosts' probe results (the only thing replaced; the
 * router carries UCX over tcp either way): `auto` then plans `r` between h0 and h1 (BOTH_RDMA) and `h`
 * between them and h2, so the ranks of h0 and h1 hold both planes. Each pair must be carried by the plane
 * it was planned (the BTL's report); with one registration per plane the agent refused the second and
 * those pairs fell back to tcp.
 */
test('auto, 3 hosts x 2 containers, RDMA flagged on h0 and h1: r between h0 and h1, h with h2, each pair carried as planned; allpairs passes', async () => {
  const args = ffrunArgs({ ranks: 6, hosts: 3, containersPerHost: 2, timeout: 240 }, [path.join(BIN, 'ffcheck_allpairs')]);
  const job = await runJobWithFault(args, (probed) => ({
    cluster: probed.cluster,
    capabilities: probed.capabilities.map((host, index) => (index < 2 ? { ...host, rdma: true } : host)),
  }));
  assertPassedAsPlanned(job, ['smrrhh', 'msrrhh', 'rrsmhh', 'rrmshh', 'hhhhsm', 'hhhhms']);
  const { jobId, result, output } = job;
  assert.equal(
    result.plan.interHost.pairs.map((pair) => [pair.hosts, pair.plane, pair.reason]),
    [
      [[0, 1], 'router', 'FF_PLANE_REASON_BOTH_RDMA'],
      [[0, 2], 'handoff', 'FF_PLANE_REASON_NO_COMMON_RDMA'],
      [[1, 2], 'handoff', 'FF_PLANE_REASON_NO_COMMON_RDMA'],
    ],
  );
  assert.match(output, /PASS allpairs/);
  assert.not.match(output, /DUPLICATE_OWNER|cannot register|cannot open a router route/);
  assertJobClean(jobId);
});

test('--inter-host router with network overlay is refused, naming the fix', async () => {
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--network', 'overlay', '--inter-host', 'router', '--', '/bin/true']);
  assert.is(result.code, 2, result.stderr);
  assert.match(result.stderr, /--inter-host \(interHost\): needs network freeflow/);
});

test.run();
