import type { Table } from './blocks';
import { formatBytes, formatRatio, formatSize, formatSpread } from './format';
import { LOCALITY_LABEL, type ModeId } from './modes';
import type { RawReport } from './raw';
import {
  BANDWIDTH_SIZE,
  comparisons,
  evaluateTargets,
  FIGURE_1,
  FIGURE_7,
  LATENCY_SIZE,
  METRICS,
  modeStatuses,
  netpipeAgreement,
  ratioOf,
  segmentBytes,
  sizesOf,
  statOf,
  type MetricId,
} from './summary';

/** The tables of the reports and of stdout, each computed from raw.json. */

const STATUS_MARK: Readonly<Record<string, string>> = { ok: '', invalid: ' (INVALID)', failed: ' (FAILED)' };

export function modeName(raw: RawReport, id: ModeId): string {
  const mode = raw.modes.find((m) => m.id === id);
  const status = modeStatuses(raw).find((s) => s.mode.id === id)?.status ?? 'ok';
  return `${mode?.name ?? id}${STATUS_MARK[status]}`;
}

function latencyCell(raw: RawReport, id: ModeId): string {
  return formatSpread(statOf(raw, id, 'latency', LATENCY_SIZE), 'us');
}

function bandwidthCell(raw: RawReport, id: ModeId): string {
  return formatSpread(statOf(raw, id, 'bandwidth', BANDWIDTH_SIZE), 'MB/s');
}

function cpuCell(raw: RawReport, id: ModeId): string {
  return formatSpread(statOf(raw, id, 'cpu', BANDWIDTH_SIZE), 'ns/B');
}

const KEY_COLUMNS = [`latency ${formatSize(LATENCY_SIZE)}`, `bandwidth ${formatSize(BANDWIDTH_SIZE)}`, `CPU per byte at ${formatSize(BANDWIDTH_SIZE)}`];

/** Every mode, grouped by where its ranks are: the table printed at the end of a run. */
export function headlineTable(raw: RawReport): Table {
  const rows = raw.modes.map((mode, i) => [
    i > 0 && raw.modes[i - 1]!.locality === mode.locality ? '' : LOCALITY_LABEL[mode.locality],
    modeName(raw, mode.id),
    latencyCell(raw, mode.id),
    bandwidthCell(raw, mode.id),
    cpuCell(raw, mode.id),
  ]);
  return { headers: ['ranks', 'mode', ...KEY_COLUMNS], rows, leftColumns: [1] };
}

/** "containers, same host: freeflow 0.27 us vs bridge TCP 3.9 us (0.07x)". */
export function headlineComparisons(raw: RawReport): string[] {
  const lines: string[] = [];
  for (const { panel, overlay, freeflow } of FIGURE_7) {
    const ran = raw.modes.some((m) => m.id === overlay.mode) && raw.modes.some((m) => m.id === freeflow.mode);
    if (!ran) continue;
    const where = panel.includes('intra') ? 'containers, same host' : 'containers, across hosts';
    const latency = ratioOf(raw, freeflow.mode, overlay.mode, 'latency', LATENCY_SIZE);
    const bandwidth = ratioOf(raw, freeflow.mode, overlay.mode, 'bandwidth', BANDWIDTH_SIZE);
    lines.push(
      `${where}: ${modeName(raw, freeflow.mode)} ${latencyCell(raw, freeflow.mode)} vs ${modeName(raw, overlay.mode)} ${latencyCell(raw, overlay.mode)} (${formatRatio(latency)}); ` +
        `${bandwidthCell(raw, freeflow.mode)} vs ${bandwidthCell(raw, overlay.mode)} (${formatRatio(bandwidth)})`,
    );
  }
  return lines;
}

export function figure1Table(raw: RawReport): Table {
  const ran = new Set(raw.modes.map((m) => m.id));
  const rows = FIGURE_1.filter((bar) => ran.has(bar.mode)).map((bar) => [bar.label, latencyCell(raw, bar.mode), bandwidthCell(raw, bar.mode), cpuCell(raw, bar.mode)]);
  return { headers: ['two ranks on one host', ...KEY_COLUMNS], rows };
}

export function figure7Table(raw: RawReport): Table {
  const rows: string[][] = [];
  for (const { panel, overlay, freeflow } of FIGURE_7) {
    const cells = (metric: MetricId, size: number): string[] => {
      const unit = METRICS[metric].unit;
      return [formatSpread(statOf(raw, overlay.mode, metric, size), unit), formatSpread(statOf(raw, freeflow.mode, metric, size), unit), formatRatio(ratioOf(raw, freeflow.mode, overlay.mode, metric, size))];
    };
    rows.push([`${panel}: latency ${formatSize(LATENCY_SIZE)}`, ...cells('latency', LATENCY_SIZE)]);
    rows.push([`${panel}: bandwidth ${formatSize(BANDWIDTH_SIZE)}`, ...cells('bandwidth', BANDWIDTH_SIZE)]);
    rows.push([`${panel}: CPU per byte`, ...cells('cpu', BANDWIDTH_SIZE)]);
  }
  return { headers: ['', 'TCP overlay (Weave-like)', 'freeflow', 'freeflow / TCP'], rows };
}

/** Sizes shown in wide tables: all when few, else the quick profile's nine. */
const TABLE_SIZES = [1, 8, 64, 512, 4096, 32768, 262144, 1048576, 4194304];
export function tableSizes(raw: RawReport, metric: MetricId): number[] {
  const sizes = sizesOf(raw, metric);
  return sizes.length <= TABLE_SIZES.length ? sizes : sizes.filter((size) => TABLE_SIZES.includes(size));
}

