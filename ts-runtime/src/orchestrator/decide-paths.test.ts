import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HostCapabilities } from '../native/capabilities';
import { decideInterHost, decidePaths } from './decide-paths';
import { PATH_CHAR } from './path-kind';
import { placeRanks } from './placement';

function host(fs = 'tmpfs', bytes = 1 << 30): HostCapabilities {
  return { rdma: false, ucxTransports: ['tcp'], cpus: 2, sharedDir: { fs, bytes } };
}

const rows = (paths: ReturnType<typeof decidePaths>) => paths.map((row) => row.map((kind) => PATH_CHAR[kind]).join(''));
const demo = placeRanks({ hosts: 2, containersPerHost: 2, slotsPerContainer: 1 }, 4, 'fill');

test('freeflow: shm on the same host, tcp across hosts (the documented example)', () => {
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow')), ['smtt', 'mstt', 'ttsm', 'ttms']);
});

test('overlay (status quo): containers never share memory', () => {
  assert.equal(rows(decidePaths(demo, [host(), host()], 'overlay')), ['sttt', 'tstt', 'ttst', 'ttts']);
});

test('overlay: ranks inside one container share memory (vader)', () => {
  const slots = placeRanks({ hosts: 1, containersPerHost: 2, slotsPerContainer: 2 }, 3, 'fill');
  assert.equal(rows(decidePaths(slots, [host()], 'overlay')), ['smt', 'mst', 'tts']);
});

test('freeflow: a host whose shared directory cannot hold segments gets tcp', () => {
  assert.equal(rows(decidePaths(demo, [host('ext4'), host()], 'freeflow')), ['sttt', 'tstt', 'ttsm', 'ttms']);
});

test('freeflow: a full shared directory gets tcp', () => {
  assert.equal(rows(decidePaths(demo, [host(), host('tmpfs', 0)], 'freeflow')), ['smtt', 'mstt', 'ttst', 'ttts']);
});

test('router is never chosen, even with active RDMA ports (no router exists yet)', () => {
  const rdma: HostCapabilities = { ...host(), rdma: true };
  assert.not.ok(decidePaths(demo, [rdma, rdma], 'freeflow').flat().includes('router'));
});

test('interHost auto keeps today\'s plan: tcp across hosts, and says why', () => {
  const auto = decideInterHost('freeflow', 'auto');
  assert.is(auto.plane, 'tcp');
  assert.match(auto.reason, /^auto: .*opt-in/);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow', auto)), ['smtt', 'mstt', 'ttsm', 'ttms']);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow')), ['smtt', 'mstt', 'ttsm', 'ttms']);
});

test('interHost handoff: h for every pair across hosts, m kept within a host', () => {
  const handoff = decideInterHost('freeflow', 'handoff');
  assert.is(handoff.plane, 'handoff');
  assert.match(handoff.reason, /handoff requested/);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow', handoff)), ['smhh', 'mshh', 'hhsm', 'hhms']);
});

test('interHost handoff never plans h within a host, even without shared memory there', () => {
  const handoff = decideInterHost('freeflow', 'handoff');
  assert.equal(rows(decidePaths(demo, [host('ext4'), host()], 'freeflow', handoff)), ['sthh', 'tshh', 'hhsm', 'hhms']);
  const three = placeRanks({ hosts: 3, containersPerHost: 1, slotsPerContainer: 1 }, 3, 'fill');
  assert.equal(rows(decidePaths(three, [host(), host(), host()], 'freeflow', handoff)), ['shh', 'hsh', 'hhs']);
});

test('interHost router: r for every pair across hosts (2 and 3 hosts), m kept within a host', () => {
  const router = decideInterHost('freeflow', 'router');
  assert.is(router.plane, 'router');
  assert.match(router.reason, /router requested/);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow', router)), ['smrr', 'msrr', 'rrsm', 'rrms']);
  const three = placeRanks({ hosts: 3, containersPerHost: 1, slotsPerContainer: 1 }, 3, 'fill');
  assert.equal(rows(decidePaths(three, [host(), host(), host()], 'freeflow', router)), ['srr', 'rsr', 'rrs']);
  assert.is(decideInterHost('overlay', 'router').plane, 'tcp');
});

test('interHost tcp: t across hosts, with its reason', () => {
  const tcp = decideInterHost('freeflow', 'tcp');
  assert.is(tcp.plane, 'tcp');
  assert.match(tcp.reason, /tcp requested/);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'freeflow', tcp)), ['smtt', 'mstt', 'ttsm', 'ttms']);
});

test('network overlay ignores the inter-host plane: never h', () => {
  const decision = decideInterHost('overlay', 'auto');
  assert.is(decision.plane, 'tcp');
  assert.match(decision.reason, /network overlay/);
  assert.equal(rows(decidePaths(demo, [host(), host()], 'overlay', decision)), ['sttt', 'tstt', 'ttst', 'ttts']);
});

test.run();
