import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BTL_DIR } from '../launcher/preflight';
import { REPO_ROOT } from '../util/repo-root';
import { createLocalCluster } from './local';
import { testJobId } from '#test/support/cluster';
import type { Cluster, ContainerHandle } from './types';

/**
 * The container boundary (issue 7 item 5), with real runc containers: what a process inside may not do
 * as root, and what nobody on the machine but root may read of a job.
 */
const CAP_SYS_ADMIN = 21;
const NOBODY = { uid: 65534, gid: 65534 };

function capEff(status: string): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) throw new Error(`no CapEff in ${status}`);
  return BigInt(`0x${hex}`);
}

function first(cluster: Cluster): ContainerHandle {
  const container = cluster.containers[0];
  if (!container) throw new Error('expected a container');
  return container;
}

const root = suite<{ cluster: Cluster; readOnly: string }>('container boundary, root in the container');

root.before(async (context) => {
  context.readOnly = fs.mkdtempSync('/tmp/ff-readonly-volume-');
  // The repository read-write: the build outputs (BTL, agent, init) must stay read-only all the same.
  context.cluster = await createLocalCluster({
    jobId: testJobId(),
    hosts: 1,
    containersPerHost: 2,
    volumes: [REPO_ROOT],
    readOnlyVolumes: [context.readOnly],
  });
});

root.after(async ({ cluster, readOnly }) => {
  await cluster?.destroy();
  fs.rmSync(readOnly, { recursive: true, force: true });
});

root("root in a container holds Docker's default capabilities: no CAP_SYS_ADMIN", async ({ cluster }) => {
  const { stdout } = await cluster.execInContainer(first(cluster), ['cat', '/proc/self/status']);
  const effective = capEff(stdout);
  assert.is((effective >> BigInt(CAP_SYS_ADMIN)) & 1n, 0n, `CapEff ${effective.toString(16)} has CAP_SYS_ADMIN`);
  assert.is(effective, 0xa80425fbn, `CapEff ${effective.toString(16)}`);
  assert.match(stdout, /^NoNewPrivs:\s*1$/m);
});

root("the machine's files, the BTL, the rsh agent and read-only volumes cannot be changed from a container", async ({ cluster, readOnly }) => {
  const targets = [
    path.join(readOnly, 'probe'),
    '/usr/ff-boundary-probe',
    '/etc/ff-boundary-probe',
    '/etc/hosts',
    path.join(BTL_DIR, 'mca_btl_freeflow.so'),
    cluster.rshAgent,
  ];
  for (const target of targets) {
    // touch changes at most a time stamp, so a broken boundary does not damage the checkout.
    const result = await cluster.execInContainer(first(cluster), ['touch', target], { allowFailure: true });
    assert.is.not(result.code, 0, `${target} is writable from a container`);
    assert.match(result.stderr, /Read-only file system|Permission denied/, result.stderr);
  }
  assert.not.ok(fs.existsSync('/usr/ff-boundary-probe'));
});

root('/dev holds no block device of the machine, and mount(2) is refused', async ({ cluster }) => {
  const devices = await cluster.execInContainer(first(cluster), ['find', '/dev', '-type', 'b']);
  assert.is(devices.stdout, '', `block devices visible: ${devices.stdout}`);
  const names = (await cluster.execInContainer(first(cluster), ['ls', '/dev'])).stdout.split('\n');
  assert.equal(
    names.filter((name) => /^(sd|vd|xvd|nvme|loop|dm-|zram|mmcblk)/.test(name)),
    [],
  );
  const mounted = await cluster.execInContainer(first(cluster), ['mount', '-t', 'tmpfs', 'probe', '/tmp'], { allowFailure: true });
  assert.is.not(mounted.code, 0, 'mount succeeded inside a container');
  assert.match(mounted.stderr, /permission denied/i);
});

