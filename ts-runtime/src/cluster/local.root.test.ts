import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLocalCluster } from './local';
import { PIDS_LIMIT } from './oci';
import { identify, type ProcessIdentity } from './procfs';
import { assertJobGone, rootLinkNames, tcpClientScript, tcpExchange, tcpListenerArgv, testJobId } from '#test/support/cluster';
import type { Cluster } from './types';

const test = suite<{ cluster: Cluster; inits: ProcessIdentity[]; volume: string }>('local cluster 2x2');

test.before(async (context) => {
  // A volume under /tmp, like a CI clone of the repository: containers replace /tmp but must still see it.
  context.volume = fs.mkdtempSync('/tmp/ff-volume-test-');
  fs.writeFileSync(path.join(context.volume, 'program'), 'visible\n');
  context.cluster = await createLocalCluster({ jobId: testJobId(), hosts: 2, containersPerHost: 2, volumes: [context.volume] });
  context.inits = context.cluster.containers.map((container) => identify(container.initPid)).filter((id) => id !== undefined);
});

test.after(async ({ cluster, volume }) => {
  await cluster?.destroy();
  fs.rmSync(volume, { recursive: true, force: true });
});

test('handles describe 2 hosts x 2 containers with deterministic overlay addresses', ({ cluster }) => {
  assert.equal(
    cluster.hosts.map((host) => host.netns),
    [`ff-${cluster.jobId}-h0`, `ff-${cluster.jobId}-h1`],
  );
  assert.equal(
    cluster.containers.map((container) => container.overlayIp),
    ['10.244.1.2', '10.244.1.3', '10.244.2.2', '10.244.2.3'],
  );
  assert.equal(cluster.launcher.overlayIp, '10.244.255.254');
  assert.equal(cluster.overlaySubnet, '10.244.0.0/16');
  assert.ok(fs.statSync(cluster.rshAgent).mode & 0o111, 'the rsh agent is executable');
});

test('each container has its own hostname and pid namespace with the init as pid 1', async ({ cluster }) => {
  const hostnames: string[] = [];
  for (const container of cluster.containers) {
    const { stdout } = await cluster.execInContainer(container, ['bash', '-c', 'hostname; tr "\\0" " " </proc/1/cmdline; echo; ls /proc | grep -c "^[0-9]"']);
    const [hostname, initCommand, visibleProcesses] = stdout.trim().split('\n');
    assert.is(hostname, container.name);
    assert.ok(initCommand?.includes('ffrun-init'), `pid 1 is ${initCommand}`);
    // The init, its sleep, and this command's bash, ls and grep: none of the machine's processes.
    assert.ok(Number(visibleProcesses) <= 6, `${visibleProcesses} processes visible`);
    hostnames.push(hostname ?? '');
  }
  assert.is(new Set(hostnames).size, 4);
});

/** The cgroup of a /proc/<pid>/cgroup text in a v1 controller (cgroup2's when the machine has no v1 one). */
function cgroupOf(procCgroupText: string, controller: string): string {
  const lines = procCgroupText
    .trim()
    .split('\n')
    .map((line) => /^\d+:([^:]*):(.*)$/.exec(line));
  const v1 = lines.find((match) => match?.[1]?.split(',').includes(controller));
  const found = v1 ?? lines.find((match) => match?.[1] === '');
  if (!found) throw new Error(`no ${controller} cgroup in ${procCgroupText}`);
  return found[2]!;
}

test('each container has a cgroup of its own right below ours (its pids limit applies; no scheduling weight shared with other jobs)', ({ cluster }) => {
  const ours = fs.readFileSync('/proc/self/cgroup', 'utf8');
  for (const container of cluster.containers) {
    const its = fs.readFileSync(`/proc/${container.initPid}/cgroup`, 'utf8');
    assert.is(cgroupOf(its, 'cpu'), path.posix.join(cgroupOf(ours, 'cpu'), container.name));
    const pidsMax = path.join('/sys/fs/cgroup/pids', cgroupOf(its, 'pids'), 'pids.max');
    assert.is(fs.readFileSync(pidsMax, 'utf8').trim(), String(PIDS_LIMIT));
  }
});

test('the init reaps orphans, so exited processes do not pile up as zombies', async ({ cluster }) => {
  const [container] = cluster.containers;
  if (!container) throw new Error('expected containers');
  const { stdout } = await cluster.execInContainer(container, [
    'bash',
    '-c',
    '(sleep 0.05 &); (sleep 0.05 &); sleep 0.4; ps -eo stat=,comm= | grep -c "^Z" || true',
  ]);
  assert.is(stdout.trim(), '0');
});

