import type { Table } from './blocks';
import { formatBytes, formatSize } from '#runtime/util/units';
import { formatNumber, formatRatio, formatSpread } from './format';
import { LOCALITY_LABEL, type ModeId } from './modes';
import type { RawReport } from './raw';
import {
  BANDWIDTH_SIZE,
  comparisons,
  evaluateTargets,
  FIGURE_1,
  figure7Panels,
  modesRun,
  LATENCY_SIZE,
  METRICS,
  modeStatuses,
  netpipeAgreement,
  ratioOf,
  segmentBytes,
  sizesOf,
  statOf,
  type MetricId,
  type RepetitionPair,
  type Target,
} from './summary';

/** The tables of the reports and of stdout, each computed from raw.json. */

const STATUS_MARK: Readonly<Record<string, string>> = { ok: '', invalid: ' (INVALID)', failed: ' (FAILED)', 'not run': ' (not run)' };

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

/**
 * One line per Fig. 7 panel and freeflow plane: "containers, same host: freeflow 0.27 us vs bridge TCP
 * 3.9 us (0.06x); ...", "containers, across hosts: freeflow h 9.5 us vs overlay TCP 13.8 us (0.69x); ...".
 */
export function headlineComparisons(raw: RawReport): string[] {
  const lines: string[] = [];
  const statuses = modeStatuses(raw);
  for (const { panel, overlay, freeflow } of figure7Panels(raw)) {
    // "(b) inter-host, jumbo frames" -> "containers, across hosts, jumbo frames"
    const where = panel.startsWith('(a)') ? 'containers, same host' : `containers, across hosts${panel.slice('(b) inter-host'.length)}`;
    for (const bar of freeflow) {
      const status = statuses.find((candidate) => candidate.mode.id === bar.mode);
      if (status?.status === 'not run') {
        lines.push(`${where}: ${modeName(raw, bar.mode)}: ${status.problems.join('; ')}`);
        continue;
      }
      const latency = ratioOf(raw, bar.mode, overlay.mode, 'latency', LATENCY_SIZE);
      const bandwidth = ratioOf(raw, bar.mode, overlay.mode, 'bandwidth', BANDWIDTH_SIZE);
      lines.push(
        `${where}: ${modeName(raw, bar.mode)} ${latencyCell(raw, bar.mode)} vs ${modeName(raw, overlay.mode)} ${latencyCell(raw, overlay.mode)} (${formatRatio(latency)}); ` +
          `${bandwidthCell(raw, bar.mode)} vs ${bandwidthCell(raw, overlay.mode)} (${formatRatio(bandwidth)})`,
      );
    }
  }
  return lines;
}

/** "4.0x lower" for a latency ratio of 0.25, "1.30x higher" for 1.3: how a ratio reads as a gain. */
function gainWords(ratio: number, lowerIsBetter: boolean): string {
  const better = lowerIsBetter ? ratio < 1 : ratio > 1;
  const factor = ratio >= 1 ? ratio : 1 / ratio;
  return `${factor.toFixed(factor >= 10 ? 0 : 2)}x ${ratio < 1 ? 'lower' : 'higher'}${better ? '' : ' (worse)'}`;
}

/**
 * The one-line headline of `npm start` and `ffrun bench`: freeflow's gain over TCP between containers on
 * one host (vs the bridge) and across hosts over `h` (vs the overlay), 8 B latency and 4 MiB bandwidth,
 * medians of paired repetitions, with the CPU the numbers come from. Null when neither pair ran.
 */
export function gainHeadline(raw: RawReport): string | null {
  const ran = modesRun(raw);
  const parts: string[] = [];
  const pairs: Array<[string, ModeId, ModeId]> = [
    ['same host (vs bridge TCP)', 'freeflow-same-host', 'bridge-tcp'],
    ['across hosts over h (vs overlay TCP)', 'freeflow-handoff', 'overlay-tcp'],
  ];
  for (const [where, candidate, baseline] of pairs) {
    if (!ran.has(candidate) || !ran.has(baseline)) continue;
    const latency = ratioOf(raw, candidate, baseline, 'latency', LATENCY_SIZE);
    const bandwidth = ratioOf(raw, candidate, baseline, 'bandwidth', BANDWIDTH_SIZE);
    if (latency === null || bandwidth === null) continue;
    parts.push(
      `${where}: ${formatSize(LATENCY_SIZE)} latency ${gainWords(latency.median, true)}, ${formatSize(BANDWIDTH_SIZE)} bandwidth ${gainWords(bandwidth.median, false)}`,
    );
  }
  if (parts.length === 0) return null;
  return `freeflow between containers, ${parts.join('; ')} (medians of ${raw.profile.repetitions} paired repetitions on ${raw.machine.cpuModel}, ${raw.machine.cpus} CPUs)`;
}

export function figure1Table(raw: RawReport): Table {
  const ran = modesRun(raw);
  const rows = FIGURE_1.filter((bar) => ran.has(bar.mode)).map((bar) => [
    bar.label,
    latencyCell(raw, bar.mode),
    bandwidthCell(raw, bar.mode),
    cpuCell(raw, bar.mode),
  ]);
  return { headers: ['two ranks on one host', ...KEY_COLUMNS], rows };
}

