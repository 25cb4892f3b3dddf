import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isFfError } from '../errors';
import { createLocalCluster } from './local';
import { readOwner } from './state';
import { testJobId } from '#test/support/cluster';
import type { Cluster } from './types';

/** Two jobs alive at once must not see each other's files. */
const test = suite<{ jobA: Cluster; jobB: Cluster }>('isolation between jobs');

test.before(async (context) => {
  context.jobA = await createLocalCluster({ jobId: testJobId(), hosts: 2, containersPerHost: 1 });
  // Created second, so its containers start from a copy of the mount table that includes job A's mounts.
  context.jobB = await createLocalCluster({ jobId: testJobId(), hosts: 1, containersPerHost: 1 });
});

test.after(async ({ jobA, jobB }) => {
  await Promise.all([jobA?.destroy(), jobB?.destroy()]);
});

test("a container of job B sees neither job A's shared directory nor /run/freeflow-jobs", async ({ jobA, jobB }) => {
  const [hostA] = jobA.hosts;
  const [containerB] = jobB.containers;
  if (!hostA || !containerB) throw new Error('expected clusters');
  fs.writeFileSync(path.join(hostA.sharedDir, 'secret-of-a'), 'a\n');
  const { stdout } = await jobB.execInContainer(containerB, [
    'bash',
    '-c',
    'ls -A /run/freeflow; echo ---; ls -A /run; echo ---; test -e /run/freeflow-jobs && echo visible; echo ---; cat /proc/self/mountinfo',
  ]);
  const [sharedEntries, runEntries, jobsDir, mountinfo] = stdout.split('---\n');
  assert.is(sharedEntries, '');
  assert.not.ok(runEntries?.split('\n').includes('freeflow-jobs'), runEntries);
  assert.is(jobsDir, '');
  // Not even hidden below the container's /run: such copies would pin job A's tmpfs and namespaces.
  assert.not.ok(mountinfo?.includes(jobA.jobId), 'job A appears in the mount table of a job B container');
  assert.not.ok(mountinfo?.includes('/run/netns'), 'network namespace mounts copied into the container');
});

test('a second cluster with a live job id is refused and leaves that job alone', async ({ jobA }) => {
  const ownerBefore = readOwner(jobA.stateDir);
  try {
    await createLocalCluster({ jobId: jobA.jobId, hosts: 1, containersPerHost: 1 });
    assert.unreachable('the job id is in use');
  } catch (error) {
    assert.ok(isFfError(error) && error.code === 'CLUSTER_SETUP_FAILED', String(error));
    assert.match((error as Error).message, /in use/);
  }
  assert.equal(readOwner(jobA.stateDir), ownerBefore);
  const [container] = jobA.containers;
  if (!container) throw new Error('expected containers');
  assert.is((await jobA.execInContainer(container, ['hostname'])).stdout, `${container.name}\n`);
});

test.run();
