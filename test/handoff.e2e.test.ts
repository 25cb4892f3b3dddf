import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../ts-runtime/src/util/repo-root';
import { FfrunProcess, runFfrun, waitFor } from './support/ffrun';
import { leftoversOf, processesMatching } from './support/leftovers';

/**
 * The handoff plane (issue 8) end to end through ffrun: `--inter-host handoff` plans `h` across hosts,
 * starts one ffagent per simulated host and registers the job on them (agent.sock appears in every
 * host's shared directory, owned by the job's user); without it no agent runs; teardown and the reaper
 * leave no agent behind. Needs root.
 */
const BIN = path.join(REPO_ROOT, 'build', 'bin');

function jobIdOf(stderr: string): string {
  const id = /setting up cluster ([a-z0-9]{6})/.exec(stderr)?.[1];
  if (id === undefined) throw new Error(`no job id in ffrun's output:\n${stderr}`);
  return id;
}

function assertClean(jobId: string): void {
  const problems = leftoversOf(jobId);
  assert.equal(problems, [], `job ${jobId} left: ${problems.join('\n')}`);
}

test('--inter-host handoff: h planned across hosts, m within; allpairs passes; nothing left', async () => {
  const result = await runFfrun(['-n', '4', '--hosts', '2', '--containers-per-host', '2', '--inter-host', 'handoff', '--json', '--', path.join(BIN, 'ffcheck_allpairs')]);
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.paths.planned, ['smhh', 'mshh', 'hhsm', 'hhms']);
  assert.is(report.job.interHost.plane, 'handoff');
  // within a host: shared memory, as always
  for (const [from, to] of [[0, 1], [1, 0], [2, 3], [3, 2]] as const) assert.is(report.paths.actual[from][to], 'm', JSON.stringify(report.paths));
  assert.match(result.stderr, /^\[rank 0\] PASS allpairs /m);
  assertClean(report.job.id);
});

test('--inter-host handoff: every host runs an ffagent and the job is registered (agent.sock in /run/freeflow)', async () => {
  const ffrun = new FfrunProcess(['-n', '2', '--hosts', '2', '--inter-host', 'handoff', '--', '/bin/sh', '-c', 'test -S /run/freeflow/agent.sock && exec /bin/sleep 4713']);
  try {
    await waitFor('both ranks to run', () => processesMatching(/^\/bin\/sleep 4713$/).length === 2);
    const jobId = jobIdOf(ffrun.stderr);
    const agents = processesMatching(new RegExp(`ffagent --control /run/freeflow-jobs/${jobId}/agents/h[01]\\.sock --listen 10\\.200\\.0\\.[12]:7470`));
    assert.is(agents.length, 2, JSON.stringify(agents));
    // SIGKILL: ffrun cannot clean up; its leases end with it, and the next run's reaper kills the agents.
    ffrun.child.kill('SIGKILL');
    await ffrun.finished(10_000);
    assert.ok(leftoversOf(jobId).some((problem) => problem.startsWith('ffagent processes')), leftoversOf(jobId).join('\n'));
    const next = await runFfrun(['-n', '1', '--', '/bin/true']);
    assert.is(next.code, 0, next.stderr);
    assert.match(next.stderr, new RegExp(`removed stale jobs: .*${jobId}`));
    assertClean(jobId);
  } finally {
    await ffrun.stop();
    for (const sleeper of processesMatching(/^\/bin\/sleep 4713$/)) process.kill(sleeper.pid, 'SIGKILL');
  }
});

test('without --inter-host handoff no agent runs (auto stays tcp)', async () => {
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--json', '--', '/bin/sh', '-c', 'test ! -e /run/freeflow/agent.sock']);
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.paths.planned, ['st', 'ts']);
  assert.is(report.job.interHost.plane, 'tcp');
  assert.not.match(result.stderr, /ffagents/);
  assertClean(report.job.id);
});

test('--inter-host router is refused as not implemented yet, naming the alternatives', async () => {
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--inter-host', 'router', '--', '/bin/true']);
  assert.is(result.code, 2, result.stderr);
  assert.match(result.stderr, /--inter-host \(interHost\): is not implemented yet .*use one of: auto, handoff, tcp/);
});

test.run();
