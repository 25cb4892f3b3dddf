import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { FfrunProcess, jobIdOf, runFfrun, waitFor } from './support/ffrun';
import { assertJobClean, leftoversOf, processesMatching, shmEntries } from './support/leftovers';

/**
 * ffrun end to end, on the real embedded cluster with the real Open MPI: the demo's checked messages
 * across 4 containers on 2 hosts (overlay and freeflow), exit codes, and that nothing is left after
 * success, a failed check, MPI_Abort, a rank killed mid-transfer, mpirun killed, the timeout, SIGINT, SIGTERM, and SIGKILL
 * followed by the next run; and that one job's containers cannot see another job's shared directory.
 * Needs root (as ffrun does). Leftover checks look at the whole machine: other ffrun or MPI runs at the
 * same time (not in CI) can make them fail.
 */
const BIN = path.join(REPO_ROOT, 'build', 'bin');

test('the demo: 4 ranks in 4 containers on 2 hosts exchange checked messages; --json has placement, paths and result', async () => {
  const shmBefore = shmEntries();
  const result = await runFfrun(['run', path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--json']);
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.is(report.job.name, 'demo');
  assert.equal(
    report.placement.map((p: { host: number }) => p.host),
    [0, 0, 1, 1],
  );
  assert.is(new Set(report.placement.map((p: { container: string }) => p.container)).size, 4);
  // freeflow (auto): shared memory within a host, host-network handoff across hosts
  const expected = report.job.network === 'freeflow' ? ['smhh', 'mshh', 'hhsm', 'hhms'] : ['sttt', 'tstt', 'ttst', 'ttts'];
  assert.equal(report.paths.planned, expected);
  if (report.job.network === 'freeflow') {
    // every pair used the planned path, as the BTL reports it (the default network is freeflow: this run
    // once ran a second time with --network freeflow)
    assert.equal(report.paths.actual, expected, JSON.stringify(report.paths));
    assert.equal(report.paths.fallbacks, []);
    // the inter-host policy with no --inter-host (auto): each agent completed the handshake with the
    // other before the plan, h across hosts with the reason (this was interhost-policy.e2e's own run of
    // the same job)
    assert.is(report.job.interHost.requested, 'auto');
    assert.is(report.job.interHost.plane, 'handoff');
    assert.equal(report.job.interHost.agents, [
      { reachable: true, peers: { reached: [1], unreached: [] } },
      { reachable: true, peers: { reached: [0], unreached: [] } },
    ]);
    assert.equal(
      report.job.interHost.pairs.map((pair: { hosts: number[]; plane: string; reason: string }) => [pair.hosts, pair.plane, pair.reason]),
      [[[0, 1], 'handoff', 'FF_PLANE_REASON_NO_COMMON_RDMA']],
    );
  }
  assert.is(report.hosts.length, 2);
  assert.ok(report.hosts[0].capabilities.cpus >= 1);
  assert.is(report.result.exitCode, 0);
  // With --json the ranks' output goes to stderr with rank prefixes; the program checks every message's bytes.
  for (const rank of [0, 1, 2, 3]) {
    const container = report.placement[rank].container;
    assert.match(result.stderr, new RegExp(`^\\[rank ${rank}\\] rank ${rank} on ${container}: all 3 peers OK$`, 'm'));
  }
  assert.match(result.stderr, /^\[rank 0\] PASS allpairs /m);
  assert.not.match(result.stderr, /FAIL/);
  assertJobClean(report.job.id, { shmBefore, marker: /ffcheck_allpairs/ });
});

test('the content check can fail through ffrun: a corrupted byte fails the job with exit 1', async () => {
  const result = await runFfrun(['-n', '4', '--hosts', '2', '--', path.join(BIN, 'ffcheck_allpairs'), '--inject-fault', '--fault-rank', '2']);
  assert.is(result.code, 1, result.stderr);
  // The diagnostic goes to stderr as the check fails; the summary lines on stdout may be cut off when
  // mpirun ends the job at the first non-zero exit.
  assert.match(result.stderr, /^\[rank 2\] ffcheck_allpairs: rank 2 on ff-[a-z0-9]{6}-h1c0 \[allpairs\]: data from rank \d to rank 2 .* differs at offset/m);
  assertJobClean(jobIdOf(result.stderr));
});

test("a rank's exit code is ffrun's exit code", async () => {
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--', '/bin/sh', '-c', 'exit $((3 + 4))']);
  assert.is(result.code, 7, result.stderr);
  assert.match(result.stderr, /error\[JOB_FAILED\]: the job failed: mpirun exited with code 7/);
  assertJobClean(jobIdOf(result.stderr));
});

test('MPI_Abort in one rank: its error code, and nothing left', async () => {
  const shmBefore = shmEntries();
  const result = await runFfrun(['-n', '4', '--hosts', '2', '--', path.join(BIN, 'ffcheck_abort'), '--rank', '2', '--code', '42']);
  assert.is(result.code, 42, result.stderr);
  assert.match(result.stdout, /^\[rank 2\] ffcheck_abort: rank 2 on ff-[a-z0-9]{6}-h1c0 calls MPI_Abort/m);
  assert.match(result.stderr, /MPI_ABORT was invoked on rank 2/);
  assertJobClean(jobIdOf(result.stderr), { shmBefore, marker: /ffcheck_abort/ });
});

test('a program missing inside the containers: PROGRAM_NOT_FOUND, and nothing left', async () => {
  const result = await runFfrun(['-n', '1', '--', '/tmp/not-there']);
  assert.is(result.code, 1);
  assert.match(result.stderr, /error\[PROGRAM_NOT_FOUND\]: \/tmp\/not-there is not an executable file inside container ff-[a-z0-9]{6}-h0c0/);
  assertJobClean(jobIdOf(result.stderr));
});

for (const [signal, code, marker] of [
  ['SIGINT', 130, '4711'],
  ['SIGTERM', 143, '4715'],
] as const) {
  test(`${signal} to ffrun: the ranks stop, everything is removed, exit ${code}`, async () => {
    const ffrun = new FfrunProcess(['-n', '2', '--hosts', '2', '--', '/bin/sleep', marker]);
    try {
      const program = new RegExp(`^/bin/sleep ${marker}$`);
      await waitFor('both ranks to run', () => processesMatching(program).length === 2);
      const jobId = jobIdOf(ffrun.stderr);
      ffrun.child.kill(signal);
      const result = await ffrun.finished(60_000);
      assert.is(result.code, code, result.stderr);
      assert.match(result.stderr, new RegExp(`error\\[INTERRUPTED\\]: interrupted by ${signal}`));
      assertJobClean(jobId, { marker: program });
    } finally {
      await ffrun.stop();
    }
  });
}

test('a reader that goes away (ffrun | head) does not stop ffrun from finishing and cleaning up', async () => {
  const ffrun = new FfrunProcess(['-n', '2', '--', '/bin/sh', '-c', 'for i in $(seq 1 3000); do echo line $i; done']);
  ffrun.child.stdout!.once('data', () => ffrun.child.stdout!.destroy());
  const result = await ffrun.finished();
  assert.is(result.code, 0, result.stderr);
  assertJobClean(jobIdOf(result.stderr));
});

test('a rank killed by SIGKILL in the middle of a transfer: the job ends non-zero, nobody hangs, nothing is left', async () => {
  const shmBefore = shmEntries();
  const result = await runFfrun(['-n', '4', '--hosts', '2', '--', path.join(BIN, 'ffcheck_die_midtransfer'), '--rank', '1', '--size', '8M']);
  assert.is(result.code, 137, result.stderr);
  assert.match(result.stderr, /error\[JOB_FAILED\]: the job failed: mpirun exited with code 137 \(128 \+ 9: a rank was killed by SIGKILL\)/);
  assertJobClean(jobIdOf(result.stderr), { shmBefore, marker: /ffcheck_die_midtransfer/ });
});

/** The mpirun of a running job: the process named mpirun in the job's launcher network namespace. */
function mpirunOf(jobId: string): number | undefined {
  const pids = execFileSync('ip', ['netns', 'pids', `ff-${jobId}-launcher`], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line !== '');
  return pids.map(Number).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'mpirun';
    } catch {
      return false; // exited while we looked
    }
  });
}

