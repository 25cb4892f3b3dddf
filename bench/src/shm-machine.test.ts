import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderText } from './render-text';
import { floorRows, parseFloor, parseShmMachine, placementOf, shmMachineSection } from './shm-machine';

/** What `ffbench_ring --describe --json` printed on the development machine (2026-11-29). */
const DESCRIBED =
  '{"benchmark":"ffbench_ring","version":1,"cpu":{"model":"AMD EPYC","vendor":"AuthenticAMD","family":26,"model_number":2,' +
  '"flags":"sse2 avx2 avx512f avx512bw erms fsrm hypervisor","l1d_bytes":49152,"l2_bytes":1048576,"l3_bytes":0,"cache_source":"sysconf"},' +
  '"chosen":{"fragment_size":32768,"ring_size":524288,"copy":"movsb","why":"ring L2/2"}}';

test('shm machine: ffbench_ring --describe parses into the raw record; anything else is null', () => {
  const shm = parseShmMachine(DESCRIBED);
  assert.ok(shm);
  assert.is(shm.cpu.l2Bytes, 1048576);
  assert.is(shm.cpu.modelNumber, 2);
  assert.is(shm.chosen.copy, 'movsb');
  assert.is(shm.chosen.ringSize, 524288);
  assert.is(parseShmMachine('not json'), null);
  assert.is(parseShmMachine('{"benchmark":"ffbench_poll","version":1}'), null);
  assert.is(parseShmMachine(DESCRIBED.replace('"l2_bytes":1048576', '"l2_bytes":-1')), null);
});

test('shm machine: the floor parses, and names the placement the issue measured (25, 58, 250 ns)', () => {
  assert.is(parseFloor('{"benchmark":"ffbench_ring","version":1,"floor_ns":58.5,"cpus":[0,1]}'), 58.5);
  assert.is(parseFloor('{"benchmark":"ffbench_ring","version":1,"floor_ns":0}'), null);
  assert.is(parseFloor(''), null);
  assert.is(placementOf(25), 'SMT siblings');
  assert.is(placementOf(58), 'one core complex');
  assert.is(placementOf(250), 'two core complexes');
});

test('shm machine: floors are grouped per repetition; the section shows the CPU, the choices and each placement', () => {
  const runs = [
    { repetition: 1, floorNs: 25 },
    { repetition: 1, floorNs: 27 },
    { repetition: 2, floorNs: 240 },
    { repetition: 2, floorNs: null },
    { repetition: 3 },
  ];
  const rows = floorRows(runs);
  assert.equal(
    rows.map((row) => row.placement),
    ['SMT siblings', 'two core complexes', 'not measured'],
  );
  assert.is(rows[0]!.floor!.median, 26);
  const text = renderText(shmMachineSection(parseShmMachine(DESCRIBED), runs));
  assert.match(text, /AMD EPYC/);
  assert.match(text, /erms fsrm/);
  assert.match(text, /fragments of 32 KiB, rings of 512 KiB and the movsb copy/);
  assert.match(text, /two core complexes/);
  assert.equal(shmMachineSection(null, [{ repetition: 1 }]), []);
});

test.run();
