import { heading, paragraph, table, warning, type Block } from './blocks';
import { idlePeersSection } from './idle-peers';
import { rmaSection } from './rma';
import { shmMachineSection } from './shm-machine';
import { figure1Charts, figure7Charts, metricChart, netpipeChart } from './charts';
import { formatBytes, formatDuration, formatSize } from '#runtime/util/units';
import type { RawReport } from './raw';
import {
  CROSS_HOST_TARGETS,
  evaluateTargets,
  figure7Panels,
  LATENCY_SIZE,
  BANDWIDTH_SIZE,
  METRICS,
  metricsMeasured,
  modeStatuses,
  segmentBytes,
  segmentFormula,
  SHM_TARGETS,
} from './summary';
import {
  figure1Table,
  figure7Table,
  gainHeadline,
  headlineComparisons,
  headlineTable,
  machineTable,
  modeName,
  modesTable,
  netpipeTable,
  placementPairsTable,
  ratioTable,
  resultsTable,
  segmentTable,
  targetsTable,
} from './tables';

export function reportTitle(raw: RawReport): string {
  return `ffbench report: ${raw.profile.name} profile, ${raw.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`;
}

function clustersText(raw: RawReport): string {
  const [first] = raw.clusters;
  if (first === undefined) return 'no cluster';
  const hostNetwork = first.hostNetworkContainersPerHost === 0 ? '' : ` (+${first.hostNetworkContainersPerHost} host-network container per host)`;
  const shape = `${first.hosts} hosts x ${first.containersPerHost} containers${hostNetwork}`;
  const each = raw.clusters.map((c) => `job ${c.jobId}: container MTU ${c.containerMtu}, underlay ${c.underlayMtu}`).join('; ');
  return raw.clusters.length === 1
    ? `one embedded cluster of ${shape} (${each})`
    : `${raw.clusters.length} embedded clusters of ${shape}, all up for the whole run (${each})`;
}

function method(raw: RawReport): string {
  const m = raw.machine;
  return (
    `${raw.profile.repetitions} repetitions, interleaved (every mode measured back to back, then the next repetition); ` +
    `values are medians with [min-max] over the repetitions; ratios are medians [min-max] of per-repetition ratios. ` +
    `Two ranks pinned to cores 0 and 1 in every mode${raw.profile.passes.some((pass) => (pass.ranks ?? 2) > 2) ? " (4-rank runs: unbound on both cores with mpi_yield_when_idle 1, as ffrun runs more ranks than cores, in every mode; freeflow's ranks in 4 containers of one host, vader's in one)" : ''}, on ${clustersText(raw)}. ` +
    `Machine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.kernel}, ${m.openMpi}, UCX ${m.ucx}; the run took ${formatDuration(raw.durationMs)}. ` +
    `Bandwidth in MB/s and GB/s is 10^6 and 10^9 bytes per second, as OSU.`
  );
}

/** Loud notes: other work on the machine, modes that failed or measured the wrong path. */
export function alerts(raw: RawReport): Block[] {
  const blocks: Block[] = [];
  const { load } = raw.machine;
  if (load.high) {
    blocks.push(
      warning(
        `the machine was busy (1-minute load average ${load.before[0].toFixed(2)} before, ${load.after[0].toFixed(2)} after, ${raw.machine.cpus} CPUs): absolute timings are unreliable, ratios between interleaved modes less so.`,
      ),
    );
  }
  for (const { mode, status, problems } of modeStatuses(raw)) {
    if (status === 'ok') continue;
    if (status === 'not run') {
      blocks.push(warning(`mode ${mode.name} was not run: ${problems.join('; ')}`));
      continue;
    }
    const what = status === 'failed' ? 'FAILED: some runs measured nothing' : 'INVALID: measured, but not what the mode claims';
    blocks.push(warning(`mode ${mode.name} ${what}: ${problems.join('; ')}`));
  }
  return blocks;
}

function crossHostTargetsSection(raw: RawReport): Block[] {
  if (evaluateTargets(raw, CROSS_HOST_TARGETS).length === 0) return [];
  return [
    heading(2, 'Inter-host targets'),
    paragraph(
      `freeflow between containers on two hosts over its inter-host planes (h: handoff, r: router) against TCP over the overlay and host-mode TCP, measured side by side in one run on ${raw.machine.cpuModel} (${raw.machine.cpus} CPUs). A benchmark reports: it does not fail when a target is missed.`,
    ),
    table(targetsTable(raw, CROSS_HOST_TARGETS)),
  ];
}

