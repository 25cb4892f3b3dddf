import { existsSync } from 'node:fs';
import type { Progress } from '../../ts-runtime/src/cli/progress';
import { withProbedCluster, type ProbedCluster } from '../../ts-runtime/src/cli/run/run-job';
import { FfError } from '../../ts-runtime/src/errors';
import { assertNetworkAvailable, assertOpenMpiInstalled, assertRoot } from '../../ts-runtime/src/launcher/preflight';
import { collectMachineFacts, loadAverage, loadVerdict, parseLinkMtus } from './machine';
import { BENCH_CLUSTER, jobForMode, modeById } from './modes';
import { NETPIPE_PROGRAM } from './netpipe';
import type { Profile } from './profiles';
import { RAW_SCHEMA, RAW_SCHEMA_VERSION, type ModeRecord, type RawReport, type RunRecord } from './raw';
import { executeRun, FFBENCH_MPI } from './run-one';
import { scheduleRuns, type ScheduledRun } from './schedule';

/** Generous: a full-profile TCP run takes about 10 s on an idle machine. */
const RUN_TIMEOUT_SECONDS = 300;

export interface BenchHooks {
  readonly progress: Progress;
  readonly interrupt: AbortSignal;
  /** Called once the cluster is ready, with every run in order. */
  readonly onSchedule?: (runs: readonly ScheduledRun[]) => void;
  readonly onRunDone?: (record: RunRecord) => void;
}

/** Refuses early, before any cluster exists, what cannot work. */
function preflight(profile: Profile): void {
  assertRoot();
  assertOpenMpiInstalled();
  if (profile.modes.some((id) => modeById(id).network === 'freeflow')) assertNetworkAvailable('freeflow');
  if (!existsSync(FFBENCH_MPI)) {
    throw new FfError('MISSING_DEPENDENCY', `the benchmark program ${FFBENCH_MPI} is not built`, { hint: 'run npm run build' });
  }
  if (profile.netpipe !== null && !existsSync(NETPIPE_PROGRAM)) {
    throw new FfError('MISSING_DEPENDENCY', `NetPIPE is not installed: ${NETPIPE_PROGRAM} does not exist`, {
      hint: '`npm run setup` installs it (Debian package netpipe-openmpi)',
    });
  }
}

/**
 * Runs a profile: one cluster (2 hosts x 2 containers) for all modes, so that every mode is measured on
 * the same machine state, the runs interleaved (schedule.ts), the machine recorded. The cluster is
 * removed in every case; an interruption throws INTERRUPTED after that.
 */
export async function runBench(profile: Profile, repetitions: number, hooks: BenchHooks): Promise<RawReport> {
  preflight(profile);
  const started = new Date();
  const facts = await collectMachineFacts();
  const loadBefore = loadAverage();
  const runs = scheduleRuns(profile, repetitions);
  const { result, timings } = await withProbedCluster(BENCH_CLUSTER, hooks, async (probed) => {
    const mtus = await linkMtus(probed);
    const modes = profile.modes.map((id) => modeRecord(id, probed));
    hooks.onSchedule?.(runs);
    const records: RunRecord[] = [];
    const failedModes = new Set<string>();
    for (const run of runs) {
      // A mode that failed once (it cannot start, or crashed) would fail again: its later runs are skipped.
      const record = failedModes.has(run.mode)
        ? skipped(run)
        : await executeRun(run, { probed, profile, validate: false, timeoutSeconds: RUN_TIMEOUT_SECONDS, progress: hooks.progress, interrupt: hooks.interrupt });
      if (record.status === 'failed') failedModes.add(run.mode);
      records.push(record);
      hooks.onRunDone?.(record);
    }
    return { mtus, modes, records, jobId: probed.cluster.jobId };
  });
  const loadAfter = loadAverage();
  const finished = new Date();
  return {
    schema: RAW_SCHEMA,
    schema_version: RAW_SCHEMA_VERSION,
    profile: {
      name: profile.name,
      description: profile.description,
      repetitions,
      modes: [...profile.modes],
      passes: profile.passes.map((pass) => ({ ...pass, sizes: [...pass.sizes] })),
      netpipe: profile.netpipe === null ? null : { ...profile.netpipe, modes: [...profile.netpipe.modes] },
    },
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    machine: { ...facts, mtus: result.mtus, load: { before: loadBefore, after: loadAfter, ...loadVerdict(loadBefore, loadAfter, facts.cpus) } },
    cluster: { jobId: result.jobId, ...BENCH_CLUSTER, setupMs: timings.setupMs, probeMs: timings.probeMs, teardownMs: timings.teardownMs },
    modes: result.modes,
    runs: result.records,
  };
}

async function linkMtus({ cluster }: ProbedCluster): Promise<{ container: Record<string, number>; host: Record<string, number> }> {
  const [container, host] = await Promise.all([
    cluster.execInContainer(cluster.containers[0]!, ['ip', '-o', 'link', 'show']),
    cluster.execInHost(cluster.hosts[0]!, ['ip', '-o', 'link', 'show']),
  ]);
  return { container: parseLinkMtus(container.stdout), host: parseLinkMtus(host.stdout) };
}

function modeRecord(id: ModeRecord['id'], { cluster }: ProbedCluster): ModeRecord {
  const mode = modeById(id);
  const { slots } = jobForMode(mode, { command: FFBENCH_MPI, args: [] }, RUN_TIMEOUT_SECONDS);
  const placement = slots.map((slot) => {
    const container = cluster.containers.find((c) => c.host === slot.host && c.index === slot.containerIndex);
    return { rank: slot.rank, host: slot.host, container: container?.name ?? '?' };
  });
  return {
    id,
    locality: mode.locality,
    name: mode.name,
    description: mode.description,
    network: mode.network,
    mca: { ...mode.mca },
    env: { ...mode.env },
    expectedPath: mode.expectedPath,
    link: mode.link,
    placement,
  };
}

function skipped(run: ScheduledRun): RunRecord {
  return {
    index: run.index,
    repetition: run.repetition,
    mode: run.mode,
    work: run.work,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    load1: loadAverage()[0],
    exitCode: null,
    paths: { planned: [], actual: null, declined: [] },
    status: 'failed',
    problem: 'skipped: an earlier run of this mode failed',
    output: [],
    mpi: null,
    netpipe: null,
  };
}
