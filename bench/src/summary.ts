import { segmentBytes as nativeSegmentBytes } from '#runtime/native/addon';
import type { ModeId } from './modes';
import type { MpiSizeResult } from './mpi-result';
import type { MpiBenchmark } from './profiles';
import type { ModeRecord, RawReport, RunRecord, RunStatus } from './raw';
import { PLACEMENT_CHANGED, runPlacement } from './shm-machine';
import { spreadOf, type Spread } from './statistics';

/**
 * What the reports show, computed from raw.json alone: per mode, metric and size the median of the
 * repetitions with min and max, ratios between modes from paired repetitions, the paper's figures and
 * the freeflow BTL's targets.
 */
export const METRIC_IDS = ['latency', 'bandwidth', 'bibw', 'cpu', 'rate', 'rate-2pairs', 'allreduce', 'alltoall'] as const;
export type MetricId = (typeof METRIC_IDS)[number];

export interface Metric {
  readonly id: MetricId;
  readonly benchmark: MpiBenchmark;
  readonly title: string;
  /** For chart titles. */
  readonly short: string;
  readonly unit: 'us' | 'MB/s' | 'ns/B' | 'M msg/s';
  readonly pick: (result: MpiSizeResult) => number | null | undefined;
  /** The runs' rank count (passes with `ranks`); 2 unless said. */
  readonly ranks: number;
}

export const METRICS: Readonly<Record<MetricId, Metric>> = {
  latency: { id: 'latency', benchmark: 'latency', title: 'half round-trip latency', short: 'latency', unit: 'us', pick: (r) => r.latency_us, ranks: 2 },
  bandwidth: {
    id: 'bandwidth',
    benchmark: 'bw',
    title: 'bandwidth (one way, streaming)',
    short: 'bandwidth',
    unit: 'MB/s',
    pick: (r) => r.bandwidth_mb_s,
    ranks: 2,
  },
  bibw: {
    id: 'bibw',
    benchmark: 'bibw',
    title: 'bidirectional bandwidth',
    short: 'bidirectional bandwidth',
    unit: 'MB/s',
    pick: (r) => r.bandwidth_mb_s,
    ranks: 2,
  },
  cpu: {
    id: 'cpu',
    benchmark: 'bw',
    title: 'CPU time per byte (both ranks, streaming; MPI busy-polls)',
    short: 'CPU per byte',
    unit: 'ns/B',
    pick: (r) => r.cpu_ns_per_byte,
    ranks: 2,
  },
  // Issue 10: osu_mbw_mr-style message rate (windows of 64), and collectives on 4 ranks.
  rate: {
    id: 'rate',
    benchmark: 'mr',
    title: 'message rate, 1 pair (2 ranks)',
    short: 'message rate, 1 pair',
    unit: 'M msg/s',
    pick: (r) => perMillion(r.message_rate_per_s),
    ranks: 2,
  },
  'rate-2pairs': {
    id: 'rate-2pairs',
    benchmark: 'mr',
    title: 'message rate, 2 pairs (4 ranks on 2 cores)',
    short: 'message rate, 2 pairs',
    unit: 'M msg/s',
    pick: (r) => perMillion(r.message_rate_per_s),
    ranks: 4,
  },
  allreduce: {
    id: 'allreduce',
    benchmark: 'allreduce',
    title: 'MPI_Allreduce time, 4 ranks on 2 cores',
    short: 'allreduce, 4 ranks',
    unit: 'us',
    pick: (r) => r.latency_us,
    ranks: 4,
  },
  alltoall: {
    id: 'alltoall',
    benchmark: 'alltoall',
    title: 'MPI_Alltoall time, 4 ranks on 2 cores',
    short: 'alltoall, 4 ranks',
    unit: 'us',
    pick: (r) => r.latency_us,
    ranks: 4,
  },
};

function perMillion(value: number | null | undefined): number | null | undefined {
  return typeof value === 'number' ? value / 1e6 : value;
}

