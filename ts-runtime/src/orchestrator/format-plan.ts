import { PATH_CHAR, PATH_KINDS, pathChars } from './path-kind';
import { fallbacks, isFallback, NO_REPORT, type PairOutcome } from './actual-paths';
import type { JobPlan } from './plan';
import { describeLaunch } from './launch-mode';
import { planOneSided } from './osc-selection';

const LEGEND = PATH_KINDS.map((kind) => `${PATH_CHAR[kind]}=${kind}`).join(' ');

/** Hosts (with what the probe found, one line each) and which rank runs in which container. */
export function formatPlacement(plan: JobPlan, hostDescriptions: readonly string[]): string {
  const lines = [`hosts of job ${plan.jobId}:`];
  for (const host of plan.hosts) lines.push(`  ${host.name}: ${hostDescriptions[host.index] ?? 'not probed'}`);
  lines.push(
    `placement (${plan.placement}): ${plural(plan.ranks.length, 'rank')} in ${plural(new Set(plan.ranks.map((r) => r.container)).size, 'container')} on ${plural(plan.hosts.length, 'host')}`,
  );
  const width = String(plan.ranks.length - 1).length;
  for (const rank of plan.ranks) {
    lines.push(`  rank ${String(rank.rank).padEnd(width)}  ${plan.hosts[rank.host]?.name ?? '?'}  ${rank.container}`);
  }
  return lines.join('\n');
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The planned path of every pair, one row per sending rank. */
export function formatPathMatrix(plan: JobPlan): string {
  const table = matrix(`path matrix, planned (network ${plan.network}; ${LEGEND})`, plan, (from, to) => PATH_CHAR[plan.paths[from]![to]!]);
  // The inter-host planes only matter for pairs of hosts that have ranks.
  const used = new Set(plan.ranks.map((rank) => rank.host));
  const lines = plan.interHost.pairs
    .filter(({ hosts: [a, b] }) => used.has(a) && used.has(b))
    .map(({ hosts: [a, b], plane, reason, why }) => `    ${hostName(plan, a)} <-> ${hostName(plan, b)}: ${plane} (${reason}: ${why})`);
  const withPlanes = lines.length === 0 ? table : [table, `  between hosts (inter-host ${plan.interHost.requested}):`, ...lines].join('\n');
  return `${withPlanes}\n  one-sided: ${planOneSided(plan).summary}\n  launch: ${describeLaunch(plan.launch)}`;
}

function hostName(plan: JobPlan, index: number): string {
  return plan.hosts[index]?.name ?? `host ${index}`;
}

/**
 * Plan beside what the BTL reported, `planned/actual` per pair (`?` = not reported). A pair planned shm
 * that used something else is marked `!` and listed in a warning block that cannot be missed.
 */
export function formatPlanVersusActual(plan: JobPlan, outcomes: readonly (readonly PairOutcome[])[]): string {
  const cell = (from: number, to: number): string => {
    const outcome = outcomes[from]![to]!;
    const flag = isFallback(outcome) ? '!' : '';
    return `${pathChars([outcome.planned])}/${pathChars([outcome.actual])}${flag}`;
  };
  const lines = [
    matrix(`path matrix, planned/actual as reported by the BTL (${LEGEND}, ?=not reported: no report or the pair never talked, !=fell back)`, plan, cell),
  ];
  const fellBack = fallbacks(outcomes);
  if (fellBack.length > 0) {
    const planned = new Set(fellBack.map(({ outcome }) => (outcome.planned === 'shm' ? 'shared memory' : outcome.planned)));
    lines.push('', `!!! WARNING: ${fellBack.length} pair(s) planned for ${[...planned].join(' or ')} did NOT use it:`);
    for (const { from, to, outcome } of fellBack) {
      lines.push(`!!!   rank ${from} -> rank ${to}: ${describeFallback(outcome)}`);
    }
  }
  return lines.join('\n');
}

function describeFallback(outcome: PairOutcome): string {
  if (outcome.reason === NO_REPORT) {
    return "rank finished without a freeflow report: the BTL was not loaded, was disabled, or did not use the job's shared directory (rerun with --mca btl_freeflow_verbose 20)";
  }
  return `used ${outcome.actual}${outcome.reason === undefined ? '' : ` (BTL declined: ${outcome.reason})`}`;
}

function matrix(title: string, plan: JobPlan, cell: (from: number, to: number) => string): string {
  const count = plan.ranks.length;
  const cells = plan.ranks.map((_, from) => plan.ranks.map((__, to) => cell(from, to)));
  const width = Math.max(String(count - 1).length, ...cells.flat().map((text) => text.length)) + 1;
  const header = `${' '.repeat(10)}${plan.ranks.map((rank) => pad(rank.rank, width)).join('')}`;
  const rows = cells.map((row, from) => `  ${`rank ${from}`.padEnd(8)}${row.map((text) => pad(text, width)).join('')}`);
  return [title, `${header}  <- to rank`, ...rows].join('\n');
}

function pad(value: string | number, width: number): string {
  return String(value).padStart(width);
}