function targetsSection(raw: RawReport): Block[] {
  if (evaluateTargets(raw, SHM_TARGETS).length === 0) return idlePeersSection(raw.idlePeers);
  const blocks: Block[] = [
    heading(2, 'freeflow BTL targets'),
    paragraph(
      'Two ranks in two containers on one host (freeflow) against vader with both ranks in one namespace, measured side by side. A benchmark reports: it does not fail when a target is missed.',
    ),
    table(targetsTable(raw, SHM_TARGETS)),
    ...placementPairsSection(raw),
    ...shmMachineSection(raw.machine.shm, raw.runs),
    ...idlePeersSection(raw.idlePeers),
  ];
  const ringSize = raw.machine.freeflow.ringSizeBytes;
  if (ringSize !== null && raw.modes.some((mode) => mode.id === 'freeflow-same-host')) {
    const formula = segmentFormula(ringSize);
    blocks.push(
      paragraph(
        `Shared memory per rank (docs/btl.md): bytes = ${formula.headerBytes} + a x (R + ${formula.ringOverheadBytes}), where a is the number of local peers that send to the rank ` +
          `and R = btl_freeflow_ring_size = ${ringSize} B here; pages are used only once written, so peers that never send cost nothing. ` +
          `This run (2 ranks in 2 containers of one host, a = 1): ${formatBytes(segmentBytes(ringSize, 1))} per rank.`,
      ),
      table(segmentTable(ringSize)),
    );
  }
  return blocks;
}

/** Which placement each bandwidth repetition had, and which ratios count (issue 10: none below 0.8x). */
function placementPairsSection(raw: RawReport): Block[] {
  const pairs = placementPairsTable(raw, SHM_TARGETS);
  if (pairs === null) return [];
  return [
    paragraph(
      'A ratio counts only between two runs measured under one vCPU placement: the core-to-core floor is measured before and after every run, a run during which the placement moved is run again (at most twice), and a repetition whose two runs still had different placements is left out of the ratio, as listed here. A repetition under one placement below the bound stays a NOT met.',
    ),
    table(pairs),
  ];
}

function netpipeSection(raw: RawReport): Block[] {
  const modes = raw.profile.netpipe?.modes ?? [];
  if (modes.length === 0) return [];
  const blocks: Block[] = [
    heading(2, 'Agreement with NetPIPE'),
    paragraph(
      `NetPIPE ${raw.machine.netpipe ?? ''} (NPopenmpi, ping-pong, ${raw.profile.netpipe!.repeats} round trips per size, the best of its trials) in the same run and the same mode, beside ffbench_mpi's latency test ` +
        `(average of all timed round trips). NetPIPE reports its best trial, so it is expected to be slightly lower.`,
    ),
  ];
  for (const mode of modes) blocks.push(heading(3, modeName(raw, mode)), table(netpipeTable(raw, mode)), { kind: 'chart', svg: netpipeChart(raw, mode) });
  return blocks;
}

function failuresSection(raw: RawReport): Block[] {
  const failed = raw.runs.filter((run) => run.output.length > 0);
  if (failed.length === 0) return [];
  return [
    heading(2, 'Runs with problems'),
    ...failed.flatMap((run): Block[] => [
      paragraph(`run ${run.index} (${run.mode}, repetition ${run.repetition}): ${run.problem ?? ''}`),
      { kind: 'code', lines: run.output },
    ]),
  ];
}

/** Which path freeflow's pair took in each panel, from the BTL's reports. */
function figure7Paths(raw: RawReport): string[] {
  const statuses = modeStatuses(raw);
  return figure7Panels(raw).flatMap(({ panel, freeflow }) =>
    freeflow.flatMap((bar) => {
      const status = statuses.find((s) => s.mode.id === bar.mode);
      if (status === undefined) return [];
      return [
        status.status === 'not run' ? `${panel}: ${bar.label} was not run: ${status.problems.join('; ')}` : `${panel}: ${bar.label} used ${status.pathsUsed}`,
      ];
    }),
  );
}

