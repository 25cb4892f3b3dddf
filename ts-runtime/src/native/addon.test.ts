import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import { REPO_ROOT } from '../util/repo-root';
import { loadAddon, planeDecide, probe, segmentBytes } from './addon';

function expectFfError(action: () => unknown, code: string, mentions: readonly string[]): FfError {
  try {
    action();
  } catch (error) {
    assert.instance(error, FfError);
    const ffError = error as FfError;
    assert.is(ffError.code, code);
    for (const text of mentions) assert.ok(ffError.message.includes(text), `"${ffError.message}" should mention "${text}"`);
    return ffError;
  }
  throw new Error(`expected FfError ${code}`);
}

/** "md component transport device type" for every resource `ucx_info -d` lists. */
async function ucxInfoResources(): Promise<string[]> {
  const { stdout } = await exec('ucx_info', ['-d']);
  const current: Record<string, string> = {};
  const lines: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^#\s+(Memory domain|Component|Transport|Device|Type):\s+(\S+)$/.exec(line);
    if (match === null) continue;
    current[match[1]!] = match[2]!;
    if (match[1] === 'Type') {
      lines.push(['Memory domain', 'Component', 'Transport', 'Device', 'Type'].map((key) => current[key]).join(' '));
    }
  }
  return lines.sort();
}

test('the addon loads once', () => {
  assert.is(loadAddon(), loadAddon());
});

test('CPU counts match what Node sees', () => {
  const { cpus } = probe('/dev/shm');
  assert.is(cpus.online, os.cpus().length);
  assert.is(cpus.usable, os.availableParallelism());
  assert.ok(cpus.configured >= cpus.online);
});

test('UCX version and transports match ucx_info', async () => {
  const { ucx } = probe('/dev/shm');
  const version = /^# Version (\S+)$/m.exec((await exec('ucx_info', ['-v'])).stdout)?.[1];
  assert.is(ucx.version, version);
  const listed = ucx.transports.map((t) => [t.memoryDomain, t.component, t.transport, t.device, t.deviceType].join(' '));
  assert.equal(listed.sort(), await ucxInfoResources());
  assert.ok(ucx.transports.some((t) => t.transport === 'self' && t.deviceType === 'loopback'));
});

test('RDMA devices match /sys/class/infiniband (none on this machine is a valid answer)', async () => {
  const listed = await exec('ls', ['/sys/class/infiniband'], { allowFailure: true });
  const sysfs = listed.code === 0 ? listed.stdout.split('\n').filter((name) => name !== '') : [];
  assert.equal(
    probe('/dev/shm')
      .rdma.devices.map((d) => d.name)
      .sort(),
    sysfs.sort(),
  );
});

test('/dev/shm is on tmpfs, the repository is not, and sizes match df', async () => {
  for (const dir of ['/dev/shm', REPO_ROOT]) {
    const { sharedDir } = probe(dir);
    const statName = (await exec('stat', ['-f', '-c', '%T', dir])).stdout.trim();
    const statMagic = Number.parseInt((await exec('stat', ['-f', '-c', '%t', dir])).stdout.trim(), 16);
    const dfSize = Number((await exec('df', ['-B1', '--output=size', dir])).stdout.trim().split('\n')[1]);
    assert.is(sharedDir.path, dir);
    assert.is(sharedDir.fs === 'tmpfs', statName === 'tmpfs');
    assert.is(sharedDir.fsMagic, statMagic);
    assert.is(sharedDir.totalBytes, dfSize);
    assert.ok(sharedDir.availableBytes <= sharedDir.freeBytes && sharedDir.freeBytes <= sharedDir.totalBytes);
  }
  assert.is(probe('/dev/shm').sharedDir.fs, 'tmpfs');
});

test("segmentBytes is the core's formula: a 4 KiB header and ring + 128 bytes per ring written through", () => {
  assert.is(segmentBytes(524288, 0), 4096);
  assert.is(segmentBytes(524288, 3), 4096 + 3 * (524288 + 128));
  assert.is(segmentBytes(65536, 63) - segmentBytes(65536, 62), 65536 + 128);
  assert.throws(() => loadAddon().segmentBytes(-1, 1), /whole numbers/);
});

