import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isFfError } from '../errors';
import { createLocalCluster } from './local';
import { assertJobGone, testJobId } from '#test/support/cluster';

test('a set-up that fails half way names the step and removes everything it made', async () => {
  const jobId = testJobId();
  const steps: string[] = [];
  try {
    await createLocalCluster({ jobId, hosts: 2, containersPerHost: 2 }, (step) => {
      steps.push(step);
      // Real interference: a namespace host h1 is about to wire up disappears.
      if (step === 'h1: network') execFileSync('ip', ['netns', 'del', `ff-${jobId}-h1c1`]);
    });
    assert.unreachable('set-up should have failed');
  } catch (error) {
    assert.ok(isFfError(error) && error.code === 'CLUSTER_SETUP_FAILED', String(error));
    assert.match((error as Error).message, /at step "h1: network"/);
    assert.match((error as Error).message, /ff-\w+-h1c1/);
  }
  assert.ok(
    steps.some((step) => step.startsWith(`teardown ${jobId}`)),
    steps.join(', '),
  );
  assertJobGone(jobId);
});

test.run();
