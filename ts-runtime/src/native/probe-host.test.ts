import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import type { HostProbe } from './host-probe';
import { probeHost, type HostExec } from './probe-host';

const here: HostExec = (argv, options) => exec(argv[0]!, argv.slice(1), options);

function tcpDevices(probe: HostProbe): string[] {
  return probe.ucx.transports.filter((t) => t.transport === 'tcp').map((t) => t.device).sort();
}

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

test("probeHost reports a host network namespace's own interfaces", async () => {
  const ns = `ff-probetest-${randomBytes(4).toString('hex')}`;
  await exec('ip', ['netns', 'add', ns]);
  try {
    const inHost: HostExec = (argv, options) => exec('ip', ['netns', 'exec', ns, ...argv], options);
    // A new namespace has only lo, and it is down: UCX has no network device at all.
    const bare = await probeHost(inHost, '/dev/shm');
    assert.equal(bare.ucx.transports.filter((t) => t.deviceType === 'network'), []);
    assert.ok(bare.ucx.transports.some((t) => t.deviceType === 'intra-node'));

    // Both ends of the veth pair stay inside the namespace; UCX lists interfaces that have an address.
    const ip = (...args: string[]) => exec('ip', ['-n', ns, ...args]);
    await ip('link', 'set', 'lo', 'up');
    await ip('link', 'add', 'ffv0', 'type', 'veth', 'peer', 'name', 'ffv1');
    await ip('addr', 'add', '10.213.0.1/30', 'dev', 'ffv0');
    await ip('link', 'set', 'ffv0', 'up');
    await ip('link', 'set', 'ffv1', 'up');
    const wired = await probeHost(inHost, '/dev/shm');
    assert.equal(tcpDevices(wired), ['ffv0', 'lo']);
  } finally {
    await exec('ip', ['netns', 'delete', ns], { allowFailure: true });
  }
  const left = await exec('ip', ['netns', 'list']);
  assert.not.ok(left.stdout.includes(ns));
});

test('probeHost passes on the probe error, naming the problem', async () => {
  await expectRejection(probeHost(here, '/nonexistent/ff-probe'), 'ADDON_FAILED', '/nonexistent/ff-probe');
  await expectRejection(probeHost(here, 'relative'), 'PROBE_FAILED', 'absolute path');
  await expectRejection(probeHost(async () => ({ stdout: 'garbage\n', stderr: '', code: 0 }), '/dev/shm'), 'PROBE_FAILED', 'no JSON');
});

test.run();