/** The plane a freeflow mode's pair used, short: from the BTL's reports of every run. */
function planeUsed(raw: RawReport, id: ModeId): string {
  const status = modeStatuses(raw).find((candidate) => candidate.mode.id === id);
  if (status === undefined) return '?';
  if (status.status === 'not run') return `not run: ${status.problems.join('; ')}`;
  return status.pathsUsed;
}

/**
 * Fig. 7 as a table: per panel, metric and freeflow plane, the overlay, host-mode TCP (across hosts) and
 * freeflow, with freeflow's paired ratios to both and the plane it used (from the BTL's reports).
 */
export function figure7Table(raw: RawReport): Table {
  const rows: string[][] = [];
  for (const { panel, overlay, hostMode, freeflow } of figure7Panels(raw)) {
    for (const bar of freeflow) {
      const all: Array<[MetricId, number, string]> = [
        ['latency', LATENCY_SIZE, `latency ${formatSize(LATENCY_SIZE)}`],
        ['bandwidth', BANDWIDTH_SIZE, `bandwidth ${formatSize(BANDWIDTH_SIZE)}`],
        ['cpu', BANDWIDTH_SIZE, 'CPU per byte'],
      ];
      // A plane that was not run gets one row, saying why.
      const metrics = modesRun(raw).has(bar.mode) ? all : all.slice(0, 1);
      for (const [metric, size, what] of metrics) {
        const unit = METRICS[metric].unit;
        const value = (id: ModeId | undefined): string => (id === undefined ? '-' : formatSpread(statOf(raw, id, metric, size), unit));
        const ratio = (id: ModeId | undefined): string => (id === undefined ? '-' : formatRatio(ratioOf(raw, bar.mode, id, metric, size)));
        rows.push([
          `${panel}: ${what}`,
          value(overlay.mode),
          value(hostMode?.mode),
          `${bar.label}: ${value(bar.mode)}`,
          ratio(overlay.mode),
          ratio(hostMode?.mode),
          metric === 'latency' ? planeUsed(raw, bar.mode) : '',
        ]);
      }
    }
  }
  return {
    headers: ['', 'TCP overlay (Weave-like)', 'host-mode TCP', 'freeflow', 'freeflow / overlay', 'freeflow / host mode', 'path freeflow used (BTL reports)'],
    rows,
    leftColumns: [3, 6],
  };
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
  const rows = raw.modes.map((mode) => [
    modeName(raw, mode.id),
    ...sizes.map((size) => formatSpread(statOf(raw, mode.id, metric, size), METRICS[metric].unit)),
  ]);
  return { headers: ['mode', ...sizes.map(formatSize)], rows };
}

/** "met" / "NOT met" per target, honestly: no ratio (a mode not run or failed) is "not measured". */
export function targetsTable(raw: RawReport, targets: readonly Target[]): Table {
  const verdict = (met: boolean | null): string => (met === null ? 'not measured' : met ? 'met' : 'NOT met');
  const results = evaluateTargets(raw, targets);
  const withAim = results.some(({ target }) => target.aim !== null);
  // Only when some pair was left out (placement, shm-machine.ts): other reports keep their columns.
  const withExclusions = results.some(({ pairs }) => pairs.some((pair) => pair.excluded !== null));
  const rows = results.map(({ target, ratio, met, aimMet, everyRepetitionMet, pairs }) => [
    target.label,
    formatRatio(ratio),
    target.bound === 'recorded'
      ? 'recorded (no target)'
      : `${target.bound} ${target.required.toFixed(2)}x: ${verdict(met)}` +
        (target.noRepetitionBelow === undefined ? '' : `; no repetition below ${target.noRepetitionBelow.toFixed(2)}x: ${verdict(everyRepetitionMet)}`),
    ...(withAim ? [target.aim === null ? '' : `aim ${target.aim.toFixed(2)}x: ${verdict(aimMet)}`] : []),
    ...(withExclusions ? [countedText(pairs)] : []),
  ]);
  return {
    headers: [
      'target (median of paired repetitions [min-max])',
      'ratio',
      'required',
      ...(withAim ? ['aim'] : []),
      ...(withExclusions ? ['repetitions counted (same vCPU placement in both runs)'] : []),
    ],
    rows,
    leftColumns: [2, ...(withAim ? [3] : []), ...(withExclusions ? [withAim ? 4 : 3] : [])],
  };
}

function countedText(pairs: readonly RepetitionPair[]): string {
  const left = pairs.filter((pair) => pair.excluded !== null);
  if (left.length === 0) return `all ${pairs.length}`;
  return `${pairs.length - left.length} of ${pairs.length}; left out: ${left.map((pair) => `${pair.repetition} (${pair.excluded})`).join(', ')}`;
}

/**
 * Per repetition of the targets that bound every repetition (bandwidth: none below 0.8x): the vCPU
 * placement of both runs and the ratio, counted or left out. Empty when no such target was measured.
 */
