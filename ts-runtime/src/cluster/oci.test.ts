import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configText, DEFAULT_CAPABILITIES, hostsFileText, ociConfig, type BundleInputs, type SystemLayout } from './oci';
import { orderVolumes } from './request';

const system: SystemLayout = {
  binds: ['/usr', '/etc', '/opt'],
  symlinks: [{ path: '/bin', target: 'usr/bin' }],
  rlimits: [
    { type: 'RLIMIT_NOFILE', hard: 20000 },
    { type: 'RLIMIT_MEMLOCK', hard: '__FREEFLOW_RLIM_INFINITY__' },
  ],
};

const NETWORK_SETUP = { ip: '/usr/sbin/ip', netns: 'ff-abc123-h0c0', batchFile: '/b/network.batch' };

function inputs(user = { uid: 0, gid: 0 }, scratchDir?: string): BundleInputs {
  return {
    name: 'ff-abc123-h0c0',
    netnsPath: '/run/netns/ff-abc123-h0c0',
    init: '/repo/build/bin/ffrun-init',
    user,
    sharedDir: '/run/freeflow-jobs/abc123/hosts/h0/shared',
    shmSizeMiB: 64,
    volumes: [
      { path: '/repo', readOnly: true },
      { path: '/repo/build/bin', readOnly: true },
      { path: '/data', readOnly: false },
    ],
    hostsFile: '/b/hosts',
    hostnameFile: '/b/hostname',
    cgroupsPath: 'ff-abc123-h0c0',
    scratchDir,
    networkSetup: NETWORK_SETUP,
  };
}

type Config = {
  process: {
    env: string[];
    user: { uid: number };
    capabilities: Record<string, string[]>;
    noNewPrivileges: boolean;
    args: string[];
  };
  root: { readonly: boolean };
  mounts: Array<{ destination: string; type: string; source: string; options: string[] }>;
  linux: { namespaces: Array<{ type: string; path?: string }>; resources: { pids: { limit: number } }; maskedPaths: string[] };
  hooks?: { createRuntime: Array<{ path: string; args: string[] }> };
};

test("runc configures the container's own network namespace (a createRuntime hook running the ip batch); a host-network container gets no hook", () => {
  const config = ociConfig(inputs(), system) as Config;
  assert.equal(config.hooks?.createRuntime, [{ path: '/usr/sbin/ip', args: ['ip', '-n', 'ff-abc123-h0c0', '-batch', '/b/network.batch'], timeout: 10 }]);
  assert.is((ociConfig({ ...inputs(), networkSetup: undefined }, system) as Config).hooks, undefined);
});

test("root gets Docker's default capabilities (no CAP_SYS_ADMIN), no new privileges, a read-only root", () => {
  const config = ociConfig(inputs(), system) as Config;
  for (const set of ['bounding', 'effective', 'permitted']) assert.equal(config.process.capabilities[set], [...DEFAULT_CAPABILITIES]);
  assert.not.ok(JSON.stringify(config.process.capabilities).includes('SYS_ADMIN'));
  assert.is(config.process.noNewPrivileges, true);
  assert.is(config.root.readonly, true);
  assert.equal(config.process.args, ['/repo/build/bin/ffrun-init']);
  assert.ok(config.linux.maskedPaths.includes('/proc/kcore'));
  assert.ok(config.linux.resources.pids.limit > 0);
});

test('any other user gets no capabilities at all', () => {
  const config = ociConfig(inputs({ uid: 65534, gid: 65534 }), system) as Config;
  assert.is(config.process.user.uid, 65534);
  for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']) assert.equal(config.process.capabilities[set], []);
});

test('mounts: system dirs and protected volumes read-only, the shared dir and declared volumes read-write, /dev of its own', () => {
  const config = ociConfig(inputs(), system) as Config;
  const at = (destination: string) => config.mounts.find((mount) => mount.destination === destination);
  for (const dir of ['/usr', '/etc', '/opt', '/repo', '/repo/build/bin', '/etc/hosts']) assert.ok(at(dir)?.options.includes('rro'), dir);
  for (const dir of ['/run/freeflow', '/data']) assert.ok(at(dir)?.options.includes('rw'), dir);
  assert.is(at('/dev')?.type, 'tmpfs');
  assert.ok(at('/dev/shm')?.options.includes('size=64m'));
  assert.not.ok(
    config.mounts.some((mount) => mount.source.startsWith('/dev')),
    "nothing of the machine's /dev",
  );
  assert.is(at('/run/freeflow')?.source, '/run/freeflow-jobs/abc123/hosts/h0/shared');
  // Order: /run before /run/freeflow; volumes after the system dirs, the read-only runtime dir after the repo.
  const order = config.mounts.map((mount) => mount.destination);
  assert.ok(order.indexOf('/run') < order.indexOf('/run/freeflow'));
  assert.ok(order.indexOf('/repo') < order.indexOf('/repo/build/bin'));
  assert.equal(
    config.linux.namespaces.find((ns) => ns.type === 'network'),
    { type: 'network', path: '/run/netns/ff-abc123-h0c0' },
  );
});

test('config text carries RLIM_INFINITY as a 64-bit number', () => {
  const text = configText(ociConfig(inputs(), system));
  assert.ok(text.includes('"hard": 18446744073709551615'), text);
  assert.ok(text.includes('"hard": 20000'));
});

test('volumes: parents first, a read-write one below a read-only one stays read-only', () => {
  assert.equal(orderVolumes(['/repo/out', '/work', '/data/'], ['/repo', '/work/x']), [
    { path: '/work', readOnly: false },
    { path: '/data', readOnly: false },
    { path: '/repo', readOnly: true },
    { path: '/work/x', readOnly: true },
  ]);
  assert.equal(orderVolumes(['/repo'], ['/repo']), [{ path: '/repo', readOnly: true }]);
});

test('scratch: bound read-write at /scratch after every volume, FFRUN_SCRATCH names it; none without a scratch volume', () => {
  const without = ociConfig(inputs(), system) as Config;
  assert.not.ok(without.mounts.some((mount) => mount.destination === '/scratch'));
  assert.not.ok(without.process.env.some((entry) => entry.startsWith('FFRUN_SCRATCH=')));
  const config = ociConfig(inputs({ uid: 0, gid: 0 }, '/run/freeflow-jobs/abc123/scratch'), system) as Config;
  const last = config.mounts[config.mounts.length - 1]!;
  assert.equal(last, { destination: '/scratch', type: 'bind', source: '/run/freeflow-jobs/abc123/scratch', options: ['rbind', 'rw', 'nosuid', 'nodev'] });
  assert.ok(config.process.env.includes('FFRUN_SCRATCH=/scratch'));
});

test('hosts file: localhost, then every endpoint of the job by name', () => {
  const text = hostsFileText([
    { name: 'ff-abc123-h0c0', ip: '10.244.1.2' },
    { name: 'ff-abc123-launcher', ip: '10.244.255.254' },
  ]);
  assert.equal(text.split('\n'), [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    '10.244.1.2\tff-abc123-h0c0',
    '10.244.255.254\tff-abc123-launcher',
    '',
  ]);
});

test.run();
