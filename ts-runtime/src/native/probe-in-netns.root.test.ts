import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exec } from '../util/exec';
import type { HostProbe } from './host-probe-report';
import { probeHost, type HostExec } from './probe-in-netns';

// Root: the probe runs inside a network namespace this test creates.

function tcpDevices(probe: HostProbe): string[] {
  return probe.ucx.transports
    .filter((t) => t.transport === 'tcp')
    .map((t) => t.device)
    .sort();
}

test("probeHost reports a host network namespace's own interfaces", async () => {
  const ns = `ff-probetest-${randomBytes(4).toString('hex')}`;
  await exec('ip', ['netns', 'add', ns]);
  try {
    const inHost: HostExec = (argv, options) => exec('ip', ['netns', 'exec', ns, ...argv], options);
    // A new namespace has only lo, and it is down: UCX has no network device at all.
    const bare = await probeHost(inHost, '/dev/shm');
    assert.equal(
      bare.ucx.transports.filter((t) => t.deviceType === 'network'),
      [],
    );
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

test.run();