/** The sizes of the headline, the paper's figures and the targets. */
export const LATENCY_SIZE = 8;
export const BANDWIDTH_SIZE = 4 * 1024 * 1024;
export const COLLECTIVE_LARGE_SIZE = 64 * 1024;

/** Runs that measured something (ok or invalid): an invalid run's numbers are shown, marked. */
function measuredRuns(raw: RawReport, mode: ModeId): RunRecord[] {
  return raw.runs.filter((run) => run.mode === mode && run.status !== 'failed');
}

/** The value of one metric at one size, by repetition, with the run that measured it. */
function measurementsByRepetition(raw: RawReport, mode: ModeId, metric: MetricId, size: number): Map<number, { value: number; run: RunRecord }> {
  const { benchmark, pick, ranks } = METRICS[metric];
  const values = new Map<number, { value: number; run: RunRecord }>();
  for (const run of measuredRuns(raw, mode)) {
    if (run.mpi?.benchmark !== benchmark || run.mpi.job.ranks !== ranks) continue;
    const result = run.mpi.results.find((candidate) => candidate.size === size);
    const value = result === undefined ? undefined : pick(result);
    if (typeof value === 'number' && Number.isFinite(value)) values.set(run.repetition, { value, run });
  }
  return values;
}

/** The value of one metric at one size, by repetition. */
export function valuesByRepetition(raw: RawReport, mode: ModeId, metric: MetricId, size: number): Map<number, number> {
  return new Map([...measurementsByRepetition(raw, mode, metric, size)].map(([repetition, { value }]) => [repetition, value]));
}

/** One repetition of a ratio between two modes: the ratio, each run's placement, and whether it counts. */
export interface RepetitionPair {
  readonly repetition: number;
  readonly ratio: number;
  readonly candidatePlacement: string | null;
  readonly baselinePlacement: string | null;
  /** null when the ratio counts; else why it is left out. */
  readonly excluded: string | null;
}

/**
 * candidate / baseline per repetition (statistics.ts's pairing), each with the vCPU placement its two runs
 * had (shm-machine.ts). When floors were measured, a ratio counts only between runs under one placement:
 * a run during which the placement moved, or two runs under different placements, are left out with the
 * reason. Without floors (other profiles, older reports) every pair counts, as before.
 */
export function repetitionPairs(raw: RawReport, candidate: ModeId, baseline: ModeId, metric: MetricId, size: number): RepetitionPair[] {
  const candidates = measurementsByRepetition(raw, candidate, metric, size);
  const baselines = measurementsByRepetition(raw, baseline, metric, size);
  const pairs: RepetitionPair[] = [];
  for (const [repetition, mine] of [...candidates].sort(([a], [b]) => a - b)) {
    const base = baselines.get(repetition);
    if (base === undefined || base.value <= 0) continue;
    const candidatePlacement = runPlacement(mine.run);
    const baselinePlacement = runPlacement(base.run);
    pairs.push({
      repetition,
      ratio: mine.value / base.value,
      candidatePlacement,
      baselinePlacement,
      excluded: placementMismatch({ mode: candidate, placement: candidatePlacement }, { mode: baseline, placement: baselinePlacement }),
    });
  }
  return pairs;
}

function placementMismatch(candidate: { mode: ModeId; placement: string | null }, baseline: { mode: ModeId; placement: string | null }): string | null {
  if (candidate.placement === null && baseline.placement === null) return null;
  for (const side of [baseline, candidate]) {
    if (side.placement === null) return `placement not measured for ${side.mode}`;
    if (side.placement === PLACEMENT_CHANGED) return `placement changed during the ${side.mode} run`;
  }
  return candidate.placement === baseline.placement
    ? null
    : `placements differ (${baseline.mode}: ${baseline.placement}, ${candidate.mode}: ${candidate.placement})`;
}

export function statOf(raw: RawReport, mode: ModeId, metric: MetricId, size: number): Spread | null {
  return spreadOf([...valuesByRepetition(raw, mode, metric, size).values()]);
}

