import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFfrun } from './support/ffrun';
import { leftoversOf, shmEntries } from './support/leftovers';

/**
 * leftoversOf, with /dev/shm checked only for names of this job: other engineers' runs on this machine
 * create `freeflow-*` files there meanwhile (containers have /dev/shm of their own).
 */
function leftoversOfThisJob(jobId: string, shmBefore: Set<string>, marker: RegExp): string[] {
  const created = [...shmEntries()].filter((name) => !shmBefore.has(name) && name.includes(jobId));
  return [...leftoversOf(jobId, { marker }), ...created.map((name) => `/dev/shm/${name}`)];
}

/**
 * A test suite written elsewhere, unmodified, through ffrun on 2 hosts x 2 containers (network freeflow,
 * --inter-host handoff): a short Intel IMB-MPI1 and IMB-EXT run, every benchmark to MPI_Finalize. The full
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

for (const suite of ['MPI1', 'EXT'] as const) {
  const binary = path.join(IMB_DIR, `IMB-${suite}`);
  test(`IMB-${suite} unmodified on 2 hosts x 2 containers, freeflow + handoff${existsSync(binary) ? '' : ` (skipped: no ${binary} built)`}`, async () => {
    if (!existsSync(binary)) return;
    const shmBefore = shmEntries();
    const result = await runFfrun(
      [
        '-n',
        '4',
        '--hosts',
        '2',
        '--containers-per-host',
        '2',
        '--network',
        'freeflow',
        '--inter-host',
        'handoff',
        '--timeout',
        '150',
        '--json',
        '--',
        binary,
        ...SHORT,
      ],
      210_000,
    );
    assert.is(result.code, 0, result.stderr);
    const ran = [...result.stderr.matchAll(/^\[rank 0\] # Benchmarking (\S+)/gm)].map((match) => match[1]);
    for (const name of EXPECTED[suite]) assert.ok(ran.includes(name), `IMB-${suite} did not run ${name}: ran ${ran.join(', ')}`);
    assert.match(result.stderr, /All processes entering MPI_Finalize/);
    const jobId = (JSON.parse(result.stdout) as { job: { id: string } }).job.id;
    assert.equal(leftoversOfThisJob(jobId, shmBefore, /IMB-(MPI1|EXT)/), []);
  });
}

test.run();
