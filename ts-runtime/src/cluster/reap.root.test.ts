import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exec } from '../util/exec';
import { jobStateDir } from './layout';
import { createLocalCluster } from './local';
import { identify, type ProcessIdentity } from './procfs';
import { reapStaleJobs } from './reap';
import { readContainerMap, readOwner } from './state';
import { listJobNetns } from './teardown';
import { assertJobGone, testJobId } from '#test/support/cluster';
import type { Cluster } from './types';

/** A separate node process (the would-be ffrun) that builds a cluster, reporting each step on stdout. */
function startOwner(jobId: string): ChildProcess {
  const script = `
    const { createLocalCluster } = require(${JSON.stringify(path.join(__dirname, 'local.js'))});
    createLocalCluster({ jobId: ${JSON.stringify(jobId)}, hosts: 2, containersPerHost: 2 }, (step) => console.log('step ' + step))
      .then(() => { console.log('ready'); setInterval(() => {}, 1000); });`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Resolves when the owner prints a line matching `until`; rejects if it exits first. */
function waitForLine(owner: ChildProcess, until: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    owner.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk;
      if (seen.split('\n').some((line) => until.test(line))) resolve();
    });
    owner.on('exit', (code) => reject(new Error(`owner exited (${code}) before ${until}; it printed: ${seen}`)));
  });
}

/**
 * Starts an owner, SIGKILLs it when it prints a line matching `killAt`, and returns the job it left
 * behind. Any ffrun started meanwhile on this machine runs the same reaper and may remove that job
 * first; then the scenario is played again, so that the caller's reaper has a stale job to find.
 */
async function abandonedJob(killAt: RegExp, settleMs: number): Promise<{ jobId: string; inits: ProcessIdentity[] }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const jobId = testJobId();
    const owner = startOwner(jobId);
    await waitForLine(owner, killAt);
    const exited = new Promise((resolve) => owner.on('exit', resolve));
    owner.kill('SIGKILL');
    await exited;
    const inits = readContainerMap(path.join(jobStateDir(jobId), 'containers')).map((record) => record.init);
    // Commands the owner had started (ip, mount) finish on their own; a real reaper runs much later.
    await sleep(settleMs);
    if (listJobNetns(jobId).length > 0) return { jobId, inits };
  }
  throw new Error('other ffrun runs on this machine kept reaping the abandoned jobs first');
}

const test = suite<{ live: Cluster }>('stale job reaping');

test.before(async (context) => {
  context.live = await createLocalCluster({ jobId: testJobId(), hosts: 1, containersPerHost: 1 });
});

test.after(async ({ live }) => {
  await live?.destroy();
});

test('a SIGKILLed owner leaves a whole cluster behind; the reaper removes all of it and spares a live job', async ({ live }) => {
  const { jobId, inits } = await abandonedJob(/^ready$/, 0);
  assert.is(inits.length, 4);
  assert.is(listJobNetns(jobId).length, 8, 'the dead owner left its namespaces');

  const { jobs } = await reapStaleJobs();
  assert.ok(jobs.includes(jobId), `reaped ${jobs}`);
  assert.not.ok(jobs.includes(live.jobId), 'the live job was reaped');
  assertJobGone(jobId, inits);

  assert.equal(readOwner(live.stateDir), identify(process.pid));
  assert.is(listJobNetns(live.jobId).length, 4);
  const [container] = live.containers;
  if (!container) throw new Error('expected a container');
  assert.is((await live.execInContainer(container, ['hostname'])).stdout, `${container.name}\n`);
});

test('an owner killed in the middle of set-up is reaped too', async () => {
  const { jobId, inits } = await abandonedJob(/^step .*h1c0: network and init$/, 200);
  const { jobs } = await reapStaleJobs();
  assert.ok(jobs.includes(jobId), `reaped ${jobs}`);
  assertJobGone(jobId, inits);
});

test('network namespaces of a job without a state dir are reaped', async () => {
  const jobId = testJobId();
  await exec('ip', ['netns', 'add', `ff-${jobId}-h0`]);
  const { jobs } = await reapStaleJobs();
  assert.ok(jobs.includes(jobId), `reaped ${jobs}`);
  assertJobGone(jobId);
});

test.run();