export function placementPairsTable(raw: RawReport, targets: readonly Target[]): Table | null {
  const results = evaluateTargets(raw, targets).filter(({ target, pairs }) => target.noRepetitionBelow !== undefined && pairs.length > 0);
  if (results.length === 0) return null;
  const rows = results.flatMap(({ target, pairs }) =>
    pairs.map((pair) => [
      target.label,
      String(pair.repetition),
      pair.baselinePlacement ?? 'not measured',
      pair.candidatePlacement ?? 'not measured',
      `${formatNumber(pair.ratio)}x`,
      pair.excluded === null ? 'counted' : `left out: ${pair.excluded}`,
    ]),
  );
  return { headers: ['target', 'repetition', 'baseline run placement', 'freeflow run placement', 'ratio', 'in the ratio'], rows, leftColumns: [0, 2, 3, 5] };
}

/** Shared memory per rank for a few local-peer counts, with this run's ring size. */
export function segmentTable(ringSize: number): Table {
  const rows = [1, 3, 7, 15, 63].map((peers) => [String(peers), formatBytes(segmentBytes(ringSize, peers))]);
  return { headers: ['local peers sending to the rank (a)', 'shared memory of the rank'], rows };
}

export function netpipeTable(raw: RawReport, mode: ModeId): Table {
  const rows = netpipeAgreement(raw, mode).map((row) => {
    const ratio =
      row.ffbenchLatencyUs === null || row.netpipeLatencyUs === null ? '-' : `${(row.ffbenchLatencyUs.median / row.netpipeLatencyUs.median).toFixed(2)}x`;
    return [formatSize(row.size), formatSpread(row.ffbenchLatencyUs, 'us'), formatSpread(row.netpipeLatencyUs, 'us'), ratio];
  });
  return { headers: ['size', 'ffbench_mpi latency', 'NetPIPE latency', 'ffbench / NetPIPE'], rows };
}

export function modesTable(raw: RawReport): Table {
  const statuses = modeStatuses(raw);
  const rows = statuses.map(({ mode, status, pathsUsed }) => {
    const settings = [...Object.entries(mode.mca).map(([k, v]) => `${k}=${v}`), ...Object.entries(mode.env).map(([k, v]) => `${k}=${v}`)];
    const where = mode.placement.map((p) => `${p.rank}:${p.container.replace(/^ff-[a-z0-9]+-/, '')}`).join(' ');
    const network = `network ${mode.network}, interHost ${mode.interHost}${mode.hostNetwork ? ', host-network containers' : ''}`;
    return [mode.name, mode.description, where, `${network}${settings.length === 0 ? '' : `; ${settings.join(', ')}`}`, pathsUsed, mtuOf(raw, mode), status];
  });
  return { headers: ['mode', 'what', 'rank:container', 'ffrun network and MCA/env', 'path used', 'MTU', 'status'], rows, leftColumns: [1, 2, 3, 4, 5, 6] };
}

function mtuOf(raw: RawReport, mode: RawReport['modes'][number]): string {
  const links = raw.machine.mtus[mode.mtu];
  if (links === undefined) return mode.link === null ? 'n/a (shared memory)' : 'not recorded';
  const { container, host } = links;
  switch (mode.link) {
    case null:
      return 'n/a (shared memory)';
    case 'container lo':
      return `lo ${container.lo ?? '?'}`;
    case 'container eth0':
      return `veth ${container.eth0 ?? '?'}`;
    case 'host ul0':
      return `underlay ${host.ul0 ?? '?'}`;
    default:
      return `veth ${container.eth0 ?? '?'}, vxlan ${host.vxlan0 ?? '?'}, underlay ${host.ul0 ?? '?'}`;
  }
}

export function machineTable(raw: RawReport): Table {
  const m = raw.machine;
  const mtus = (links: Record<string, number>): string =>
    Object.entries(links)
      .map(([name, mtu]) => `${name} ${mtu}`)
      .join(', ');
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
    ...Object.entries(m.mtus).flatMap(([mtu, links]) => [
      [`MTUs in a container (${mtu} MTU cluster)`, mtus(links.container)],
      [`MTUs in a host (${mtu} MTU cluster)`, mtus(links.host)],
    ]),
    ['load average before (1/5/15 min)', load(m.load.before)],
    ['load average after', `${load(m.load.after)}${m.load.high ? ' (HIGH)' : ''}`],
    ...raw.clusters.map((c) => [
      `cluster (${c.mtu} MTU)`,
      `job ${c.jobId}: ${c.hosts} hosts x ${c.containersPerHost} containers${c.hostNetworkContainersPerHost === 0 ? '' : ` + ${c.hostNetworkContainersPerHost} host-network container per host`}, container MTU ${c.containerMtu}, underlay ${c.underlayMtu}, set up in ${(c.setupMs / 1000).toFixed(2)} s`,
    ]),
  ];
  return { headers: ['machine', ''], rows, leftColumns: [1] };
}