/** freeflow / baseline at every size: below 1 is better for latency and CPU, above 1 for bandwidth. */
export function ratioTable(raw: RawReport, metric: MetricId): Table {
  const sizes = tableSizes(raw, metric);
  const rows = comparisons(raw).map(({ candidate, baseline }) => [
    `${modeName(raw, candidate)} / ${modeName(raw, baseline)}`,
    ...sizes.map((size) => formatRatio(ratioOf(raw, candidate, baseline, metric, size))),
  ]);
  return { headers: ['ratio', ...sizes.map(formatSize)], rows };
}

/** Median [min-max] of every mode at every size. */
export function resultsTable(raw: RawReport, metric: MetricId): Table {
  const sizes = tableSizes(raw, metric);
  const rows = raw.modes.map((mode) => [modeName(raw, mode.id), ...sizes.map((size) => formatSpread(statOf(raw, mode.id, metric, size), METRICS[metric].unit))]);
  return { headers: ['mode', ...sizes.map(formatSize)], rows };
}

export function targetsTable(raw: RawReport): Table {
  const verdict = (met: boolean | null): string => (met === null ? 'not measured' : met ? 'met' : 'NOT met');
  const rows = evaluateTargets(raw).map(({ target, ratio, met, aimMet }) => [
    target.label,
    formatRatio(ratio),
    `${target.bound} ${target.required.toFixed(2)}x: ${verdict(met)}`,
    `aim ${target.aim.toFixed(2)}x: ${verdict(aimMet)}`,
  ]);
  return { headers: ['target (median of paired repetitions [min-max])', 'ratio', 'required', 'aim'], rows, leftColumns: [2, 3] };
}

/** Shared memory per rank for a few local-peer counts, with this run's ring size. */
export function segmentTable(ringSize: number): Table {
  const rows = [1, 3, 7, 15, 63].map((peers) => [String(peers), formatBytes(segmentBytes(ringSize, peers))]);
  return { headers: ['local peers sending to the rank (a)', 'shared memory of the rank'], rows };
}

export function netpipeTable(raw: RawReport, mode: ModeId): Table {
  const rows = netpipeAgreement(raw, mode).map((row) => {
    const ratio = row.ffbenchLatencyUs === null || row.netpipeLatencyUs === null ? '-' : `${(row.ffbenchLatencyUs.median / row.netpipeLatencyUs.median).toFixed(2)}x`;
    return [formatSize(row.size), formatSpread(row.ffbenchLatencyUs, 'us'), formatSpread(row.netpipeLatencyUs, 'us'), ratio];
  });
  return { headers: ['size', 'ffbench_mpi latency', 'NetPIPE latency', 'ffbench / NetPIPE'], rows };
}

export function modesTable(raw: RawReport): Table {
  const statuses = modeStatuses(raw);
  const rows = statuses.map(({ mode, status, pathsUsed }) => {
    const settings = [...Object.entries(mode.mca).map(([k, v]) => `${k}=${v}`), ...Object.entries(mode.env).map(([k, v]) => `${k}=${v}`)];
    const where = mode.placement.map((p) => `${p.rank}:${p.container.replace(/^ff-[a-z0-9]+-/, '')}`).join(' ');
    return [mode.name, mode.description, where, `network ${mode.network}${settings.length === 0 ? '' : `; ${settings.join(', ')}`}`, pathsUsed, mtuOf(raw, mode.link), status];
  });
  return { headers: ['mode', 'what', 'rank:container', 'ffrun network and MCA/env', 'path used', 'MTU', 'status'], rows, leftColumns: [1, 2, 3, 4, 5, 6] };
}

function mtuOf(raw: RawReport, link: string | null): string {
  const { container, host } = raw.machine.mtus;
  switch (link) {
    case null:
      return 'n/a (shared memory)';
    case 'container lo':
      return `lo ${container.lo ?? '?'}`;
    case 'container eth0':
      return `veth ${container.eth0 ?? '?'}`;
    default:
      return `veth ${container.eth0 ?? '?'}, vxlan ${host.vxlan0 ?? '?'}, underlay ${host.ul0 ?? '?'}`;
  }
}

export function machineTable(raw: RawReport): Table {
  const m = raw.machine;
  const mtus = (links: Record<string, number>): string => Object.entries(links).map(([name, mtu]) => `${name} ${mtu}`).join(', ');
  const load = (triple: readonly number[]): string => triple.map((v) => v.toFixed(2)).join(' / ');
  const rows = [
    ['CPU', `${m.cpuModel}, ${m.cpus} CPUs`],
    ['memory', formatBytes(m.memoryBytes)],
    ['kernel', m.kernel],
    ['OS', m.os],
    ['Open MPI', m.openMpi],
    ['UCX', m.ucx],
    ['NetPIPE', m.netpipe ?? 'not installed'],
    ['Node', m.node],
    ['freeflow commit', m.freeflow.commit ?? 'unknown'],
    ['btl_freeflow_ring_size', m.freeflow.ringSizeBytes === null ? 'unknown' : `${m.freeflow.ringSizeBytes} B`],
    ['MTUs in a container', mtus(m.mtus.container)],
    ['MTUs in a host', mtus(m.mtus.host)],
    ['load average before (1/5/15 min)', load(m.load.before)],
    ['load average after', `${load(m.load.after)}${m.load.high ? ' (HIGH)' : ''}`],
    ['cluster', `job ${raw.cluster.jobId}: ${raw.cluster.hosts} hosts x ${raw.cluster.containersPerHost} containers, set up in ${(raw.cluster.setupMs / 1000).toFixed(2)} s`],
  ];
  return { headers: ['machine', ''], rows, leftColumns: [1] };
}
