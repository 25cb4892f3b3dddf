import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFfrun } from './support/ffrun';
import { ffrunArgs } from './support/ffrun-args';
import { leftoversOfThisJob, shmEntries } from './support/leftovers';

/**
 * A test suite written elsewhere, unmodified, through ffrun on 2 hosts x 2 containers (network freeflow,
 * --inter-host handoff), through the local backend and through an embedded Slurm: a short Intel IMB-MPI1
 * and IMB-EXT run, every benchmark to MPI_Finalize. The full
 * comparison with a bare host is bench/suites/imb.sh (docs/suites.md). IMB is built by hand (docs/suites.md
 * says how) into IMB_DIR (default /tmp/imb, where docs/onesided.md builds IMB-RMA); without it the test says
 * so in its name and checks nothing. Needs root.
 */
const IMB_DIR = process.env.IMB_DIR ?? '/tmp/imb';
// Small messages and few repetitions: the point is that every benchmark runs and ends, not its numbers.
const SHORT = ['-npmin', '4', '-msglog', '0:4', '-iter', '3', '-time', '0.05', '-mem', '1'];

/** The benchmarks each suite runs with 4 ranks (IMB prints "# Benchmarking <name>" before each). */
const EXPECTED = {
  MPI1: [
    'PingPong',
    'PingPing',
    'Sendrecv',
    'Exchange',
    'Allreduce',
    'Reduce',
    'Reduce_local',
    'Reduce_scatter',
    'Reduce_scatter_block',
    'Allgather',
    'Allgatherv',
    'Gather',
    'Gatherv',
    'Scatter',
    'Scatterv',
    'Alltoall',
    'Alltoallv',
    'Bcast',
    'Barrier',
  ],
  EXT: ['Window', 'Unidir_Put', 'Unidir_Get', 'Bidir_Get', 'Bidir_Put', 'Accumulate'],
} as const;

// The local backend's runc containers, and srun of an embedded Slurm (issue 11: the same suites on both).
for (const backend of ['local', 'slurm'] as const)
  for (const suite of ['MPI1', 'EXT'] as const) {
    const binary = path.join(IMB_DIR, `IMB-${suite}`);
    test(`IMB-${suite} unmodified on 2 hosts x 2 containers, freeflow + handoff, ${backend} backend${existsSync(binary) ? '' : ` (skipped: no ${binary} built)`}`, async () => {
      if (!existsSync(binary)) return;
      const shmBefore = shmEntries();
      const flags = { ranks: 4, hosts: 2, containersPerHost: 2, network: 'freeflow', interHost: 'handoff', backend, timeout: 150, json: true };
      const result = await runFfrun(ffrunArgs(flags, [binary, ...SHORT]), 210_000);
      assert.is(result.code, 0, result.stderr);
      const ran = [...result.stderr.matchAll(/^\[rank 0\] # Benchmarking (\S+)/gm)].map((match) => match[1]);
      for (const name of EXPECTED[suite]) assert.ok(ran.includes(name), `IMB-${suite} did not run ${name}: ran ${ran.join(', ')}`);
      assert.match(result.stderr, /All processes entering MPI_Finalize/);
      const jobId = (JSON.parse(result.stdout) as { job: { id: string } }).job.id;
      assert.equal(leftoversOfThisJob(jobId, shmBefore, /IMB-(MPI1|EXT)/), []);
    });
  }

test.run();
