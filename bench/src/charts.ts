import { formatSize } from '#runtime/util/units';
import { formatNumber } from './format';
import type { ModeId } from './modes';
import type { RawReport } from './raw';
import type { Spread } from './statistics';
import { BANDWIDTH_SIZE, FIGURE_1, figure7Panels, LATENCY_SIZE, METRICS, modesRun, netpipeAgreement, sizesOf, statOf, type MetricId } from './summary';
import { barChart, lineChart, type Bar, type ChartPoint, type LineSeries } from './svg-chart';
import { modeName } from './tables';

/** One colour per mode in every chart; freeflow's are the saturated ones. */
export const MODE_COLOR: Readonly<Record<ModeId, string>> = {
  vader: '#4c72b0',
  'vader-2copy': '#8fa9d6',
  'tcp-loopback': '#dd8452',
  'ucx-shm': '#8172b3',
  'bridge-tcp': '#c44e52',
  'freeflow-same-host': '#2ca02c',
  'overlay-tcp': '#937860',
  'host-tcp': '#da8bc3',
  'freeflow-handoff': '#17becf',
  'freeflow-router': '#bcbd22',
  // Jumbo frames: the same family, darker.
  'overlay-tcp-jumbo': '#5e4c3d',
  'host-tcp-jumbo': '#a4578d',
  'freeflow-handoff-jumbo': '#0f7c88',
  'freeflow-router-jumbo': '#7d7e16',
  // Jumbo host network, containers at 1450: the same family, lighter.
  'overlay-tcp-jumbo-host': '#c9b6a5',
  'host-tcp-jumbo-host': '#efc2e1',
  'freeflow-handoff-jumbo-host': '#8fe3ec',
  'freeflow-router-jumbo-host': '#e0e170',
};

const point = (x: number, spread: Spread): ChartPoint => ({ x, y: spread.median, low: spread.min, high: spread.max });

function modeSeries(raw: RawReport, metric: MetricId): LineSeries[] {
  const sizes = sizesOf(raw, metric);
  return raw.modes
    .filter((mode) => mode.refused === null)
    .map((mode) => ({
      name: modeName(raw, mode.id),
      color: MODE_COLOR[mode.id],
      dashed: mode.locality === 'cross-host',
      points: sizes.flatMap((size) => {
        const spread = statOf(raw, mode.id, metric, size);
        return spread === null || spread.median <= 0 ? [] : [point(size, spread)];
      }),
    }));
}

/** A metric against message size, log scales, one line per mode. */
export function metricChart(raw: RawReport, metric: MetricId): string {
  const { short, unit } = METRICS[metric];
  return lineChart({
    title: `${short} (${unit}) against message size`,
    xLabel: 'message size (bytes)',
    yLabel: unit,
    series: modeSeries(raw, metric),
    formatX: formatSize,
    formatY: formatNumber,
  });
}

/**
 * Latency bars span orders of magnitude (shared memory 0.2 us beside TCP 10 us): a log axis keeps every
 * bar visible. Bandwidth and CPU bars stay linear from zero, bandwidth in GB/s.
 */
function barScale(metric: MetricId): 'linear' | 'log' {
  return metric === 'latency' ? 'log' : 'linear';
}

function barUnit(metric: MetricId): { unit: string; scale: number } {
  return METRICS[metric].unit === 'MB/s' ? { unit: 'GB/s', scale: 1000 } : { unit: METRICS[metric].unit, scale: 1 };
}

function bar(raw: RawReport, mode: ModeId, name: string, metric: MetricId, size: number): Bar {
  const spread = statOf(raw, mode, metric, size);
  const { scale } = barUnit(metric);
  return {
    name,
    color: MODE_COLOR[mode],
    value: spread === null ? null : spread.median / scale,
    low: (spread?.min ?? 0) / scale,
    high: (spread?.max ?? 0) / scale,
  };
}

function barTitle(figure: string, metric: MetricId, size: number): string {
  return `${figure}: ${METRICS[metric].short}, ${formatSize(size)} (${barUnit(metric).unit}${barScale(metric) === 'log' ? ', log axis' : ''})`;
}

const ran = (raw: RawReport, mode: ModeId): boolean => modesRun(raw).has(mode);

/** Fig. 1 of the paper: latency and bandwidth bars of shared memory, host mode, overlay and freeflow. */
export function figure1Charts(raw: RawReport): string[] {
  const bars = FIGURE_1.filter((b) => ran(raw, b.mode));
  const panel = (metric: MetricId, size: number): string =>
    barChart({
      title: barTitle('Fig. 1', metric, size),
      yLabel: barUnit(metric).unit,
      groups: [{ label: 'two ranks on one host', bars: bars.map((b) => bar(raw, b.mode, shortName(raw, b.mode), metric, size)) }],
      formatY: formatNumber,
      scale: barScale(metric),
    });
  return [panel('latency', LATENCY_SIZE), panel('bandwidth', BANDWIDTH_SIZE)];
}

/**
 * Fig. 7 of the paper: TCP overlay vs freeflow, intra- and inter-host (with host-mode TCP, one bar per
 * freeflow plane that ran, each MTU its own group), for latency, bandwidth and CPU.
 */
export function figure7Charts(raw: RawReport): string[] {
  const panels = figure7Panels(raw);
  const chart = (metric: MetricId, size: number): string =>
    barChart({
      title: barTitle('Fig. 7', metric, size),
      yLabel: barUnit(metric).unit,
      groups: panels.map(({ panel, overlay, hostMode, freeflow }) => ({
        label: panel,
        bars: [overlay, ...(hostMode === null ? [] : [hostMode]), ...freeflow.filter((b) => ran(raw, b.mode))].map((b) =>
          bar(raw, b.mode, b.label, metric, size),
        ),
      })),
      formatY: formatNumber,
      scale: barScale(metric),
    });
  return [chart('latency', LATENCY_SIZE), chart('bandwidth', BANDWIDTH_SIZE), chart('cpu', BANDWIDTH_SIZE)];
}

/** ffbench_mpi's and NetPIPE's latency curves for one mode. */
export function netpipeChart(raw: RawReport, mode: ModeId): string {
  const rows = netpipeAgreement(raw, mode);
  const series = (name: string, dashed: boolean, pick: (row: (typeof rows)[number]) => Spread | null): LineSeries => ({
    name,
    color: dashed ? '#555555' : MODE_COLOR[mode],
    dashed,
    points: rows.flatMap((row) => {
      const spread = pick(row);
      return spread === null ? [] : [point(row.size, spread)];
    }),
  });
  return lineChart({
    title: `${modeName(raw, mode)}: ffbench_mpi and NetPIPE latency`,
    xLabel: 'message size (bytes)',
    yLabel: 'us',
    series: [series('ffbench_mpi latency', false, (row) => row.ffbenchLatencyUs), series('NetPIPE', true, (row) => row.netpipeLatencyUs)],
    formatX: formatSize,
    formatY: formatNumber,
  });
}

function shortName(raw: RawReport, mode: ModeId): string {
  return raw.modes.find((m) => m.id === mode)?.name ?? mode;
}
