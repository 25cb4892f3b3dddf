import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunProgressBar } from './progress-bar';
import type { RunRecord } from './raw';
import { scheduleRuns, type ScheduledRun } from './schedule';

const runs = scheduleRuns(
  {
    modes: ['vader', 'bridge-tcp'],
    passes: [{ benchmark: 'latency', sizes: [8], iterations: null, warmup: null }],
    netpipe: null,
  },
  3,
);

function recordOf(run: ScheduledRun, status: RunRecord['status'] = 'ok'): RunRecord {
  return {
    ...run,
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 0,
    load1: 0,
    exitCode: 0,
    paths: { planned: [], actual: null, declined: [] },
    status,
    problem: status === 'ok' ? null : 'mpirun exited with code 1',
    output: [],
    mpi: null,
    netpipe: null,
  };
}

/** vader runs take 1 s, bridge-tcp runs 3 s. */
function drive(interactive: boolean): { output: string; bar: RunProgressBar; finish: (count: number) => void } {
  let clock = 0;
  let output = '';
  const bar = new RunProgressBar(
    (text) => (output += text),
    interactive,
    (run) => `${run.mode} #${run.repetition}`,
    () => clock,
  );
  bar.start(runs);
  const finish = (count: number): void => {
    for (const run of runs.slice(0, count)) {
      clock += run.mode === 'vader' ? 1000 : 3000;
      bar.finished(recordOf(run, run.index === 3 ? 'failed' : 'ok'));
    }
  };
  return {
    get output() {
      return output;
    },
    bar,
    finish,
  };
}

test('time left: each remaining run costs what the same measurement took last time', () => {
  const { bar, finish } = drive(false);
  finish(2);
  // 4 runs left: 2 vader (1 s each) and 2 bridge-tcp (3 s each).
  assert.is(bar.remainingMs(), 8000);
});

test('not a terminal: one line per finished run, failures named', () => {
  const state = drive(false);
  state.finish(4);
  const lines = state.output.trimEnd().split('\n');
  assert.is(lines.length, 4);
  assert.is(lines[0], '[ffbench 1/6] vader #1: ok (1.00 s), about 5.00 s left');
  assert.is(lines[3], '[ffbench 4/6] bridge-tcp #2: FAILED: mpirun exited with code 1 (3.00 s), about 4.00 s left');
});

test('a terminal: one line redrawn in place, with the bar and the next run; failures on their own line', () => {
  const state = drive(true);
  state.finish(4);
  state.bar.end();
  assert.ok(state.output.startsWith('\r\x1b[2K[........................] 0/6; next: vader #1'));
  // eslint-disable-next-line no-control-regex -- the terminal's escape sequences are what this test checks
  assert.match(state.output, /\r\x1b\[2K\[ffbench\] bridge-tcp #2: FAILED: mpirun exited with code 1\n/);
  // eslint-disable-next-line no-control-regex -- the terminal's escape sequences are what this test checks
  assert.match(state.output, /\r\x1b\[2K\[################\.{8}\] 4\/6, about 4\.00 s left; next: vader #3\n$/);
});

test.run();