test('/dev/shm is private to each container', async ({ cluster }) => {
  const [first, second] = cluster.containers;
  if (!first || !second) throw new Error('expected containers');
  await cluster.execInContainer(first, ['bash', '-c', 'echo x > /dev/shm/ff-private-probe']);
  const own = await cluster.execInContainer(first, ['ls', '/dev/shm']);
  const other = await cluster.execInContainer(second, ['ls', '/dev/shm']);
  assert.ok(own.stdout.includes('ff-private-probe'));
  assert.not.ok(other.stdout.includes('ff-private-probe'));
  assert.not.ok(fs.existsSync('/dev/shm/ff-private-probe'), 'visible in the machine /dev/shm');
});

test('/run/freeflow is shared by the containers of one host and by no other host', async ({ cluster }) => {
  const [h0c0, h0c1, h1c0] = cluster.containers;
  const [h0, h1] = cluster.hosts;
  if (!h0c0 || !h0c1 || !h1c0 || !h0 || !h1) throw new Error('expected 2x2');
  await cluster.execInContainer(h0c0, ['bash', '-c', 'echo from-h0c0 > /run/freeflow/probe']);
  assert.is((await cluster.execInContainer(h0c1, ['cat', '/run/freeflow/probe'])).stdout, 'from-h0c0\n');
  assert.is(fs.readFileSync(path.join(h0.sharedDir, 'probe'), 'utf8'), 'from-h0c0\n');
  assert.is((await cluster.execInContainer(h1c0, ['ls', '-A', '/run/freeflow'])).stdout, '');
  assert.not.ok(fs.existsSync(path.join(h1.sharedDir, 'probe')));
  const runEntries = (await cluster.execInContainer(h1c0, ['ls', '-A', '/run'])).stdout.split('\n');
  assert.not.ok(runEntries.includes('freeflow-jobs'), 'containers must not see /run/freeflow-jobs');
});

test('containers have only the overlay route, MTU 1450, and /tmp of their own', async ({ cluster }) => {
  for (const container of cluster.containers) {
    const { stdout } = await cluster.execInContainer(container, [
      'bash',
      '-c',
      'ip route show default; echo ---; ip -o route; echo ---; cat /sys/class/net/eth0/mtu; findmnt -n -o SOURCE /tmp',
    ]);
    const [defaultRoute, routes, rest] = stdout.split('---\n');
    assert.is(defaultRoute, '', 'no default route');
    assert.is(routes?.trim().split('\n').length, 1, routes);
    assert.ok(routes?.startsWith('10.244.0.0/16 dev eth0'), routes);
    assert.equal(rest?.trim().split('\n'), ['1450', 'tmp']);
  }
});

test('a volume under /tmp is visible at its path in every container, the rest of /tmp is not', async ({ cluster, volume }) => {
  const outside = fs.mkdtempSync('/tmp/ff-not-a-volume-');
  try {
    for (const container of cluster.containers) {
      assert.is((await cluster.execInContainer(container, ['cat', path.join(volume, 'program')])).stdout, 'visible\n');
      const { code } = await cluster.execInContainer(container, ['test', '-e', outside], { allowFailure: true });
      assert.is.not(code, 0, `${outside} must not be visible in ${container.name}`);
    }
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
  }
});

test('a container on h0 reaches a container on h1 over the VXLAN overlay', async ({ cluster }) => {
  const [h0c0, , h1c0] = cluster.containers;
  const h1 = cluster.hosts[1];
  if (!h0c0 || !h1c0 || !h1) throw new Error('expected 2x2');
  const vxlanRx = async () => Number((await cluster.execInHost(h1, ['cat', '/sys/class/net/vxlan0/statistics/rx_packets'])).stdout);
  const rxBefore = await vxlanRx();
  const reply = await tcpExchange(
    cluster.execInContainer(h1c0, tcpListenerArgv(7000)),
    cluster.execInContainer(h0c0, ['bash', '-c', tcpClientScript(h1c0.overlayIp, 7000)]),
  );
  assert.is(reply, `${h1c0.name}\n`);
  assert.ok((await vxlanRx()) > rxBefore, 'the packets came in through vxlan0 of h1');
});

test('the launcher reaches containers on every host over the overlay', async ({ cluster }) => {
  const target = cluster.containers[3];
  if (!target) throw new Error('expected 2x2');
  const reply = await tcpExchange(
    cluster.execInContainer(target, tcpListenerArgv(7001)),
    cluster.execInLauncher(['bash', '-c', tcpClientScript(target.overlayIp, 7001)]),
  );
  assert.is(reply, `${target.name}\n`);
});

test('the root network namespace got no links', async () => {
  const ours = (await rootLinkNames()).filter((name) => /^(br0|vxlan0|ul0|launcher|c\d+|h\d+)$/.test(name));
  assert.equal(ours, []);
});

test('destroy removes namespaces, mounts, processes and the state dir, and is idempotent', async ({ cluster, inits }) => {
  assert.is(inits.length, 4);
  await cluster.destroy();
  assertJobGone(cluster.jobId, inits);
  await cluster.destroy();
});

test.run();
