import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HostCapabilities } from '../native/capabilities';
import { decidePaths } from './decide-paths';
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

test.run();
