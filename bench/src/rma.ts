import { formatSize } from '#runtime/util/units';
import { heading, paragraph, table, type Block, type Table } from './blocks';
import { formatNumber, formatRatio } from './format';
import type { ModeId } from './modes';
import type { RawReport } from './raw';
import { ONE_SIDED_MCA, RMA_KINDS, RMA_OPS, RMA_SIZES, SHMWIN_ARGS, type RmaResult } from './rma-result';
import { pairedRatio, spreadOf, type Spread } from './statistics';
import { barChart } from './svg-chart';

/**
 * Profile rma's report (issue 9's one-sided targets): ffbench_rma and ffbench_shmwin_pingpong
 * (rma-result.ts) in vader's mode and in freeflow's, side by side per repetition; verdicts against 0.8x
 * vader.
 */
/** issue 9: freeflow between 2 co-located containers at least this fraction of vader's speed. */
export const RMA_REQUIRED = 0.8;
/** The two modes compared: vader (both ranks in one namespace) and freeflow (2 containers of one host). */
export const RMA_BASELINE: ModeId = 'vader';
export const RMA_CANDIDATE: ModeId = 'freeflow-same-host';

/** One row of the report: a value of one program, and which way is better. */
export interface RmaMeasurement {
  readonly label: string;
  /** The chart's group (the operation) and the bar's name within it, short enough for a bar. */
  readonly group: string;
  readonly bar: string;
  readonly unit: 'us' | 'MB/s' | 'ns';
  /** Bandwidth: higher is better; times: lower. */
  readonly higherIsBetter: boolean;
  /** A target of issue 9 (>= 0.8x vader), or only reported. */
  readonly target: boolean;
  readonly pick: (result: RmaResult) => number | undefined;
}

const OP_NAME: Readonly<Record<(typeof RMA_OPS)[number], string>> = { put: 'put', get: 'get', acc: 'accumulate' };

function opMeasurement(op: (typeof RMA_OPS)[number], bytes: number, kind: (typeof RMA_KINDS)[number]): RmaMeasurement {
  return {
    label: `${OP_NAME[op]} ${formatSize(bytes)} ${kind}`,
    group: OP_NAME[op],
    bar: `${formatSize(bytes)} ${kind === 'latency' ? 'lat.' : 'bw'}`,
    unit: kind === 'latency' ? 'us' : 'MB/s',
    higherIsBetter: kind === 'bandwidth',
    target: kind === 'bandwidth',
    pick: (result) => (result.program === 'ffbench_rma' ? result.results.find((r) => r.op === op && r.bytes === bytes && r.kind === kind)?.value : undefined),
  };
}

/** run.sh's rows: latency at 8 B and 64 KiB, bandwidth at 64 KiB and 4 MiB, per operation; then the shared window. */
export const RMA_MEASUREMENTS: readonly RmaMeasurement[] = [
  ...RMA_OPS.flatMap((op) => [
    opMeasurement(op, RMA_SIZES[0], 'latency'),
    opMeasurement(op, RMA_SIZES[1], 'latency'),
    opMeasurement(op, RMA_SIZES[1], 'bandwidth'),
    opMeasurement(op, RMA_SIZES[2], 'bandwidth'),
  ]),
  {
    label: 'MPI_Win_allocate_shared load/store round trip',
    group: 'shared window',
    bar: 'round trip',
    unit: 'ns',
    higherIsBetter: false,
    target: true,
    pick: (result) => (result.program === 'ffbench_shmwin_pingpong' ? result.roundTripNs : undefined),
  },
];

/** The measurement's value in every repetition of a mode (runs that measured something). */
export function rmaValuesByRepetition(raw: RawReport, mode: ModeId, measurement: RmaMeasurement): Map<number, number> {
  const values = new Map<number, number>();
  for (const run of raw.runs) {
    if (run.mode !== mode || run.status === 'failed' || run.rma === null || run.rma === undefined) continue;
    const value = measurement.pick(run.rma);
    if (value !== undefined && Number.isFinite(value)) values.set(run.repetition, value);
  }
  return values;
}

export interface RmaRow {
  readonly measurement: RmaMeasurement;
  readonly vader: Spread | null;
  readonly freeflow: Spread | null;
  /** freeflow's speed / vader's from paired repetitions (bandwidth ff/vader, times vader/ff): higher is better. */
  readonly speedRatio: Spread | null;
  /** Against RMA_REQUIRED for a target, null when not measured or not a target. */
  readonly met: boolean | null;
}

export function rmaRows(raw: RawReport): RmaRow[] {
  return RMA_MEASUREMENTS.map((measurement) => {
    const vader = rmaValuesByRepetition(raw, RMA_BASELINE, measurement);
    const freeflow = rmaValuesByRepetition(raw, RMA_CANDIDATE, measurement);
    const speedRatio = measurement.higherIsBetter ? pairedRatio(freeflow, vader) : pairedRatio(vader, freeflow);
    return {
      measurement,
      vader: spreadOf([...vader.values()]),
      freeflow: spreadOf([...freeflow.values()]),
      speedRatio,
      met: !measurement.target || speedRatio === null ? null : speedRatio.median >= RMA_REQUIRED,
    };
  });
}

