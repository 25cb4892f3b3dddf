import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IO_MCA_SETTINGS } from '#runtime/launcher/io-selection';
import { FfrunProcess, runFfrun, waitFor } from './support/ffrun';
import { ffrunArgs, type RunFlags } from './support/ffrun-args';
import { jobShmFiles, leftoversOf, leftoversOfThisJob, shmEntries } from './support/leftovers';

import { assertManifestOutcome, loadManifest } from './support/manifest';
import { SharedClusters, shapeOf } from './support/shared-cluster';

/**
 * Issue 9, names and files, through ffrun across containers and hosts on both networks: every rank resolves
 * its own and every other rank's hostname (the manifest's names runs, which btl.e2e runs on freeflow, here on
 * the overlay), and MPI-IO with ompio and ROMIO on the job's scratch volume (`--scratch`): independent,
 * collective through a file view, nonblocking, shared file pointers, every byte checked. Then the scratch
 * volume itself: the same files on every host, owned by the job's user, absent without --scratch, gone
 * after a SIGKILLed ffrun is reaped. Needs root.
 */
const BIN = path.join('build', 'bin');
const LAYOUT = { hosts: 2, containersPerHost: 2, ranks: 4 } as const;
/** The MCA settings of each io component beside `--mca io <name>`. */
const IO = {
  ompio: Object.fromEntries(IO_MCA_SETTINGS),
  // ROMIO 3.2.1 in Open MPI 4.1 crashes in MPI_File_iwrite_at_all (open-mpi/ompi#4520): the program skips those calls.
  romio321: {},
} as const;

async function checkedRun(flags: RunFlags, program: readonly string[], marker: RegExp): Promise<{ code: number | null; stderr: string }> {
  const shmBefore = shmEntries();
  const result = await runFfrun(ffrunArgs({ ...flags, timeout: 200, json: true }, program), 260_000);
  const jobId = (JSON.parse(result.stdout) as { job: { id: string } }).job.id;
  const problems = leftoversOfThisJob(jobId, shmBefore, marker);
  assert.equal(problems, [], `job ${jobId} left: ${problems.join('\n')}`);
  return { code: result.code, stderr: result.stderr };
}

for (const run of loadManifest().runs.filter((candidate) => candidate.program === 'ffcheck_names')) {
  test(`${run.name} --network overlay`, async () => {
    const flags = { ranks: run.ranks, hosts: run.hosts, containersPerHost: run.containersPerHost, network: 'overlay' };
    assertManifestOutcome(run, await checkedRun(flags, [path.join(BIN, run.program), ...run.args], /ffcheck_names/));
  });
}

// MPI-IO runs: one per network and io component, on 2 hosts x 2 containers (pairs within a host and
// across hosts; the same 256 MiB scratch volume on every host). The 1 host x 2 containers layout ran each
// of them once more: its two ranks share a host as the within-host pairs here do, so it checked nothing
// these runs do not. The two runs of one network share one cluster (test/support/shared-cluster.ts).
const clusters = new SharedClusters();
for (const network of ['freeflow', 'overlay'] as const) {
  const layout = LAYOUT;
  const args = (io: 'ompio' | 'romio321') =>
    ffrunArgs({ ...layout, network, scratch: '256M', mca: { io, ...IO[io] }, timeout: 200, json: true }, [
      path.join(BIN, 'ffcheck_mpiio'),
      '--expect-io',
      io,
      '--timeout',
      '150',
      ...(io === 'romio321' ? ['--skip-nonblocking-collective'] : []),
    ]);
  const shape = shapeOf(args('ompio'));
  for (const io of ['ompio', 'romio321'] as const) {
    test(`MPI-IO with ${io} on the scratch volume, ${layout.hosts} host(s) x ${layout.containersPerHost} containers, network ${network}`, async () => {
      const cluster = await clusters.for(shape);
      const shmBefore = shmEntries();
      const result = await cluster.run(args(io));
      const jobShm = jobShmFiles(cluster.jobId, shmBefore);
      assert.equal([...(await cluster.jobLeftovers({ marker: /ffcheck_mpiio/ })), ...jobShm], [], `job ${cluster.jobId} left something`);
      assert.is(result.code, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`ffcheck_mpiio: all 8 subtests passed on ${layout.ranks} ranks`));
      assert.match(result.stderr, new RegExp(`PASS component \\(io components loaded: ${io},`));
      assert.match(result.stderr, /PASS shared_pointer/);
      assert.not.match(result.stderr, /\bFAIL |TIMEOUT/);
    });
  }
  test(`the MPI-IO cluster of network ${network} is torn down and leaves nothing`, async () => {
    const problems = await clusters.close(shape, { marker: /ffcheck_mpiio/ });
    assert.equal(problems, [], problems.join('\n'));
  });
}

// Each rank writes a file named after its container, then waits for the other host's: the same directory on every host.
const SCRATCH_SCRIPT = [
  'echo "scratch=$FFRUN_SCRATCH owner=$(stat -c %u:%g:%a /scratch) kib=$(df -k --output=size /scratch | tail -1 | tr -d " ")"',
  'hostname > /scratch/$(hostname)',
  'for i in $(seq 200); do [ $(ls /scratch | wc -l) -ge 2 ] && break; sleep 0.1; done',
  'echo "files=$(ls /scratch | wc -l)"',
].join('; ');

test('--scratch 64M --user 65534:65534: /scratch is one 64 MiB directory on both hosts, owned by the job user, mode 0700', async () => {
  const result = await checkedRun({ ranks: 2, hosts: 2, scratch: '64M', user: '65534:65534' }, ['sh', '-c', SCRATCH_SCRIPT], /seq 200/);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stderr, /^\[rank 0\] scratch=\/scratch owner=65534:65534:700 kib=65536$/m);
  assert.match(result.stderr, /^\[rank 1\] scratch=\/scratch owner=65534:65534:700 kib=65536$/m);
  assert.match(result.stderr, /^\[rank 0\] files=2$/m);
  assert.match(result.stderr, /^\[rank 1\] files=2$/m);
});

test('without --scratch a container has no /scratch and no FFRUN_SCRATCH', async () => {
  const result = await checkedRun({ ranks: 1 }, ['sh', '-c', 'test ! -e /scratch && test -z "${FFRUN_SCRATCH+set}" && echo no-scratch'], /no-scratch/);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stderr, /^\[rank 0\] no-scratch$/m);
});

test('the scratch volume of a SIGKILLed ffrun is gone after the reaper (ffrun clean)', async () => {
  const ffrun = new FfrunProcess(
    ffrunArgs({ ranks: 2, hosts: 2, scratch: true, timeout: 120 }, ['sh', '-c', 'echo data > /scratch/$(hostname); echo written; sleep 100']),
  );
  let jobId: string | undefined;
  try {
    await waitFor('both ranks to write to /scratch', () => (ffrun.stdout.match(/\] written$/gm) ?? []).length === 2, 60_000);
    jobId = ffrun.jobId!;
    const scratchMount = `freeflow-${jobId}-scratch`;
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(scratchMount), 'no scratch mount while the job runs');
    ffrun.child.kill('SIGKILL');
    await ffrun.finished(30_000);
    const clean = await runFfrun(['clean'], 120_000);
    assert.is(clean.code, 0, clean.stderr);
    assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(scratchMount), 'the scratch mount outlived the reaper');
    assert.equal(leftoversOf(jobId, { marker: /sleep 100/ }), []);
  } finally {
    await ffrun.stop();
  }
});

test.run();
