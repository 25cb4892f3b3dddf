import * as os from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { probe } from './addon';
import { capabilitiesOf, describeCapabilities } from './capabilities';
import type { HostProbe, RdmaDevice } from './host-probe';

test('capabilities of this host: no RDMA, its CPUs, tmpfs shared dir, UCX transports', () => {
  const capabilities = capabilitiesOf(probe('/dev/shm'));
  assert.is(capabilities.rdma, false);
  assert.is(capabilities.cpus, os.availableParallelism());
  assert.is(capabilities.sharedDir.fs, 'tmpfs');
  assert.ok(capabilities.sharedDir.bytes > 0);
  assert.ok(capabilities.ucxTransports.includes('self'));
  assert.is(new Set(capabilities.ucxTransports).size, capabilities.ucxTransports.length);
  assert.match(describeCapabilities(capabilities), /^\d+ CPUs?, shared dir tmpfs with [\d.]+ \w+ free, UCX self.*, no active RDMA port$/);
});

/** A probe as a machine with RDMA would report it (none exists here). */
function withRdma(devices: RdmaDevice[]): HostProbe {
  return {
    ucx: {
      version: '1.13.1',
      transports: [
        { component: 'ib', memoryDomain: 'mlx5_0', transport: 'rc_verbs', device: 'mlx5_0:1', deviceType: 'network' },
        { component: 'ib', memoryDomain: 'mlx5_0', transport: 'ud_verbs', device: 'mlx5_0:1', deviceType: 'network' },
        { component: 'ib', memoryDomain: 'mlx5_1', transport: 'rc_verbs', device: 'mlx5_1:1', deviceType: 'network' },
      ],
    },
    rdma: { devices },
    cpus: { configured: 8, online: 8, usable: 1 },
    sharedDir: { path: '/run/ff', fs: 'ext2/3/4', fsMagic: 0xef53, totalBytes: 4096, freeBytes: 2048, availableBytes: 1024 },
  };
}

const device = (name: string, states: RdmaDevice['ports'][number]['state'][]): RdmaDevice => ({
  name,
  nodeGuid: '0002:c903:0042:a6f0',
  nodeType: 'ca',
  transport: 'infiniband',
  ports: states.map((state, i) => ({ number: i + 1, state, linkLayer: 'infiniband' })),
});

test('RDMA counts only with an active port; transports are listed once each', () => {
  assert.is(capabilitiesOf(withRdma([])).rdma, false);
  assert.is(capabilitiesOf(withRdma([device('mlx5_0', ['down', 'init'])])).rdma, false);
  const active = capabilitiesOf(withRdma([device('mlx5_0', ['down']), device('mlx5_1', ['down', 'active'])]));
  assert.is(active.rdma, true);
  assert.equal(active.ucxTransports, ['rc_verbs', 'ud_verbs']);
  assert.equal(active.sharedDir, { fs: 'ext2/3/4', bytes: 1024 });
  assert.is(describeCapabilities(active), '1 CPU, shared dir ext2/3/4 with 1.0 KiB free, UCX rc_verbs ud_verbs, RDMA port active');
});

test.run();
