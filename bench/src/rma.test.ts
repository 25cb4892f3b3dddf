import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isFfError } from '#runtime/errors';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { loadRawReport, rawReportSchema, type RawReport, type RunRecord } from './raw';
import { renderText } from './render-text';
import { stdoutBlocks } from './report-content';
import { rmaChart, rmaRows, rmaTargetsTable } from './rma';
import { parseRmaOutput, parseShmwinOutput, RMA_KINDS, RMA_OPS, RMA_SIZES, type RmaResult } from './rma-result';
import { PROFILES } from './profiles';
import { scheduleRuns } from './schedule';
import { writeReports } from './write-reports';

/** ffbench_rma's stdout as rank 0 prints it (rma_bench.c's printf formats), every value distinct. */
function rmaOutput(value: (op: string, bytes: number, kind: string) => number): string[] {
  const lines = ['some MPI warning on stdout'];
  for (const op of RMA_OPS) {
    for (const bytes of RMA_SIZES) {
      lines.push(`rma op=${op} bytes=${bytes} mode=latency value=${value(op, bytes, 'latency').toFixed(3)} unit=us`);
      lines.push(`rma op=${op} bytes=${bytes} mode=bandwidth value=${value(op, bytes, 'bandwidth').toFixed(1)} unit=MB/s`);
    }
  }
  return lines;
}

const distinct = (op: string, bytes: number, kind: string): number =>
  (RMA_OPS.indexOf(op as never) + 1) * 1000 + RMA_SIZES.indexOf(bytes as never) * 10 + (kind === 'latency' ? 1 : 2);

