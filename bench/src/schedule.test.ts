import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PROFILES } from './profiles';
import { scheduleRuns } from './schedule';

const profile = {
  modes: ['vader', 'bridge-tcp', 'freeflow-same-host'] as const,
  passes: [
    { benchmark: 'latency' as const, sizes: [8], iterations: null, warmup: null },
    { benchmark: 'bw' as const, sizes: [4096], iterations: null, warmup: null },
  ],
  netpipe: { modes: ['freeflow-same-host'] as const, upperBytes: 1024, repeats: 10 },
};

test('interleaved: A B C of one measurement, then the next measurement, then the next repetition', () => {
  const runs = scheduleRuns(profile, 2);
  const order = runs.map((run) => `${run.repetition}:${run.work.kind === 'mpi' ? `p${run.work.pass}` : 'np'}:${run.mode}`);
  assert.equal(order, [
    '1:p0:vader',
    '1:p0:bridge-tcp',
    '1:p0:freeflow-same-host',
    '1:p1:vader',
    '1:p1:bridge-tcp',
    '1:p1:freeflow-same-host',
    '1:np:freeflow-same-host',
    '2:p0:vader',
    '2:p0:bridge-tcp',
    '2:p0:freeflow-same-host',
    '2:p1:vader',
    '2:p1:bridge-tcp',
    '2:p1:freeflow-same-host',
    '2:np:freeflow-same-host',
  ]);
  assert.equal(
    runs.map((run) => run.index),
    [...runs.keys()],
  );
});

test('every profile: each mode runs each pass once per repetition', () => {
  for (const candidate of Object.values(PROFILES)) {
    const runs = scheduleRuns(candidate, candidate.repetitions);
    // profile rma: ffbench_rma and ffbench_shmwin_pingpong in every mode
    const oneSided = candidate.rma === true ? 2 * candidate.modes.length : 0;
    const perRepetition = candidate.modes.length * candidate.passes.length + (candidate.netpipe?.modes.length ?? 0) + oneSided;
    assert.is(runs.length, perRepetition * candidate.repetitions, candidate.name);
    for (const mode of candidate.modes) {
      const passes = runs.filter((run) => run.mode === mode && run.repetition === 1 && run.work.kind === 'mpi');
      assert.is(passes.length, candidate.passes.length, `${candidate.name} ${mode}`);
    }
  }
});

test.run();