test('mpirun itself killed by SIGKILL: reported as the launcher, not a rank; exit 137, nothing left', async () => {
  const ffrun = new FfrunProcess(['-n', '2', '--hosts', '2', '--timeout', '60', '--', '/bin/sleep', '4717']);
  try {
    await waitFor('both ranks to run', () => processesMatching(/^\/bin\/sleep 4717$/).length === 2);
    const jobId = jobIdOf(ffrun.stderr);
    const mpirun = mpirunOf(jobId);
    assert.ok(mpirun !== undefined, `no mpirun in ff-${jobId}-launcher`);
    process.kill(mpirun, 'SIGKILL');
    const result = await ffrun.finished(60_000);
    assert.is(result.code, 137, result.stderr);
    assert.match(
      result.stderr,
      /error\[JOB_FAILED\]: the job failed: mpirun \(the launcher\) was killed by SIGKILL, which ended the job \(exit code 137 = 128 \+ 9\)/,
    );
    assert.not.match(result.stderr, /a rank was killed/);
    assertJobClean(jobId, { marker: /^\/bin\/sleep 4717$/ });
  } finally {
    await ffrun.stop();
  }
});

test('the timeout stops the job: JOB_TIMEOUT, exit 124, nothing left', async () => {
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--timeout', '1', '--', '/bin/sleep', '4716']);
  assert.is(result.code, 124, result.stderr);
  assert.match(result.stderr, /error\[JOB_TIMEOUT\]: the job did not finish within 1 s/);
  assertJobClean(jobIdOf(result.stderr), { marker: /^\/bin\/sleep 4716$/ });
});