/** candidate / baseline from paired repetitions measured under one placement (repetitionPairs). */
export function ratioOf(raw: RawReport, candidate: ModeId, baseline: ModeId, metric: MetricId, size: number): Spread | null {
  return spreadOf(
    repetitionPairs(raw, candidate, baseline, metric, size)
      .filter((pair) => pair.excluded === null)
      .map((pair) => pair.ratio),
  );
}

/** Sizes at which a metric was measured, ascending. */
export function sizesOf(raw: RawReport, metric: MetricId): number[] {
  const sizes = raw.profile.passes
    .filter((pass) => pass.benchmark === METRICS[metric].benchmark && (pass.ranks ?? 2) === METRICS[metric].ranks)
    .flatMap((pass) => pass.sizes);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export function metricsMeasured(raw: RawReport): MetricId[] {
  return METRIC_IDS.filter((metric) => sizesOf(raw, metric).length > 0);
}

export interface ModeStatus {
  readonly mode: ModeRecord;
  /**
   * failed: some run measured nothing; invalid: some run measured off the mode's path; not run: the
   * launcher refused the mode's spec (mode.refused says why), which is reported but is no failure.
   */
  readonly status: RunStatus | 'not run';
  readonly problems: readonly string[];
  /** What the pair used, as far as it is known: the BTL's reports for freeflow modes. */
  readonly pathsUsed: string;
}

export function modeStatuses(raw: RawReport): ModeStatus[] {
  return raw.modes.map((mode) => {
    const runs = raw.runs.filter((run) => run.mode === mode.id);
    if (mode.refused !== null) return { mode, status: 'not run' as const, problems: [mode.refused], pathsUsed: 'not run' };
    const status: RunStatus = runs.some((run) => run.status === 'failed') ? 'failed' : runs.some((run) => run.status === 'invalid') ? 'invalid' : 'ok';
    const problems = [...new Set(runs.flatMap((run) => (run.problem === null ? [] : [run.problem])))];
    return { mode, status, problems, pathsUsed: pathsUsed(mode, runs) };
  });
}

function pathsUsed(mode: ModeRecord, runs: readonly RunRecord[]): string {
  if (mode.network !== 'freeflow') {
    const transport = mode.mca.pml === 'ucx' ? `UCX ${mode.env.UCX_TLS ?? ''}`.trim() : `btl ${mode.mca.btl ?? '?'}`;
    return `${mode.expectedPath} (${transport}: the only transport offered)`;
  }
  const reported = runs.filter((run) => run.paths.actual !== null);
  if (reported.length === 0) return 'not reported';
  const used = new Set(reported.map((run) => `${run.paths.actual![0]![1]}${run.paths.actual![1]![0]}`));
  const reasons = [...new Set(reported.flatMap((run) => run.paths.declined.map((d) => d.reason)))];
  const names: Record<string, string> = { m: 'shm', t: 'tcp', h: 'handoff (h)', r: 'router (r)', s: 'self', '?': 'unreported' };
  const described = [...used].map((pair) => [...new Set([...pair].map((c) => names[c] ?? c))].join('/')).join(', then ');
  return `${described} in ${reported.length}/${runs.length} runs, as the BTL reported${reasons.length === 0 ? '' : ` (declined: ${reasons.join(', ')})`}`;
}

/** A row of the paper's bar charts: a mode under the paper's name for it. */
export interface FigureBar {
  readonly mode: ModeId;
  readonly label: string;
}

/** Fig. 1: shared memory vs host mode vs overlay between two containers on one server, plus freeflow. */
export const FIGURE_1: readonly FigureBar[] = [
  { mode: 'vader', label: 'shared memory (vader, one namespace)' },
  { mode: 'tcp-loopback', label: 'host mode (TCP over loopback)' },
  { mode: 'bridge-tcp', label: 'overlay (TCP over the bridge)' },
  { mode: 'freeflow-same-host', label: 'freeflow (containers, shared memory)' },
];

/**
 * Fig. 7: the overlay (Weave) against FreeFlow, (a) within a host, (b) across hosts at the default MTU, at
 * jumbo frames, and on a jumbo-frame host network under 1450-byte containers. Across hosts host-mode TCP (ranks in the hosts' own network namespaces) stands beside
 * the overlay, and freeflow has one bar per inter-host plane.
 */
export interface Figure7Panel {
  readonly panel: string;
  readonly overlay: FigureBar;
  readonly hostMode: FigureBar | null;
  readonly freeflow: readonly FigureBar[];
}

export const FIGURE_7: readonly Figure7Panel[] = [
  {
    panel: '(a) intra-host',
    overlay: { mode: 'bridge-tcp', label: 'TCP bridge' },
    hostMode: null,
    freeflow: [{ mode: 'freeflow-same-host', label: 'freeflow' }],
  },
  interHostPanel('(b) inter-host', ''),
  interHostPanel('(b) inter-host, jumbo frames', '-jumbo'),
  interHostPanel('(b) inter-host, jumbo host network (underlay 9000, overlay 1450)', '-jumbo-host'),
];

/** A Fig. 7b panel: TCP overlay, host TCP and freeflow's h and r planes, on the modes of one network set-up. */
function interHostPanel(panel: string, modeSuffix: '' | '-jumbo' | '-jumbo-host'): Figure7Panel {
  return {
    panel,
    overlay: { mode: `overlay-tcp${modeSuffix}`, label: 'TCP overlay' },
    hostMode: { mode: `host-tcp${modeSuffix}`, label: 'host TCP' },
    freeflow: [
      { mode: `freeflow-handoff${modeSuffix}`, label: 'freeflow h' },
      { mode: `freeflow-router${modeSuffix}`, label: 'freeflow r' },
    ],
  };
}

/** The modes of the run that measured something (a refused mode is listed, but has no numbers). */
export function modesRun(raw: RawReport): Set<ModeId> {
  return new Set(raw.modes.filter((mode) => mode.refused === null).map((mode) => mode.id));
}

/** Panels of Fig. 7 whose overlay baseline ran, each with the freeflow modes the profile listed. */
export function figure7Panels(raw: RawReport): Figure7Panel[] {
  const listed = new Set(raw.modes.map((mode) => mode.id));
  const ran = modesRun(raw);
  return FIGURE_7.filter((panel) => ran.has(panel.overlay.mode) && panel.freeflow.some((bar) => listed.has(bar.mode))).map((panel) => ({
    ...panel,
    hostMode: panel.hostMode !== null && ran.has(panel.hostMode.mode) ? panel.hostMode : null,
    freeflow: panel.freeflow.filter((bar) => listed.has(bar.mode)),
  }));
}

/** Ratio tables: freeflow against each baseline that ran. */
export function comparisons(raw: RawReport): Array<{ candidate: ModeId; baseline: ModeId }> {
  const ran = modesRun(raw);
  const pairs: Array<{ candidate: ModeId; baseline: ModeId }> = [
    ...(['vader', 'vader-2copy', 'ucx-shm', 'tcp-loopback', 'bridge-tcp'] as const).map((baseline) => ({ candidate: 'freeflow-same-host' as const, baseline })),
    ...FIGURE_7.slice(1).flatMap((panel) =>
      panel.freeflow.flatMap((candidate) =>
        [panel.overlay, ...(panel.hostMode === null ? [] : [panel.hostMode])].map((baseline) => ({ candidate: candidate.mode, baseline: baseline.mode })),
      ),
    ),
  ];
  return pairs.filter((pair) => ran.has(pair.candidate) && ran.has(pair.baseline));
}

export interface Target {
  readonly label: string;
  readonly metric: MetricId;
  readonly size: number;
  readonly candidate: ModeId;
  readonly baseline: ModeId;
  /**
   * The ratio candidate/baseline must be at most (latency) or at least (bandwidth) `required`;
   * `recorded`: no bound, the ratio is only reported.
   */
  readonly bound: 'at most' | 'at least' | 'recorded';
  readonly required: number;
  /** A stricter goal than `required`, or null. */
  readonly aim: number | null;
  /** 'at least' targets: every counted repetition's ratio must reach this too (issue 10: none below 0.8x). */
  readonly noRepetitionBelow?: number;
}

/** freeflow on one host against vader, with no aim beyond the bound: parity (1.0), or no bound when `recorded`. */
function freeflowAgainstVader(label: string, metric: MetricId, size: number, bound: Target['bound']): Target {
  return { label, metric, size, candidate: 'freeflow-same-host', baseline: 'vader', bound, required: bound === 'recorded' ? 0 : 1.0, aim: null };
}

/** The freeflow BTL's performance targets (its issue), measured side by side in one run. */
export const SHM_TARGETS: readonly Target[] = [
  {
    label: '8 B latency, freeflow (2 containers) / vader (1 namespace)',
    metric: 'latency',
    size: LATENCY_SIZE,
    candidate: 'freeflow-same-host',
    baseline: 'vader',
    bound: 'at most',
    // issue 10: at most 0.95x of vader, aim 0.85x (the floor is one cache-line transfer each way)
    required: 0.95,
    aim: 0.85,
  },
  ...[1024 * 1024, BANDWIDTH_SIZE].map((size): Target => ({
    label: `${size === BANDWIDTH_SIZE ? '4 MiB' : '1 MiB'} bandwidth, freeflow / vader without single copy`,
    metric: 'bandwidth',
    size,
    candidate: 'freeflow-same-host',
    baseline: 'vader-2copy',
    bound: 'at least',
    required: 1.0,
    aim: 1.1,
    noRepetitionBelow: 0.8,
  })),
  // Issue 10 item 3: 4 ranks are 4 containers of one host for freeflow, one namespace for vader.
  freeflowAgainstVader('8 B message rate, 1 pair, freeflow / vader', 'rate', LATENCY_SIZE, 'at least'),
  freeflowAgainstVader('8 B message rate, 2 pairs, freeflow / vader', 'rate-2pairs', LATENCY_SIZE, 'at least'),
  freeflowAgainstVader('8 B allreduce, 4 ranks, freeflow / vader (time)', 'allreduce', LATENCY_SIZE, 'at most'),
  freeflowAgainstVader('64 KiB allreduce, 4 ranks, freeflow / vader (time)', 'allreduce', COLLECTIVE_LARGE_SIZE, 'at most'),
  freeflowAgainstVader('8 B alltoall, 4 ranks, freeflow / vader (time)', 'alltoall', LATENCY_SIZE, 'recorded'),
  freeflowAgainstVader('64 KiB alltoall, 4 ranks, freeflow / vader (time)', 'alltoall', COLLECTIVE_LARGE_SIZE, 'recorded'),
];

/** The inter-host planes' targets (issue 8), at each MTU whose modes ran. */
function crossHostTargets(suffix: '' | '-jumbo' | '-jumbo-host', where: string): Target[] {
  const id = (base: string): ModeId => `${base}${suffix}` as ModeId;
  return [
    {
      label: `${where}: 8 B latency, freeflow h / overlay TCP`,
      metric: 'latency',
      size: LATENCY_SIZE,
      candidate: id('freeflow-handoff'),
      baseline: id('overlay-tcp'),
      bound: 'at most',
      required: 0.85,
      aim: null,
    },
    {
      label: `${where}: 8 B latency, freeflow h / host-mode TCP`,
      metric: 'latency',
      size: LATENCY_SIZE,
      candidate: id('freeflow-handoff'),
      baseline: id('host-tcp'),
      bound: 'at most',
      required: 1.0,
      aim: null,
    },
    {
      label: `${where}: 4 MiB bandwidth, freeflow h / overlay TCP`,
      metric: 'bandwidth',
      size: BANDWIDTH_SIZE,
      candidate: id('freeflow-handoff'),
      baseline: id('overlay-tcp'),
      bound: 'at least',
      required: 2.2,
      aim: null,
    },
    {
      label: `${where}: 4 MiB bandwidth, freeflow r / overlay TCP`,
      metric: 'bandwidth',
      size: BANDWIDTH_SIZE,
      candidate: id('freeflow-router'),
      baseline: id('overlay-tcp'),
      bound: 'at least',
      required: 1.5,
      aim: null,
    },
    {
      label: `${where}: 8 B latency, freeflow r / overlay TCP`,
      metric: 'latency',
      size: LATENCY_SIZE,
      candidate: id('freeflow-router'),
      baseline: id('overlay-tcp'),
      bound: 'recorded',
      required: 0,
      aim: null,
    },
  ];
}

export const CROSS_HOST_TARGETS: readonly Target[] = [
  ...crossHostTargets('', 'default MTU'),
  ...crossHostTargets('-jumbo', 'jumbo frames'),
  ...crossHostTargets('-jumbo-host', 'underlay 9000, overlay 1450'),
];

export interface TargetResult {
  readonly target: Target;
  /** Over the counted repetitions (those under one placement). */
  readonly ratio: Spread | null;
  readonly met: boolean | null;
  readonly aimMet: boolean | null;
  /** Every counted repetition at or above target.noRepetitionBelow; null without that bound or a ratio. */
  readonly everyRepetitionMet: boolean | null;
  /** Every repetition measured in both modes, counted or left out (with why). */
  readonly pairs: readonly RepetitionPair[];
}

/**
 * The targets whose two modes the profile listed. A refused candidate or a failed mode gives no ratio
 * (`met` null: "not measured"); a `recorded` target has no verdict either.
 */
export function evaluateTargets(raw: RawReport, targets: readonly Target[]): TargetResult[] {
  const listed = new Set(raw.modes.map((mode) => mode.id));
  return targets
    .filter((target) => listed.has(target.candidate) && listed.has(target.baseline))
    .map((target) => {
      const pairs = repetitionPairs(raw, target.candidate, target.baseline, target.metric, target.size);
      const ratio = spreadOf(pairs.filter((pair) => pair.excluded === null).map((pair) => pair.ratio));
      const passes = (bound: number | null): boolean | null =>
        ratio === null || bound === null || target.bound === 'recorded' ? null : target.bound === 'at most' ? ratio.median <= bound : ratio.median >= bound;
      const floor = target.noRepetitionBelow;
      const everyRepetitionMet = ratio === null || floor === undefined ? null : ratio.min >= floor;
      return { target, ratio, met: passes(target.required), aimMet: passes(target.aim), everyRepetitionMet, pairs };
    });
}

/**
 * docs/btl.md: a rank's segment holds one ring per local peer that sends to it. The native core's own
 * formula (ff_segment_bytes_for through the addon); the fixed parts are read off it for the text.
 */
export function segmentBytes(ringSize: number, localPeers: number): number {
  return nativeSegmentBytes(ringSize, localPeers);
}

/** The formula's constants: the segment header and the per-ring control block. */
export function segmentFormula(ringSize: number): { readonly headerBytes: number; readonly ringOverheadBytes: number } {
  const headerBytes = segmentBytes(ringSize, 0);
  return { headerBytes, ringOverheadBytes: segmentBytes(ringSize, 1) - headerBytes - ringSize };
}

/** NetPIPE beside ffbench_mpi's latency test (both ping-pong) for one mode, at the sizes both measured. */
export interface NetpipeAgreementRow {
  readonly size: number;
  readonly ffbenchLatencyUs: Spread | null;
  readonly netpipeLatencyUs: Spread | null;
}

export function netpipeAgreement(raw: RawReport, mode: ModeId): NetpipeAgreementRow[] {
  const runs = measuredRuns(raw, mode).filter((run) => run.netpipe !== null);
  const netpipeSizes = new Set(runs.flatMap((run) => run.netpipe!.map((point) => point.size)));
  return sizesOf(raw, 'latency')
    .filter((size) => netpipeSizes.has(size))
    .map((size) => ({
      size,
      ffbenchLatencyUs: statOf(raw, mode, 'latency', size),
      netpipeLatencyUs: spreadOf(runs.flatMap((run) => run.netpipe!.filter((point) => point.size === size).map((point) => point.latencyUs))),
    }));
}
