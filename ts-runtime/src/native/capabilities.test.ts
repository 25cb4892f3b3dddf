import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { probe } from './addon';
import { capabilitiesOf, describeCapabilities } from './capabilities';
import type { HostProbe, RdmaDevice } from './host-probe-report';

/** Whether the kernel lists an RDMA port in state ACTIVE ("4: ACTIVE"): read independently of the probe. */
function kernelSeesActiveRdmaPort(): boolean {
  const root = '/sys/class/infiniband';
  if (!fs.existsSync(root)) return false;
  return fs.readdirSync(root).some((device) => {
    const ports = path.join(root, device, 'ports');
    return fs.existsSync(ports) && fs.readdirSync(ports).some((port) => /ACTIVE/.test(fs.readFileSync(path.join(ports, port, 'state'), 'utf8')));
  });
}

test('capabilities of this host: RDMA as the kernel lists it, its CPUs, tmpfs shared dir, UCX transports', () => {
  const capabilities = capabilitiesOf(probe('/dev/shm'));
  // This machine has no RDMA device; one with an active port must report it (the plan's router rule).
  assert.is(capabilities.rdma, kernelSeesActiveRdmaPort());
  assert.is(capabilities.cpus, os.availableParallelism());
  assert.is(capabilities.sharedDir.fs, 'tmpfs');
  assert.ok(capabilities.sharedDir.bytes > 0);
  assert.ok(capabilities.ucxTransports.includes('self'));
  assert.is(new Set(capabilities.ucxTransports).size, capabilities.ucxTransports.length);
  assert.match(describeCapabilities(capabilities), /^\d+ CPUs?, shared dir tmpfs with [\d.]+ \w+ free, UCX self.*, (no active RDMA port|RDMA port active)$/);
  assert.is(describeCapabilities(capabilities).endsWith(capabilities.rdma ? 'RDMA port active' : 'no active RDMA port'), true);
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
