import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { loadRawReport, type RawReport } from './raw';
import { renderMarkdown } from './render-markdown';
import { renderText } from './render-text';
import { reportBlocks } from './report-content';
import {
  floorRows,
  MAX_PLACEMENT_RERUNS,
  parseFloor,
  parseShmMachine,
  PLACEMENT_CHANGED,
  placementOf,
  runPlacement,
  runUnderOnePlacement,
  shmMachineSection,
} from './shm-machine';
import { evaluateTargets, SHM_TARGETS, type TargetResult } from './summary';

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
    { repetition: 1, floorNs: 25, floorAfterNs: 26 },
    { repetition: 1, floorNs: 27, placementReruns: [{ floorNs: 27, floorAfterNs: 240 }] },
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
  assert.match(text, /re-run because the placement moved while they ran: 1 of 5 \(1 discarded attempts\)/);
  assert.equal(shmMachineSection(null, [{ repetition: 1 }]), []);
});

test('placement: a run has the placement both its floors say, and none when they disagree', () => {
  assert.is(runPlacement({ floorNs: 240, floorAfterNs: 230 }), 'two core complexes');
  assert.is(runPlacement({ floorNs: 240, floorAfterNs: 60 }), PLACEMENT_CHANGED);
  assert.is(runPlacement({ floorNs: 60 }), 'one core complex', 'reports from before the floor after');
  assert.is(runPlacement({}), null);
  assert.is(runPlacement({ floorNs: 20171, floorAfterNs: 78 }), 'one core complex', 'a preempted floor measurement names no placement');
  assert.is(runPlacement({ floorNs: 20171, floorAfterNs: 5000 }), null);
});

test('placement: a run during which the placement moved is run again, at most twice, and the discarded floors are kept', async () => {
  type Attempt = {
    attempt: number;
    floorNs?: number | null;
    floorAfterNs?: number | null;
    placementReruns?: { floorNs: number | null; floorAfterNs: number | null }[];
  };
  const runUnder = async (floors: number[]): Promise<{ record: Attempt; attempts: number }> => {
    let attempts = 0;
    const record = await runUnderOnePlacement(
      async (): Promise<Attempt> => ({ attempt: ++attempts }),
      async () => floors.shift() ?? null,
    );
    return { record, attempts };
  };
  const steady = await runUnder([240, 235]);
  assert.is(steady.attempts, 1);
  assert.is(steady.record.placementReruns, undefined);
  const movedOnce = await runUnder([60, 240, 240, 238]);
  assert.is(movedOnce.attempts, 2);
  assert.equal(movedOnce.record.placementReruns, [{ floorNs: 60, floorAfterNs: 240 }]);
  assert.equal([movedOnce.record.floorNs, movedOnce.record.floorAfterNs], [240, 238]);
  const alwaysMoving = await runUnder([60, 240, 60, 240, 60, 240, 60, 240]);
  assert.is(alwaysMoving.attempts, 1 + MAX_PLACEMENT_RERUNS, 'bounded');
  assert.is(runPlacement(alwaysMoving.record), PLACEMENT_CHANGED, 'the last attempt is kept, marked');
});

/** quick-raw.json's 4 MiB bandwidth, freeflow / vader 2-copy per repetition: 0.088x, 1.36x, 2.71x. */
function withFloors(floors: Record<string, Array<[number, number] | null>>): RawReport {
  const raw = loadRawReport(path.join(REPO_ROOT, 'bench', 'fixtures', 'quick-raw.json'));
  for (const run of raw.runs) {
    const floor = floors[run.mode]?.[run.repetition - 1];
    if (floor === undefined || floor === null || run.mpi?.benchmark !== 'bw') continue;
    [run.floorNs, run.floorAfterNs] = floor;
  }
  return raw;
}

const fourMiB = (raw: RawReport): TargetResult => evaluateTargets(raw, SHM_TARGETS).find((r) => r.target.label.startsWith('4 MiB bandwidth'))!;

test('placement: bandwidth ratios count only between runs under one placement; a counted repetition below 0.8x is NOT met', () => {
  const unmeasured = fourMiB(withFloors({}));
  assert.is(unmeasured.ratio!.n, 3, 'without floors every repetition counts, as before');

  const mixed = withFloors({
    'vader-2copy': [
      [240, 240],
      [60, 60],
      [240, 240],
    ],
    'freeflow-same-host': [
      [240, 236],
      [240, 240],
      [60, 240],
    ],
  });
  const result = fourMiB(mixed);
  assert.equal(
    result.pairs.map((pair) => pair.excluded),
    [null, 'placements differ (vader-2copy: one core complex, freeflow-same-host: two core complexes)', 'placement changed during the freeflow-same-host run'],
  );
  assert.is(result.ratio!.n, 1);
  assert.ok(Math.abs(result.ratio!.median - 46.9555072 / 533.213725) < 1e-9);
  assert.is(result.everyRepetitionMet, false, 'the slow repetition had one placement: it stays NOT met');
  const markdown = renderMarkdown(reportBlocks(mixed));
  assert.match(
    markdown,
    /\| 4 MiB bandwidth, freeflow \/ vader without single copy \| 0\.088x \| at least 1\.00x: NOT met; no repetition below 0\.80x: NOT met \| aim 1\.10x: NOT met \|/,
  );
  assert.match(markdown, /1 of 3; left out: 2 \(placements differ/);
  assert.match(
    markdown,
    /\| 4 MiB bandwidth, freeflow \/ vader without single copy \| 3 \| two core complexes \| changed during the run \| 2\.71x \| left out: placement changed during the freeflow-same-host run \|/,
  );

  const slowOneLeftOut = fourMiB(
    withFloors({
      'vader-2copy': [
        [60, 60],
        [240, 240],
        [25, 25],
      ],
      'freeflow-same-host': [
        [240, 240],
        [240, 240],
        [25, 25],
      ],
    }),
  );
  assert.is(slowOneLeftOut.ratio!.n, 2);
  assert.ok(slowOneLeftOut.ratio!.min > 1.3);
  assert.is(slowOneLeftOut.everyRepetitionMet, true);
  assert.is(slowOneLeftOut.met, true);
});

test.run();