const expectInvalid = (parse: () => unknown, pattern: RegExp): void => {
  try {
    parse();
  } catch (error) {
    assert.ok(isFfError(error) && error.code === 'BENCH_RESULT_INVALID', String(error));
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable('parsed output it should have refused');
};

test('ffbench_rma: every operation, size and kind is read with its value', () => {
  const result = parseRmaOutput(rmaOutput(distinct));
  assert.is(result.program, 'ffbench_rma');
  if (result.program !== 'ffbench_rma') return;
  assert.is(result.results.length, RMA_OPS.length * RMA_SIZES.length * RMA_KINDS.length);
  for (const r of result.results) assert.is(r.value, distinct(r.op, r.bytes, r.kind), `${r.op} ${r.bytes} ${r.kind}`);
  const put4m = result.results.find((r) => r.op === 'put' && r.bytes === 4194304 && r.kind === 'bandwidth');
  assert.equal(put4m, { op: 'put', bytes: 4194304, kind: 'bandwidth', value: 1022, unit: 'MB/s' });
});

test('ffbench_rma: a line inside other text is read as run.sh read it, and the first of two counts', () => {
  const lines = rmaOutput(distinct).map((line) => `[1,0]<stdout>:${line}`);
  lines.push('rma op=put bytes=8 mode=latency value=99.000 unit=us');
  const result = parseRmaOutput(lines);
  if (result.program !== 'ffbench_rma') return assert.unreachable();
  assert.is(result.results.find((r) => r.op === 'put' && r.bytes === 8 && r.kind === 'latency')?.value, 1001);
});

test('ffbench_rma: a missing line or a line without a number is refused, naming it', () => {
  const lines = rmaOutput(distinct).filter((line) => !line.startsWith('rma op=acc bytes=65536 mode=bandwidth'));
  expectInvalid(() => parseRmaOutput(lines), /no result for acc 65536 B bandwidth/);
  expectInvalid(() => parseRmaOutput([]), /no result for put 8 B latency/);
  const garbled = rmaOutput(distinct).map((line) => line.replace(/value=[0-9.]+/, 'value=').replace('op=get', 'op=get'));
  expectInvalid(() => parseRmaOutput(garbled), /does not know/);
  const unknownOp = rmaOutput(distinct).map((line) => line.replace('op=acc', 'op=fetch'));
  expectInvalid(() => parseRmaOutput(unknownOp), /does not know/);
});

test('ffbench_shmwin_pingpong: the median of one round is read; its absence is refused', () => {
  const lines = ['round 0: median 593 ns, min 540 ns (20000 round trips)', 'shmwin round trip: median of 1 round medians 593 ns'];
  assert.equal(parseShmwinOutput(lines), { program: 'ffbench_shmwin_pingpong', roundTripNs: 593 });
  expectInvalid(() => parseShmwinOutput(lines.slice(0, 1)), /median of 1 round medians/);
  expectInvalid(() => parseShmwinOutput(['shmwin round trip: median of 5 round medians 593 ns']), /median of 1 round medians/);
});

test('profile rma schedules both programs in both modes, side by side, every repetition', () => {
  const runs = scheduleRuns(PROFILES.rma, 2);
  assert.equal(
    runs.map((run) => `${run.repetition} ${run.mode} ${run.work.kind}`),
    [
      '1 vader rma',
      '1 freeflow-same-host rma',
      '1 vader shmwin',
      '1 freeflow-same-host shmwin',
      '2 vader rma',
      '2 freeflow-same-host rma',
      '2 vader shmwin',
      '2 freeflow-same-host shmwin',
    ],
  );
});

/** A raw.json of profile rma: the quick fixture's machine and modes, with one-sided runs whose values are given. */
function rmaReport(values: { vader: (repetition: number) => { bandwidth: number; roundTripNs: number }; freeflow: typeof values.vader }): RawReport {
  const base = loadRawReport(path.join(REPO_ROOT, 'bench', 'fixtures', 'quick-raw.json'));
  const template = base.runs[0]!;
  const runs: RunRecord[] = [];
  for (const [repetition, mode, kind] of scheduleRuns(PROFILES.rma, 3).map((run) => [run.repetition, run.mode, run.work.kind] as const)) {
    const v = (mode === 'vader' ? values.vader : values.freeflow)(repetition);
    const rma: RmaResult =
      kind === 'rma'
        ? parseRmaOutput(rmaOutput((_op, _bytes, k) => (k === 'bandwidth' ? v.bandwidth : 1)))
        : { program: 'ffbench_shmwin_pingpong', roundTripNs: v.roundTripNs };
    runs.push({
      ...template,
      index: runs.length,
      repetition,
      mode,
      work: { kind: kind as 'rma' | 'shmwin' },
      mpi: null,
      netpipe: null,
      rma,
      status: 'ok',
      problem: null,
    });
  }
  const raw = {
    ...base,
    profile: { ...base.profile, name: 'rma', repetitions: 3, modes: ['vader', 'freeflow-same-host'], passes: [], netpipe: null, rma: true },
    modes: base.modes.filter((mode) => mode.id === 'vader' || mode.id === 'freeflow-same-host'),
    runs,
  };
  // What ffbench writes must be what it reads back.
  return rawReportSchema.parse(JSON.parse(JSON.stringify(raw)));
}

test('verdicts: freeflow at 0.8x of vader is met, below it is not; times compare the other way round', () => {
  const raw = rmaReport({
    vader: (r) => ({ bandwidth: 1000 * r, roundTripNs: 600 }),
    freeflow: (r) => ({ bandwidth: [800, 1500, 2100][r - 1]!, roundTripNs: [700, 760, 800][r - 1]! }),
  });
  const rows = rmaRows(raw);
  const targets = rows.filter((row) => row.measurement.target);
  assert.is(targets.length, 7, 'put/get/accumulate bandwidth at 64 KiB and 4 MiB, and the shared-window round trip');
  for (const row of targets.filter((r) => r.measurement.unit === 'MB/s')) {
    // per repetition 0.8, 0.75, 0.7: median 0.75
    assert.equal([row.speedRatio?.median, row.speedRatio?.min, row.speedRatio?.max], [0.75, 0.7, 0.8], row.measurement.label);
    assert.is(row.met, false);
  }
  const window = targets.find((row) => row.measurement.unit === 'ns')!;
  assert.ok(Math.abs(window.speedRatio!.median - 600 / 760) < 1e-12);
  assert.is(window.met, false, '600/760 = 0.79 is below 0.8');
  assert.equal(window.vader, { median: 600, min: 600, max: 600, n: 3 });
  // latencies are recorded, without a verdict
  assert.ok(rows.filter((row) => !row.measurement.target).every((row) => row.met === null && row.measurement.unit === 'us'));

  const exactlyAtBound = rmaReport({ vader: () => ({ bandwidth: 1000, roundTripNs: 600 }), freeflow: () => ({ bandwidth: 800, roundTripNs: 750 }) });
  assert.ok(rmaRows(exactlyAtBound).every((row) => row.met !== false));
  const table = rmaTargetsTable(exactlyAtBound);
  assert.is(table.rows.length, 7);
  assert.ok(
    table.rows.every((row) => row[2] === 'at least 0.80x: met'),
    JSON.stringify(table.rows),
  );
});

test('a missing freeflow run leaves its targets not measured, not met', () => {
  const raw = rmaReport({ vader: () => ({ bandwidth: 1000, roundTripNs: 600 }), freeflow: () => ({ bandwidth: 2000, roundTripNs: 300 }) });
  const broken = { ...raw, runs: raw.runs.map((run) => (run.mode === 'freeflow-same-host' ? { ...run, status: 'failed' as const, rma: null } : run)) };
  assert.ok(rmaRows(broken).every((row) => row.met === null && row.speedRatio === null));
  assert.ok(rmaTargetsTable(broken).rows.every((row) => row[2] === 'at least 0.80x: not measured'));
});

test('the reports of profile rma: targets table on stdout, chart beside it in the HTML, no empty point-to-point sections', () => {
  const raw = rmaReport({ vader: () => ({ bandwidth: 1000, roundTripNs: 600 }), freeflow: () => ({ bandwidth: 2000, roundTripNs: 300 }) });
  const text = renderText(stdoutBlocks(raw, true));
  assert.match(text, /One-sided targets \(issue 9\)/);
  assert.match(text, /put 4 MiB bandwidth, freeflow \/ vader +2\.00x \[2\.00-2\.00\] +at least 0\.80x: met/);
  assert.match(
    text,
    /MPI_Win_allocate_shared load\/store round trip, freeflow \/ vader \(vader time \/ freeflow time\) +2\.00x \[2\.00-2\.00\] +at least 0\.80x: met/,
  );
  assert.not.match(text, /Headline|Fig\. 1|freeflow BTL targets/);
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-rma-'));
  try {
    const files = writeReports(raw, path.join(dir, 'out'));
    const html = readFileSync(files.html, 'utf8');
    assert.match(html, /One-sided: freeflow \(2 containers\) \/ vader/);
    assert.ok(html.includes(rmaChart(raw)), 'the ratio chart is in the HTML report');
    // one bar per measurement, grouped by operation
    assert.is((rmaChart(raw).match(/<rect /g) ?? []).length, 13);
    for (const group of ['put', 'get', 'accumulate', 'shared window']) assert.match(rmaChart(raw), new RegExp(`font-weight="600">${group}<`));
    assert.equal(
      loadRawReport(files.raw).runs.map((run) => run.rma?.program),
      raw.runs.map((run) => run.rma?.program),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
