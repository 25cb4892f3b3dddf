import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { ffrunOutput, jobLinkBytes, killAgentMidJob, startStreamingAllpairs, waitForStreamingRanks } from './support/agent-fault';
import { FfrunProcess, jobIdOf, runFfrun, waitFor, type FfrunResult } from './support/ffrun';
import { ffrunArgs } from './support/ffrun-args';
import { SharedClusters } from './support/shared-cluster';
import { assertJobClean, leftoversOf, processesMatching } from './support/leftovers';

/**
 * The handoff plane (issue 8) end to end through ffrun: `--inter-host handoff` plans `h` across hosts,
 * starts one ffagent per simulated host and registers the job on them (agent.sock appears in every
 * host's shared directory, owned by the job's user); without it no agent runs; teardown and the reaper
 * leave no agent behind. Needs root.
 */
const BIN = path.join(REPO_ROOT, 'build', 'bin');

const HANDOFF = { interHost: 'handoff' } as const;

test('--inter-host handoff: h planned across hosts, m within; allpairs passes; nothing left', async () => {
  const result = await runFfrun(ffrunArgs({ ranks: 4, hosts: 2, containersPerHost: 2, ...HANDOFF, json: true }, [path.join(BIN, 'ffcheck_allpairs')]));
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.paths.planned, ['smhh', 'mshh', 'hhsm', 'hhms']);
  assert.is(report.job.interHost.plane, 'handoff');
  // within a host: shared memory, as always
  for (const [from, to] of [
    [0, 1],
    [1, 0],
    [2, 3],
    [3, 2],
  ] as const)
    assert.is(report.paths.actual[from][to], 'm', JSON.stringify(report.paths));
  assert.match(result.stderr, /^\[rank 0\] PASS allpairs /m);
  assertJobClean(report.job.id);
});

test('--inter-host handoff: every host runs an ffagent and the job is registered (agent.sock in /run/freeflow)', async () => {
  const ffrun = new FfrunProcess(ffrunArgs({ ranks: 2, hosts: 2, ...HANDOFF }, ['/bin/sh', '-c', 'test -S /run/freeflow/agent.sock && exec /bin/sleep 4713']));
  try {
    await waitFor('both ranks to run', () => processesMatching(/^\/bin\/sleep 4713$/).length === 2);
    const jobId = jobIdOf(ffrun.stderr);
    const agents = processesMatching(new RegExp(`ffagent --control /run/freeflow-jobs/${jobId}/agents/h[01]\\.sock --listen 10\\.200\\.0\\.[12]:7470`));
    assert.is(agents.length, 2, JSON.stringify(agents));
    // SIGKILL: ffrun cannot clean up; its leases end with it, and the next run's reaper kills the agents.
    ffrun.child.kill('SIGKILL');
    await ffrun.finished(10_000);
    assert.ok(
      leftoversOf(jobId).some((problem) => problem.startsWith('ffagent processes')),
      leftoversOf(jobId).join('\n'),
    );
    const next = await runFfrun(['-n', '1', '--', '/bin/true']);
    assert.is(next.code, 0, next.stderr);
    // (another ffrun starting on this machine meanwhile may have reaped it first: then it is gone too)
    assertJobClean(jobId);
  } finally {
    await ffrun.stop();
    for (const sleeper of processesMatching(/^\/bin\/sleep 4713$/)) process.kill(sleeper.pid, 'SIGKILL');
  }
});

test('handoff traffic bypasses the overlay (vxlan0 ~idle, ul0 busy); the agent SIGKILLed mid-job ends the job within 10 s naming it; nothing left', async () => {
  const ffrun = startStreamingAllpairs(HANDOFF, 100000);
  try {
    const jobId = await waitForStreamingRanks(ffrun);
    const host0 = `ff-${jobId}-h0`;
    const linkBytes = (netns: string, link: string): number => jobLinkBytes(ffrun, netns, link);
    // A window defined by bytes, not time (a loaded machine streams slowly): from 8 MiB on the underlay
    // until it has carried 32 MiB more. The overlay meanwhile carries only Open MPI's out-of-band traffic.
    await waitFor('8 MiB on the underlay', () => linkBytes(host0, 'ul0') > 8 * 1024 * 1024, 90_000);
    assert.is(ffrun.child.exitCode, null, ffrunOutput(ffrun));
    const before = { vxlan: linkBytes(host0, 'vxlan0'), underlay: linkBytes(host0, 'ul0') };
    await waitFor('32 MiB more on the underlay', () => linkBytes(host0, 'ul0') - before.underlay > 32 * 1024 * 1024, 90_000);
    const vxlan = linkBytes(host0, 'vxlan0') - before.vxlan;
    const underlay = linkBytes(host0, 'ul0') - before.underlay;
    assert.ok(vxlan < 256 * 1024, `vxlan0 carried ${vxlan} B while handoff pairs streamed ${underlay} B on ul0`);

    await killAgentMidJob(ffrun, jobId, 1, /ffagent died or removed this job/);
  } finally {
    await ffrun.stop();
  }
});