test('a bad shared directory gives one clear error naming it', () => {
  const relative = expectFfError(() => probe('relative/dir'), 'ADDON_FAILED', ['relative/dir', 'absolute path']);
  assert.equal(relative.notes, ['FF_PROBE_ERR_INVALID_ARGUMENT']);
  const missing = expectFfError(() => probe('/nonexistent/ff-probe'), 'ADDON_FAILED', ['/nonexistent/ff-probe', 'does not exist']);
  assert.ok(missing.hint?.includes('shared directory'));
  expectFfError(() => probe('/etc/hostname'), 'ADDON_FAILED', ['/etc/hostname', 'not a directory']);
  expectFfError(() => probe('/dev/shm\0/x'), 'ADDON_FAILED', ['NUL']);
});

test('a missing or broken addon file gives ADDON_NOT_BUILT or ADDON_FAILED', () => {
  const notBuilt = expectFfError(() => loadAddon('/nonexistent/freeflow.node'), 'ADDON_NOT_BUILT', ['/nonexistent/freeflow.node']);
  assert.is(notBuilt.hint, 'run npm run build');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-probetest-'));
  try {
    const bogus = path.join(dir, 'bogus.node');
    writeFileSync(bogus, 'not a shared object');
    expectFfError(() => loadAddon(bogus), 'ADDON_FAILED', [bogus]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Prints the caught-signal mask, then whether a WebAssembly out-of-bounds load throws (Node's SIGSEGV handler). */
const SIGNAL_CHECK = `
const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,5,3,1,0,1,7,8,1,4,108,111,97,100,0,0,10,9,1,7,0,32,0,40,2,0,11]);
if (process.argv[1]) require(process.argv[1]).probe('/dev/shm');
console.log(require('fs').readFileSync('/proc/self/status', 'utf8').match(/SigCgt:\\s*(\\S+)/)[1]);
try { new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.load(0x7fffff00); console.log('no trap'); }
catch (e) { console.log(e.constructor.name); }
console.log(String(process.env.UCX_HANDLE_ERRORS));
`;

test('loading the addon leaves Node its signal handlers and the environment as it was', async () => {
  const loader = path.join(__dirname, 'addon.js');
  const plain = (await exec(process.execPath, ['-e', SIGNAL_CHECK])).stdout.trim().split('\n');
  const withAddon = (await exec(process.execPath, ['-e', SIGNAL_CHECK, loader])).stdout.trim().split('\n');
  assert.equal(plain.slice(1), ['RuntimeError', 'undefined']);
  assert.equal(withAddon, plain);
});

test('planeDecide is the core policy: every reason name comes back, bad arguments are refused with a message', () => {
  const ok = { agentReachable: true, rdmaActive: false };
  assert.equal(planeDecide('auto', ok, ok), {
    plane: 'handoff',
    reason: 'FF_PLANE_REASON_NO_COMMON_RDMA',
    description: planeDecide('auto', ok, ok).description,
  });
  assert.is(planeDecide('auto', ok, { agentReachable: false, rdmaActive: false }).reason, 'FF_PLANE_REASON_AGENT_UNREACHABLE');
  assert.is(planeDecide('tcp', ok, ok).reason, 'FF_PLANE_REASON_USER_TCP');
  assert.is(planeDecide('router', ok, ok).plane, 'router');
  assert.equal(planeDecide('router', ok, ok, false).plane, 'tcp');
  assert.is(planeDecide('auto', ok, ok, false).reason, 'FF_PLANE_REASON_AGENTS_CANNOT_REACH');
  assert.is(planeDecide('tcp', ok, ok, false).reason, 'FF_PLANE_REASON_USER_TCP');
  const raw = loadAddon();
  assert.throws(() => raw.planeDecide('rdma', ok, ok, true), /one of auto, handoff, router, tcp/);
  assert.throws(() => raw.planeDecide('auto', { agentReachable: 1, rdmaActive: false } as never, ok, true), /agentReachable: boolean/);
  assert.throws(() => raw.planeDecide('auto\0', ok, ok, true), /one of auto/);
  assert.throws(() => (raw.planeDecide as (...args: unknown[]) => unknown)('auto', ok, ok), /a boolean/);
});

test.run();