/** The whole report: summary.md renders it without charts, report.html with them. */
export function reportBlocks(raw: RawReport): Block[] {
  const front = [heading(1, reportTitle(raw)), paragraph(`Profile ${raw.profile.name}: ${raw.profile.description}. ${method(raw)}`), ...alerts(raw)];
  // Profile rma runs no ffbench_mpi pass: its report is the one-sided section and the record of the run.
  if (raw.profile.passes.length === 0) return [...front, ...rmaSection(raw), ...recordSections(raw)];
  const metrics = metricsMeasured(raw);
  return [
    ...front,
    heading(2, 'Headline'),
    ...(gainHeadline(raw) === null ? [] : [paragraph(gainHeadline(raw)!)]),
    table(headlineTable(raw)),
    { kind: 'list', items: headlineComparisons(raw) },
    ...targetsSection(raw),
    ...crossHostTargetsSection(raw),
    heading(2, 'Fig. 1: shared memory vs host mode vs overlay'),
    paragraph(
      `The paper's Fig. 1 for this machine: two ranks on one host talking through shared memory (vader, both in one namespace), host mode (TCP over loopback in one network namespace) and overlay mode (TCP between two containers over the host's bridge), with freeflow between two containers beside them. Latency at ${formatSize(LATENCY_SIZE)}, bandwidth at ${formatSize(BANDWIDTH_SIZE)}.`,
    ),
    table(figure1Table(raw)),
    ...figure1Charts(raw).map((svg): Block => ({ kind: 'chart', svg })),
    heading(2, 'Fig. 7: overlay TCP vs freeflow, within and across hosts'),
    paragraph(
      "The paper compares Weave (an overlay over sockets) with FreeFlow. Here the overlay is the cluster's bridge (within a host) and VXLAN (across hosts). " +
        "Across hosts, host-mode TCP (ranks in the hosts' own network namespaces, over the underlay) stands beside it, and freeflow has a row per inter-host plane: " +
        "h (handoff: a TCP socket over the underlay, connected by the hosts' ffagents) and r (router), at the default MTU, at jumbo frames (underlay 9000, overlay 8950) and on a jumbo-frame host network under containers kept at 1450 (underlay 9000, overlay 1450: Docker's overlay default) when the profile ran them. " +
        "The plane each freeflow row used is read from the BTL's reports of every run; ratios are medians of paired repetitions.",
    ),
    table(figure7Table(raw)),
    { kind: 'list', items: figure7Paths(raw) },
    ...figure7Charts(raw).map((svg): Block => ({ kind: 'chart', svg })),
    heading(2, 'Ratios against each baseline'),
    paragraph('freeflow / baseline per size. Latency and CPU: below 1 is better; bandwidth: above 1 is better.'),
    ...metrics.flatMap((metric): Block[] => [heading(3, METRICS[metric].title), table(ratioTable(raw, metric))]),
    heading(2, 'Against message size'),
    ...metrics.map((metric): Block => ({ kind: 'chart', svg: metricChart(raw, metric) })),
    ...netpipeSection(raw),
    heading(2, 'All results'),
    ...metrics.flatMap((metric): Block[] => [heading(3, `${METRICS[metric].title} (${METRICS[metric].unit})`), table(resultsTable(raw, metric))]),
    ...rmaSection(raw),
    ...recordSections(raw),
  ];
}

/** The modes, the machine and the runs that went wrong: every report ends with them. */
function recordSections(raw: RawReport): Block[] {
  return [
    heading(2, 'Modes and the paths they used'),
    table(modesTable(raw)),
    heading(2, 'Machine'),
    table(machineTable(raw)),
    paragraph(`Load: ${raw.machine.load.rule}.`),
    ...failuresSection(raw),
  ];
}

/** What a run prints on stdout: the targets (profile shm) or the headline table, then the comparisons. */
export function stdoutBlocks(raw: RawReport, targetsFirst: boolean): Block[] {
  if (raw.profile.passes.length === 0) return [...rmaSection(raw).filter((block) => block.kind !== 'chart'), ...alerts(raw)];
  const targets = [...targetsSection(raw), ...crossHostTargetsSection(raw)];
  const gain = gainHeadline(raw);
  const headline: Block[] = [
    heading(
      2,
      `ffbench ${raw.profile.name}: medians [min-max] of ${raw.profile.repetitions} interleaved repetitions, ${raw.machine.cpuModel}, ${raw.machine.cpus} CPUs, ${raw.machine.openMpi}`,
    ),
    ...(gain === null ? [] : [paragraph(gain)]),
    table(headlineTable(raw)),
    { kind: 'list', items: headlineComparisons(raw) },
  ];
  return [...(targetsFirst ? [...targets, ...headline] : [...headline, ...targets]), ...alerts(raw)];
}