/** Per rank: what its handoff module wrote to its one peer (btl_freeflow_verbose 10 prints it at finalize). */
function carried(stderr: string): Map<number, { sendBytes: number; rdmaPayloads: number; rdmaBytes: number }> {
  const lines = [...stderr.matchAll(/^\[rank (\d+)\] .*handoff carried (\d+) send frames \((\d+) bytes\) and (\d+) rdma payloads \((\d+) bytes\)$/gm)];
  return new Map(lines.map((m) => [Number(m[1]), { sendBytes: Number(m[3]), rdmaPayloads: Number(m[4]), rdmaBytes: Number(m[5]) }]));
}

// The large-message runs below (5 jobs of 2 hosts x 1 container with agents) share one cluster
// (test/support/shared-cluster.ts), each job with its own key, registration and mpirun.
const SHAPE = { hosts: 2, containersPerHost: 1, agents: true } as const;
const clusters = new SharedClusters();
const REL_BIN = path.join('build', 'bin');

const RDMA_SIZES = [4 * 1024 * 1024, 1024 * 1024 + 13, 64 * 1024 + 1];
const RDMA_ITERATIONS = 6;

/** A job on the shared cluster with the handoff module's `rdma` mode and its verbose counts; returns its --json report. */
async function runLargeMessages(
  rdma: 'get' | 'put' | 'none',
  program: readonly string[],
): Promise<{ result: FfrunResult; report: { job: { id: string }; paths: { actual: string[] } } }> {
  const cluster = await clusters.for(SHAPE);
  const mca = { btl_freeflow_sock_rdma: rdma, btl_freeflow_verbose: 10 };
  const result = await cluster.run(ffrunArgs({ ranks: 2, hosts: 2, ...HANDOFF, json: true, mca }, [path.join(REL_BIN, program[0]!), ...program.slice(1)]));
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.paths.actual, ['sh', 'hs']);
  return { result, report };
}

/** Fails the test with what the last job left in the shared cluster. */
async function assertSharedJobClean(jobId: string): Promise<void> {
  const problems = await (await clusters.for(SHAPE)).jobLeftovers();
  assert.equal(problems, [], `job ${jobId} left: ${problems.join('\n')}`);
}

for (const rdma of ['get', 'put', 'none'] as const) {
  test(`large contiguous messages across hosts, btl_freeflow_sock_rdma ${rdma}: every byte checked; ${rdma === 'none' ? 'all through send frames' : 'each payload moved by the rdma emulation'}`, async () => {
    const { result, report } = await runLargeMessages(rdma, [
      'ffcheck_allpairs',
      '--sizes',
      '4M,1M+13,64K+1',
      '--iterations',
      String(RDMA_ITERATIONS),
      '--timeout',
      '100',
    ]);
    assert.match(result.stderr, /^\[rank 0\] PASS allpairs .*every byte checked/m);
    const byRank = carried(result.stderr);
    assert.equal([...byRank.keys()].sort(), [0, 1], result.stderr);
    const payload = RDMA_ITERATIONS * RDMA_SIZES.reduce((sum, size) => sum + size, 0);
    for (const [rank, counts] of byRank) {
      if (rdma === 'none') {
        assert.is(counts.rdmaBytes, 0, `rank ${rank}`);
        assert.ok(counts.sendBytes >= payload, `rank ${rank} sent ${counts.sendBytes} B`);
      } else {
        // get: the data's owner writes it (GET_DATA); put: the sender writes it. Either way each rank moved
        // exactly its own messages' bytes as rdma payloads, one per message, and only headers as sends.
        assert.is(counts.rdmaBytes, payload, `rank ${rank}: ${JSON.stringify(counts)}`);
        assert.is(counts.rdmaPayloads, RDMA_ITERATIONS * RDMA_SIZES.length, `rank ${rank}: ${JSON.stringify(counts)}`);
        assert.ok(counts.sendBytes < 64 * 1024, `rank ${rank} sent ${counts.sendBytes} B through send frames`);
      }
    }
    await assertSharedJobClean(report.job.id);
  });
}

for (const rdma of ['get', 'put'] as const) {
  test(`non-contiguous datatypes up to 8 MiB across hosts (ob1's pack path beside the rdma emulation), btl_freeflow_sock_rdma ${rdma}`, async () => {
    const { result, report } = await runLargeMessages(rdma, ['ffcheck_datatypes', '--max-size', '8M', '--timeout', '200']);
    assert.match(result.stderr, /ffcheck_datatypes: all 9 subtests passed on 2 ranks/);
    assert.not.match(result.stderr, /\bFAIL /);
    // contiguous-to-contiguous pairs inside the subtests take the rdma path, derived types the send path
    for (const [rank, counts] of carried(result.stderr))
      assert.ok(counts.rdmaBytes > 0 && counts.sendBytes > 1024 * 1024, `rank ${rank}: ${JSON.stringify(counts)}`);
    await assertSharedJobClean(report.job.id);
  });
}

test('the cluster of the large-message runs is torn down and leaves nothing', async () => {
  const problems = await clusters.close(SHAPE);
  assert.equal(problems, [], problems.join('\n'));
});

