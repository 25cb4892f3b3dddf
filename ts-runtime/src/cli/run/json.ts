import { PATH_CHAR } from '../../orchestrator/path-kind';
import { fallbacks, pathRows } from '../../orchestrator/actual-paths';
import type { JobReport } from '../../job/run-job';

/** The `--json` document: placement, hosts and their capabilities, planned and actual paths, result. */
export function jobReportJson(report: JobReport): unknown {
  const { plan, outcomes } = report;
  return {
    job: {
      id: plan.jobId,
      name: report.spec.name,
      network: plan.network,
      launch: plan.launch,
      interHost: { ...plan.interHost, plane: summaryPlane(plan) },
      ranks: plan.ranks.length,
    },
    hosts: plan.hosts.map((host) => ({ ...host, capabilities: report.capabilities[host.index] })),
    placement: plan.ranks.map(({ rank, host, container }) => ({ rank, host, container })),
    paths: {
      legend: PATH_CHAR,
      ...pathRows(plan, outcomes),
      fallbacks:
        outcomes === null ? [] : fallbacks(outcomes).map(({ from, to, outcome }) => ({ from, to, actual: outcome.actual, reason: outcome.reason ?? null })),
    },
    result: {
      exitCode: report.mpirun.exitCode,
      mpirunMs: report.mpirun.durationMs,
      ...report.timings,
    },
  };
}

/** The plane of every pair of hosts when they all agree, "mixed" when not, null with one host. */
function summaryPlane(plan: JobReport['plan']): string | null {
  const planes = new Set(plan.interHost.pairs.map((pair) => pair.plane));
  return planes.size === 0 ? null : planes.size === 1 ? [...planes][0]! : 'mixed';
}