/** Whether the run holds the profile's one-sided measurements at all. */
export function hasRmaRuns(raw: RawReport): boolean {
  return raw.runs.some((run) => run.work.kind === 'rma' || run.work.kind === 'shmwin');
}

const verdictOf = (met: boolean | null): string => (met === null ? 'not measured' : met ? 'met' : 'NOT met');

function valueCell(spread: Spread | null, unit: RmaMeasurement['unit']): string {
  if (spread === null) return '-';
  const text = `${formatNumber(spread.median)} ${unit}`;
  return spread.n === 1 ? text : `${text} [${formatNumber(spread.min)}-${formatNumber(spread.max)}]`;
}

/** issue 9's targets with their verdicts. */
export function rmaTargetsTable(raw: RawReport): Table {
  const rows = rmaRows(raw)
    .filter((row) => row.measurement.target)
    .map((row) => [
      `${row.measurement.label}, freeflow / vader${row.measurement.higherIsBetter ? '' : ' (vader time / freeflow time)'}`,
      formatRatio(row.speedRatio),
      `at least ${RMA_REQUIRED.toFixed(2)}x: ${verdictOf(row.met)}`,
    ]);
  return { headers: ['target (median of paired repetitions [min-max], higher is better)', 'ratio', 'required'], rows, leftColumns: [2] };
}

/** Every measurement of both modes, as the former bench/onesided/run.sh printed them. */
export function rmaResultsTable(raw: RawReport): Table {
  const rows = rmaRows(raw).map((row) => [
    row.measurement.label,
    valueCell(row.vader, row.measurement.unit),
    valueCell(row.freeflow, row.measurement.unit),
    formatRatio(row.speedRatio),
    row.measurement.target ? verdictOf(row.met) : 'recorded',
  ]);
  return { headers: ['measurement', 'vader (1 namespace)', 'freeflow (2 containers)', 'ff / vader (higher is better)', `>= ${RMA_REQUIRED}x`], rows };
}

/**
 * One bar per measurement, grouped by operation: the speed ratio, green when a target is met, red when
 * not, pale for latencies (recorded only). Log axis: 1x beside 100x.
 */
export function rmaChart(raw: RawReport): string {
  const rows = rmaRows(raw);
  const groups = [...new Set(rows.map((row) => row.measurement.group))];
  return barChart({
    title: `One-sided: freeflow (2 containers) / vader, higher is better; target ${RMA_REQUIRED}x for bandwidth (bw) and the shared window (log axis)`,
    yLabel: 'freeflow / vader',
    groups: groups.map((group) => ({
      label: group,
      bars: rows
        .filter((row) => row.measurement.group === group)
        .map((row) => ({
          name: row.measurement.bar,
          color: row.met === false ? '#c44e52' : row.measurement.target ? '#2ca02c' : '#8fa9d6',
          value: row.speedRatio?.median ?? null,
          low: row.speedRatio?.min ?? 0,
          high: row.speedRatio?.max ?? 0,
        })),
    })),
    formatY: formatNumber,
    scale: 'log',
  });
}

/** The report's section: verdicts, chart, all measurements. */
export function rmaSection(raw: RawReport): Block[] {
  if (!hasRmaRuns(raw)) return [];
  return [
    heading(2, 'One-sided targets (issue 9)'),
    paragraph(
      `ffbench_rma (put, get, MPI_Accumulate of ints from rank 0 into rank 1's MPI_Win_create window in one lock_all epoch; latency: one operation + MPI_Win_flush; bandwidth: 32 operations per flush; ` +
        `puts and sums checked) and ffbench_shmwin_pingpong (${SHMWIN_ARGS.join(' ')}: the MPI_Win_allocate_shared load/store round trip), ` +
        `freeflow between 2 containers of one host (ffrun's default: osc rdma over the freeflow BTL) against vader with both ranks in one namespace (btl self,vader with CMA single copy: osc rdma over vader), ` +
        `both with osc ${ONE_SIDED_MCA.osc} only (a window osc rdma refused would fail the run, not fall back to osc pt2pt), side by side in every repetition on ${raw.machine.cpuModel} (${raw.machine.cpus} CPUs), 1-minute load average ${raw.machine.load.before[0].toFixed(2)} before and ${raw.machine.load.after[0].toFixed(2)} after. Ratios are freeflow's speed over vader's (for times: vader's time over freeflow's). A benchmark reports: it does not fail when a target is missed.`,
    ),
    table(rmaTargetsTable(raw)),
    { kind: 'chart', svg: rmaChart(raw) },
    heading(3, 'All one-sided measurements'),
    table(rmaResultsTable(raw)),
  ];
}
