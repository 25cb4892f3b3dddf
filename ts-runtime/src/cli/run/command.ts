import { jobFailure, printOutputLine } from '../../launcher/run-mpirun';
import { describeCapabilities } from '../../native/capabilities';
import { formatPathMatrix, formatPlacement, formatPlanVersusActual } from '../../orchestrator/format-plan';
import { formatDuration } from '../../util/units';
import type { CommandContext } from '../context';
import { parseRunArgs } from './args';
import { jobReportJson } from './json';
import { runJob } from '../../job/run-job';

/** `ffrun run ...`: runs the job and returns the exit code (the job's, or the first failing rank's). */
export async function runCommand(args: readonly string[], context: CommandContext): Promise<number> {
  const { spec, json } = parseRunArgs(args);
  const { exitCode, document } = await runSpec(spec, json, context);
  if (json) process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  return exitCode;
}

/**
 * Runs a job and prints it for people (placement, paths, rank output, summary); with `json`, rank
 * output goes to stderr and the caller prints the returned `--json` document (alone, or inside a larger one).
 */
export async function runSpec(spec: Parameters<typeof runJob>[0], json: boolean, context: CommandContext): Promise<{ exitCode: number; document: unknown }> {
  const report = await runJob(spec, {
    progress: context.progress,
    interrupt: context.interrupt,
    onPlan: (plan, capabilities) => {
      if (!json) process.stdout.write(`${formatPlacement(plan, capabilities.map(describeCapabilities))}\n\n${formatPathMatrix(plan)}\n\nprogram output:\n`);
    },
    onLine: (line) => printOutputLine(line, json),
  });
  const { exitCode } = report.mpirun;
  if (!json) {
    if (report.outcomes !== null) process.stdout.write(`\n${formatPlanVersusActual(report.plan, report.outcomes)}\n`);
    const { setupMs, probeMs, teardownMs, totalMs } = report.timings;
    process.stderr.write(
      `[ffrun] job ${report.plan.jobId} (${spec.name}) exited with code ${exitCode}: mpirun ${formatDuration(report.mpirun.durationMs)}, ` +
        `set-up ${formatDuration(setupMs)}, probes ${formatDuration(probeMs)}, teardown ${formatDuration(teardownMs)}, total ${formatDuration(totalMs)}\n`,
    );
  }
  if (exitCode !== 0) context.reportError(jobFailure(report.mpirun));
  return { exitCode, document: jobReportJson(report) };
}
