import * as os from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import { probeHost, type HostExec } from './probe-in-netns';

const here: HostExec = (argv, options) => exec(argv[0]!, argv.slice(1), options);

async function expectRejection(promise: Promise<unknown>, code: string, mentions: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, FfError);
    assert.is((error as FfError).code, code);
    assert.ok((error as FfError).message.includes(mentions), (error as FfError).message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('probeHost runs the probe in another process and follows its CPU affinity', async () => {
  const unrestricted = await probeHost(here, '/dev/shm');
  assert.is(unrestricted.cpus.usable, os.availableParallelism());
  const pinned = await probeHost((argv, options) => exec('taskset', ['-c', '0', ...argv], options), '/dev/shm');
  assert.is(pinned.cpus.usable, 1);
  assert.is(pinned.cpus.online, unrestricted.cpus.online);
});

test('probeHost passes on the probe error, naming the problem', async () => {
  await expectRejection(probeHost(here, '/nonexistent/ff-probe'), 'ADDON_FAILED', '/nonexistent/ff-probe');
  await expectRejection(probeHost(here, 'relative'), 'PROBE_FAILED', 'absolute path');
  await expectRejection(
    probeHost(async () => ({ stdout: 'garbage\n', stderr: '', code: 0 }), '/dev/shm'),
    'PROBE_FAILED',
    'no JSON',
  );
});

test.run();