test('SIGKILL to ffrun: the next run removes what it left', async () => {
  const ffrun = new FfrunProcess(['-n', '2', '--hosts', '2', '--', '/bin/sleep', '4712']);
  try {
    await waitFor('both ranks to run', () => processesMatching(/^\/bin\/sleep 4712$/).length === 2);
  } catch (error) {
    await ffrun.stop();
    throw error;
  }
  const jobId = jobIdOf(ffrun.stderr);
  ffrun.child.kill('SIGKILL');
  await ffrun.finished(10_000);
  assert.ok(leftoversOf(jobId).length > 0, 'a SIGKILLed run cannot clean up; this test needs its leftovers');
  const next = await runFfrun(['-n', '1', '--', '/bin/true']);
  assert.is(next.code, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`removed stale jobs: .*${jobId}`));
  assertJobClean(jobId, { marker: /^\/bin\/sleep 4712$/ });
  assertJobClean(jobIdOf(next.stderr));
});

test("a container of another job cannot see this job's shared directory", async () => {
  const first = new FfrunProcess(['-n', '1', '--', '/bin/sleep', '4713']);
  let firstId: string;
  try {
    await waitFor('the first job to run', () => processesMatching(/^\/bin\/sleep 4713$/).length === 1);
    firstId = jobIdOf(first.stderr);
    const firstTable = `/run/freeflow-jobs/${firstId}/hosts/h0/shared/paths`;
    assert.ok(existsSync(firstTable), `the first job's path table ${firstTable} should exist on the machine`);
    // Inside the second job's container: its own path table is there, the first job's is not reachable by
    // its path, and the first job's id appears in no file the container can see.
    const script = `
      own=$(sed -n 's/^job //p' /run/freeflow/paths)
      [ -n "$own" ] || { echo "no path table of its own"; exit 10; }
      [ "$own" != "$1" ] || { echo "sees the other job's table"; exit 11; }
      ! [ -e "$2" ] || { echo "the other job's shared directory is visible"; exit 12; }
      ! grep -rqs -e "$1" /run /dev/shm /tmp || { echo "a file names the other job"; exit 13; }
      echo "job $own cannot see job $1"`;
    const second = await runFfrun(['-n', '1', '--', '/bin/sh', '-c', script, 'sh', firstId, firstTable]);
    assert.is(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, new RegExp(`\\[rank 0\\] job [a-z0-9]{6} cannot see job ${firstId}`));
    assertJobClean(jobIdOf(second.stderr));
  } finally {
    await first.stop();
  }
  assertJobClean(firstId, { marker: /^\/bin\/sleep 4713$/ });
});

test.run();