root('the shared directory still works between the containers of a host', async ({ cluster }) => {
  const [a, b] = cluster.containers;
  if (!a || !b) throw new Error('expected 2 containers');
  await cluster.execInContainer(a, ['cp', '/etc/hostname', '/run/freeflow/boundary-probe']);
  assert.is((await cluster.execInContainer(b, ['cat', '/run/freeflow/boundary-probe'])).stdout, `${a.name}\n`);
});

root("only root may enter the job's state: state dir, bundles and runc state 0700, container map 0600", ({ cluster }) => {
  const mode = (file: string) => fs.statSync(file).mode & 0o777;
  assert.is(mode(cluster.stateDir).toString(8), '700');
  assert.is(mode(cluster.containerMapFile).toString(8), '600');
  assert.is(mode(path.join(cluster.stateDir, 'owner.pid')).toString(8), '600');
  assert.is(mode(path.join(cluster.stateDir, 'bundles')).toString(8), '700');
  assert.is(mode(path.join(cluster.stateDir, 'runc')).toString(8), '700');
  for (const file of [cluster.stateDir, cluster.containerMapFile]) assert.is(fs.statSync(file).uid, 0);
});

root('containers resolve their own name and every container of the job', async ({ cluster }) => {
  const [a, b] = cluster.containers;
  if (!a || !b) throw new Error('expected 2 containers');
  const { stdout } = await cluster.execInContainer(a, ['getent', 'hosts', a.name, b.name]);
  assert.equal(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)),
    [
      [a.overlayIp, a.name],
      [b.overlayIp, b.name],
    ],
  );
});

root("root's HOME exists and is writable", async ({ cluster }) => {
  const { stdout } = await cluster.execInContainer(first(cluster), ['sh', '-c', 'echo "$HOME" && touch "$HOME/.probe" && echo ok']);
  assert.is(stdout, '/root\nok\n');
});

root.run();

const nobody = suite<{ cluster: Cluster }>('container boundary, a non-root user');

nobody.before(async (context) => {
  context.cluster = await createLocalCluster({ jobId: testJobId(), hosts: 1, containersPerHost: 2, readOnlyVolumes: [REPO_ROOT], user: NOBODY });
});

nobody.after(async ({ cluster }) => {
  await cluster?.destroy();
});

nobody('processes run as the given user with no capabilities at all', async ({ cluster }) => {
  const { stdout } = await cluster.execInContainer(first(cluster), ['cat', '/proc/self/status']);
  assert.is(capEff(stdout), 0n);
  assert.match(stdout, /^Uid:\s*65534\s+65534\s+65534\s+65534$/m);
  assert.match(stdout, /^Gid:\s*65534\s+65534\s+65534\s+65534$/m);
  assert.match(stdout, /^CapBnd:\s*0+$/m);
});

nobody("the shared directory is 0700 and the user's, on the machine and inside, and the user can use it", async ({ cluster }) => {
  const host = cluster.hosts[0];
  if (!host) throw new Error('expected a host');
  const stat = fs.statSync(host.sharedDir);
  assert.equal([stat.uid, stat.gid, (stat.mode & 0o777).toString(8)], [65534, 65534, '700']);
  const [a, b] = cluster.containers;
  if (!a || !b) throw new Error('expected 2 containers');
  await cluster.execInContainer(a, ['cp', '/etc/hostname', '/run/freeflow/user-probe']);
  assert.is((await cluster.execInContainer(b, ['cat', '/run/freeflow/user-probe'])).stdout, `${a.name}\n`);
  assert.is(fs.statSync(path.join(host.sharedDir, 'user-probe')).uid, 65534);
});

nobody("the user's HOME exists and is writable", async ({ cluster }) => {
  const { stdout } = await cluster.execInContainer(first(cluster), ['sh', '-c', 'echo "$HOME" && touch "$HOME/.probe" && echo ok']);
  assert.is(stdout, '/tmp\nok\n');
});

nobody.run();
