import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { planLayout } from './layout';
import { fabricBatch, hostBatch, hostFloodBatch } from './network';
import { resolveClusterRequest } from './request';
import type { ClusterRequest } from './types';

function requestError(request: unknown): FfError {
  try {
    resolveClusterRequest(request as ClusterRequest);
  } catch (error) {
    if (error instanceof FfError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(request)}`);
}

test('request defaults: MTU 1450 over a 1500 underlay, kernel-default tmpfs sizes, no agents', () => {
  const resolved = resolveClusterRequest({ jobId: 'abc123', hosts: 2, containersPerHost: 3 });
  assert.equal(resolved, {
    jobId: 'abc123',
    hosts: 2,
    containersPerHost: 3,
    containerMtu: 1450,
    underlayMtu: 1500,
    sharedDirSizeMiB: undefined,
    shmSizeMiB: undefined,
    volumes: [],
    scratch: undefined,
    user: { uid: 0, gid: 0 },
    agents: false,
    hostNetworkContainersPerHost: 0,
  });
  assert.is(resolveClusterRequest({ jobId: 'abc123', hosts: 1, containersPerHost: 1, containerMtu: 9000 }).underlayMtu, 9050);
});

test('bad requests get one CLUSTER_REQUEST_INVALID naming each bad field', () => {
  const error = requestError({ jobId: 'ABC', hosts: 0, containersPerHost: 1.5, containerMtu: 70000, colour: 'red' });
  assert.is(error.code, 'CLUSTER_REQUEST_INVALID');
  for (const field of ['jobId', 'hosts', 'containersPerHost', 'containerMtu', 'colour']) {
    assert.ok(error.message.includes(field), `${field} missing from: ${error.message}`);
  }
  assert.ok(error.hint?.includes('[a-z0-9]'));
  assert.is(requestError({ jobId: 'abc123', hosts: 255, containersPerHost: 1 }).code, 'CLUSTER_REQUEST_INVALID');
  assert.is(requestError({ jobId: 'abc123', hosts: 1, containersPerHost: 254 }).code, 'CLUSTER_REQUEST_INVALID');
});

test("host-network containers: after the others, in their host's namespace, answered on the bridge; other hosts unchanged without them", () => {
  const layout = planLayout(resolveClusterRequest({ jobId: 'abc123', hosts: 2, containersPerHost: 2, hostNetworkContainersPerHost: 1 }));
  const host1 = layout.hosts[1]!;
  assert.equal(
    host1.containers.map((c) => [c.name, c.index, c.network, c.netns, c.overlayIp]),
    [
      ['ff-abc123-h1c0', 0, 'own', 'ff-abc123-h1c0', '10.244.2.2'],
      ['ff-abc123-h1c1', 1, 'own', 'ff-abc123-h1c1', '10.244.2.3'],
      ['ff-abc123-h1n0', 2, 'host', 'ff-abc123-h1', '10.244.2.1'],
    ],
  );
  assert.not.ok(layout.allNetns.includes('ff-abc123-h1n0'), 'no namespace of its own');
  const lines = hostBatch(layout, host1, { containerMtu: 1450, underlayMtu: 1500 });
  assert.ok(lines.includes('addr add 10.244.2.1/16 dev br0'), 'the bridge answers for the host-network container');
  assert.is(lines.filter((line) => line.includes('type veth')).length, 2, 'a veth per own container only');
  const plain = planLayout(resolveClusterRequest({ jobId: 'abc123', hosts: 2, containersPerHost: 2 }));
  // every host answers on the overlay (its own orted in node-sharing launches needs it)
  assert.ok(hostBatch(plain, plain.hosts[1]!, { containerMtu: 1450, underlayMtu: 1500 }).includes('addr add 10.244.2.1/16 dev br0'));
  const error = requestError({ jobId: 'abc123', hosts: 1, containersPerHost: 1, hostNetworkContainersPerHost: 9 });
  assert.match(error.message, /hostNetworkContainersPerHost: /);
  assert.match(error.hint ?? '', /hostNetworkContainersPerHost 0-8/);
});

test('layout names everything after the job and addresses containers by host and index', () => {
  const layout = planLayout(resolveClusterRequest({ jobId: 'abc123', hosts: 2, containersPerHost: 2 }));
  assert.is(layout.stateDir, '/run/freeflow-jobs/abc123');
  assert.is(layout.containerMapFile, '/run/freeflow-jobs/abc123/containers');
  assert.equal(
    layout.hosts.map((host) => [host.name, host.netns, host.underlayIp, host.sharedDir]),
    [
      ['h0', 'ff-abc123-h0', '10.200.0.1', '/run/freeflow-jobs/abc123/hosts/h0/shared'],
      ['h1', 'ff-abc123-h1', '10.200.0.2', '/run/freeflow-jobs/abc123/hosts/h1/shared'],
    ],
  );
  assert.equal(
    layout.hosts.flatMap((host) => host.containers.map((c) => `${c.name} ${c.overlayCidr}`)),
    ['ff-abc123-h0c0 10.244.1.2/16', 'ff-abc123-h0c1 10.244.1.3/16', 'ff-abc123-h1c0 10.244.2.2/16', 'ff-abc123-h1c1 10.244.2.3/16'],
  );
  assert.equal(layout.launcher, { netns: 'ff-abc123-launcher', overlayIp: '10.244.255.254', overlayCidr: '10.244.255.254/16' });
  assert.is(new Set(layout.allNetns).size, 8);
  assert.ok(layout.allNetns.every((name) => name.startsWith('ff-abc123-')));
});

test('every link is created with its peer inside a job namespace, never left in the caller', () => {
  const resolved = resolveClusterRequest({ jobId: 'abc123', hosts: 3, containersPerHost: 2 });
  const layout = planLayout(resolved);
  const lines = [fabricBatch(layout, resolved), ...layout.hosts.map((host) => hostBatch(layout, host, resolved))].flat();
  const vethLines = lines.filter((line) => line.includes('type veth'));
  assert.is(vethLines.length, 3 + 3 * 2 + 1);
  assert.ok(
    vethLines.every((line) => / netns ff-abc123-\S+$/.test(line)),
    vethLines.join('\n'),
  );
});

test('VXLAN flooding entries point at every other host', () => {
  const layout = planLayout(resolveClusterRequest({ jobId: 'abc123', hosts: 3, containersPerHost: 1 }));
  const [, h1] = layout.hosts;
  if (!h1) throw new Error('expected 3 hosts');
  assert.equal(hostFloodBatch(layout, h1), [
    'fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.200.0.1',
    'fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.200.0.3',
  ]);
});

test.run();
