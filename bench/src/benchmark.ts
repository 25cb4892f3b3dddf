import { FfError } from '#runtime/errors';
import type { Progress } from '#runtime/job/progress';
import { plural } from '#runtime/orchestrator/format-plan';
import { formatSize } from '#runtime/util/units';
import type { BenchArgs } from './args';
import { RunProgressBar } from './progress-bar';
import type { RawReport } from './raw';
import { renderText } from './render-text';
import { stdoutBlocks } from './report-content';
import { runBench } from './run-bench';
import type { ScheduledRun } from './schedule';
import { modeStatuses } from './summary';
import { assertUsableReportDir, defaultReportDir, writeReports, type ReportFiles } from './write-reports';

/** What a benchmark run needs from its caller (ffrun's CommandContext is one). */
export interface BenchContext {
  readonly progress: Progress;
  /** Aborted with the signal's name on SIGINT/SIGTERM. */
  readonly interrupt: AbortSignal;
  /** Prints an error the way ffrun does, for an error that does not stop the run (BENCH_INCOMPLETE). */
  readonly reportError: (error: FfError) => void;
}

export interface BenchOutcome {
  readonly raw: RawReport;
  readonly files: ReportFiles;
  /** 0, or 1 when a mode failed or measured another path than it claims (reported as BENCH_INCOMPLETE). */
  readonly exitCode: number;
}

/** The `--json` document: raw.json's content and where the reports are. */
export function benchDocument({ raw, files }: BenchOutcome): unknown {
  return { ...raw, reports: files };
}

/**
 * Runs a profile with a progress bar on stderr and writes raw.json, summary.md and report.html. Missed
 * targets do not fail a benchmark; a mode that failed or used another path does, after the files exist.
 */
export async function runBenchmark(options: BenchArgs, context: BenchContext): Promise<BenchOutcome> {
  const dir = options.out ?? defaultReportDir(new Date());
  assertUsableReportDir(dir);
  const { profile } = options;
  const bar = new RunProgressBar(
    (text) => process.stderr.write(text),
    process.stderr.isTTY === true,
    (run) => describeRun(options, run),
  );
  context.progress.note(`ffbench ${profile.name}: ${profile.description}; ${plural(options.repetitions, 'repetition')}`);
  let raw: RawReport;
  try {
    raw = await runBench(profile, options.repetitions, {
      progress: context.progress,
      interrupt: context.interrupt,
      onSchedule: (runs) => bar.start(runs),
      onRunDone: (record) => bar.finished(record),
      backend: options.backend,
    });
  } finally {
    bar.end();
  }
  const files = writeReports(raw, dir);
  // A mode the launcher refused (a plane not built yet) is reported, not a failure.
  const broken = modeStatuses(raw).filter((status) => status.status === 'failed' || status.status === 'invalid');
  if (broken.length > 0) {
    context.reportError(
      new FfError('BENCH_INCOMPLETE', `${broken.map((s) => `${s.mode.id} ${s.status}`).join(', ')}: ${broken.flatMap((s) => s.problems).join('; ')}`, {
        hint: `the reports in ${dir} mark these modes and hold the output of their runs; the other modes were measured`,
      }),
    );
  }
  return { raw, files, exitCode: broken.length === 0 ? 0 : 1 };
}

/** The headline table (or the targets first, for profile shm) and the report paths, on stdout. */
export function printBenchSummary({ raw, files }: BenchOutcome, options: Pick<BenchArgs, 'profile'>): void {
  process.stdout.write(`\n${renderText(stdoutBlocks(raw, options.profile.targetsFirst))}`);
  process.stdout.write(`\nreports: ${files.summary}\n         ${files.html}\n         ${files.raw}\n`);
}

const WORK_NAME = { netpipe: 'NetPIPE', rma: 'ffbench_rma', shmwin: 'ffbench_shmwin_pingpong' } as const;

function describeRun(options: BenchArgs, run: ScheduledRun): string {
  const what = run.work.kind === 'mpi' ? describePass(options, run.work.pass) : WORK_NAME[run.work.kind];
  return `${run.mode} ${what}, repetition ${run.repetition}/${options.repetitions}`;
}

function describePass(options: BenchArgs, index: number): string {
  const pass = options.profile.passes[index];
  if (pass === undefined) return `pass ${index}`;
  const first = pass.sizes[0];
  const last = pass.sizes[pass.sizes.length - 1];
  if (first === undefined || last === undefined) return pass.benchmark;
  return `${pass.benchmark} ${first === last ? formatSize(first) : `${formatSize(first)}-${formatSize(last)}`}`;
}