/**
 * A 2-host handoff job on a cluster of `mtu` (and `containerMtu`): while its ranks run, the hosts' underlay
 * must have `mtu` and the overlay (what containers get) `overlayMtu`; the containers see it on eth0 and
 * large messages pass. `iterations` marks this job's ranks.
 */
async function assertJumboJob(mtus: { mtu: number; containerMtu?: number }, overlayMtu: number, iterations: number): Promise<void> {
  // the ranks stay 2 s after the check, so the hosts' links can be read while they run on any machine speed
  const program = `echo "eth0 mtu $(cat /sys/class/net/eth0/mtu)"; ${path.join(BIN, 'ffcheck_allpairs')} --sizes 4M,1M+13 --iterations ${iterations} --timeout 100; status=$?; sleep 2; exit $status`;
  const ffrun = new FfrunProcess(ffrunArgs({ ranks: 2, hosts: 2, ...mtus, ...HANDOFF, timeout: 120 }, ['/bin/sh', '-c', program]));
  try {
    const ranks = new RegExp(`^\\S*ffcheck_allpairs --sizes 4M,1M\\+13 --iterations ${iterations} `);
    await waitFor('both ranks to run', () => processesMatching(ranks).length === 2, 60_000);
    const host0 = `ff-${jobIdOf(ffrun.stderr)}-h0`;
    const mtuOf = (link: string): number => JSON.parse(execFileSync('ip', ['-n', host0, '-j', 'link', 'show', link], { encoding: 'utf8' }))[0].mtu;
    assert.is(mtuOf('ul0'), mtus.mtu);
    assert.is(mtuOf('vxlan0'), overlayMtu);
    const result = await ffrun.finished(150_000);
    // without --json the ranks' output is on stdout
    const output = `${result.stdout}\n${result.stderr}`;
    assert.is(result.code, 0, output);
    assert.match(output, new RegExp(`^\\[rank 0\\] eth0 mtu ${overlayMtu}$`, 'm'));
    assert.match(output, new RegExp(`^\\[rank 1\\] eth0 mtu ${overlayMtu}$`, 'm'));
    assert.match(output, /^\[rank 0\] PASS allpairs /m);
    assertJobClean(jobIdOf(result.stderr));
  } finally {
    await ffrun.stop();
  }
}

test('--mtu 9000: underlay 9000 and overlay 8950 in the cluster, containers see 8950; large messages over handoff pass; --mtu out of range is refused naming the fix', async () => {
  await assertJumboJob({ mtu: 9000 }, 8950, 40);
  const refused = await runFfrun(ffrunArgs({ ranks: 2, hosts: 2, mtu: 1400 }, ['/bin/true']));
  assert.is(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /--mtu \(cluster\.mtu\): must be at least 1500 \(got 1400\); use the hosts' network MTU in bytes, a whole number from 1500 to 65535/,
  );
});

test('spin-then-block receive: the receiver blocks in poll() waiting for a large message, its sender dies by SIGKILL, the job still ends non-zero within seconds', async () => {
  // wait_spin 1: block after one idle pass; a 1 s bound per block, so only a poll that wakes on the
  // dead peer's socket (EOF) or the launcher ends it soon; the program's own watchdog would say TIMEOUT.
  const started = Date.now();
  const mca = { btl_freeflow_sock_wait_spin: 1, btl_freeflow_sock_wait_timeout_us: 1000000, btl_freeflow_verbose: 10 };
  const program = [path.join(BIN, 'ffcheck_die_midtransfer'), '--rank', '1', '--peer', '0', '--timeout', '60'];
  const result = await runFfrun(ffrunArgs({ ranks: 2, hosts: 2, ...HANDOFF, timeout: 90, mca, json: true }, program), 120_000);
  const seconds = (Date.now() - started) / 1000;
  const output = `${result.stdout}\n${result.stderr}`;
  assert.ok(result.code !== 0, `the job exited 0 after a rank died:\n${output}`);
  assert.match(output, /rank 1 on \S+: SIGKILL to itself in the middle of a 67108864-byte send/);
  assert.match(output, /^\[rank 0\] .*waiting on handoff sockets in poll\(\) after 1 idle progress passes/m);
  assert.not.match(output, /TIMEOUT|still running/);
  assert.ok(seconds < 60, `the job took ${seconds} s to end`);
  assertJobClean(jobIdOf(result.stderr));
});

test('--mtu 9000 --container-mtu 1450: a jumbo host network under 1450-byte containers; large messages over handoff pass', async () => {
  await assertJumboJob({ mtu: 9000, containerMtu: 1450 }, 1450, 20);
  const refused = await runFfrun(ffrunArgs({ ranks: 2, hosts: 2, mtu: 9000, containerMtu: 8960 }, ['/bin/true']));
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--container-mtu \(cluster\.containerMtu\): must be at most the hosts' network MTU 9000 minus 50 \(8950\)/);
});

// `--inter-host tcp` (no agent runs, t across hosts, plane tcp) is checked in interhost-policy.e2e.

test.run();
