import { existsSync } from 'node:fs';
import type { Progress } from '#runtime/job/progress';
import { withProbedCluster, type ProbedCluster } from '#runtime/job/run-job';
import { FfError } from '#runtime/errors';
import { assertNetworkAvailable, assertOpenMpiInstalled } from '#runtime/launcher/preflight';
import { assertRoot } from '#runtime/util/system';
import { assertSlurmBackendUsable, withSlurm, slurmModeRefusal, type RankLauncher } from '#runtime/backends/slurm/index';
import { FFBENCH_POLL, runIdlePeers } from './idle-peers';
import { collectMachineFacts, loadAverage, loadVerdict, parseLinkMtus } from './machine';
import { measureFloor, runUnderOnePlacement } from './shm-machine';
import { BENCH_CLUSTER, clusterMtusOf, jobForMode, modeById, modeRefusal, type ModeId, type MtuClass } from './modes';
import { NETPIPE_PROGRAM } from './netpipe';
import type { Profile } from './profiles';
import { MTU_CLASSES, RAW_SCHEMA, RAW_SCHEMA_VERSION, type ModeRecord, type RawReport, type RunRecord } from './raw';
import { executeRun, FFBENCH_MPI } from './run-one';
import { FFBENCH_RMA, FFBENCH_SHMWIN } from './rma-result';
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
  if (profile.idlePeers === true && !existsSync(FFBENCH_POLL)) {
    throw new FfError('MISSING_DEPENDENCY', `the idle-peers benchmark ${FFBENCH_POLL} is not built`, { hint: 'run npm run build' });
  }
  for (const program of profile.rma === true ? [FFBENCH_RMA, FFBENCH_SHMWIN] : []) {
    if (!existsSync(program)) throw new FfError('MISSING_DEPENDENCY', `the one-sided benchmark ${program} is not built`, { hint: 'run npm run build' });
  }
  if (profile.netpipe !== null && !existsSync(NETPIPE_PROGRAM)) {
    throw new FfError('MISSING_DEPENDENCY', `NetPIPE is not installed: ${NETPIPE_PROGRAM} does not exist`, {
      hint: '`npm run setup` installs it (Debian package netpipe-openmpi)',
    });
  }
}

/** What one cluster of the run is: its MTU class and what it was built with. */
interface BenchCluster {
  readonly mtu: MtuClass;
  readonly probed: ProbedCluster;
  readonly launcher?: RankLauncher;
}

type ClusterRecord = RawReport['clusters'][number];

/**
 * Builds one cluster per MTU class in `mtus` (nested, so all are up at once and runs on them interleave)
 * and runs `work` with all of them; every cluster is removed in every case.
 */
async function withBenchClusters<T>(
  mtus: readonly MtuClass[],
  needs: { agents: boolean; hostNetwork: boolean; containersPerHost: number },
  hooks: BenchHooks & { readonly backend?: 'local' | 'slurm' },
  work: (clusters: readonly BenchCluster[]) => Promise<T>,
  built: readonly BenchCluster[] = [],
  records: ClusterRecord[] = [],
): Promise<{ result: T; clusters: ClusterRecord[] }> {
  const [mtu, ...rest] = mtus;
  if (mtu === undefined) return { result: await work(built), clusters: records };
  const clusterMtus = clusterMtusOf(mtu);
  let inner: { result: T; clusters: ClusterRecord[] } | undefined;
  let jobId = '';
  let probedMtus = { containerMtu: 0, underlayMtu: 0 };
  const { timings } = await withProbedCluster(
    {
      hosts: BENCH_CLUSTER.hosts,
      containersPerHost: needs.containersPerHost,
      // Only for host-mode ranks: other profiles' clusters stay exactly as ffrun builds them.
      hostNetworkContainersPerHost: needs.hostNetwork ? BENCH_CLUSTER.hostNetworkContainersPerHost : 0,
      ...clusterMtus,
      // The freeflow cross-host modes' planes go through the hosts' agents.
      agents: needs.agents,
    },
    hooks,
    async (probed) => {
      jobId = probed.cluster.jobId;
      probedMtus = { containerMtu: probed.cluster.containerMtu, underlayMtu: probed.cluster.underlayMtu };
      inner =
        hooks.backend === 'slurm'
          ? await withSlurm(probed.cluster, { progress: hooks.progress }, (launcher) =>
              withBenchClusters(rest, needs, hooks, work, [...built, { mtu, probed, launcher }], records),
            )
          : await withBenchClusters(rest, needs, hooks, work, [...built, { mtu, probed }], records);
    },
  );
  const { hosts } = BENCH_CLUSTER;
  const { containersPerHost } = needs;
  const hostNetworkContainersPerHost = needs.hostNetwork ? BENCH_CLUSTER.hostNetworkContainersPerHost : 0;
  // Outer clusters finish last: put each at its MTU's place in the list.
  const { setupMs, probeMs, teardownMs } = timings;
  inner!.clusters.splice(built.length, 0, { mtu, jobId, hosts, containersPerHost, hostNetworkContainersPerHost, ...probedMtus, setupMs, probeMs, teardownMs });
  return inner!;
}

/**
 * Runs a profile: one cluster (2 hosts x 2 containers, plus a host-network container per host) per MTU
 * the profile's modes need, so that every mode is measured on the same machine state, the runs
 * interleaved (schedule.ts), the machine recorded. Modes the launcher refuses (a plane not built yet) are
 * recorded with its reason and not run. The clusters are removed in every case; an interruption throws
 * INTERRUPTED after that.
 */
export async function runBench(profile: Profile, repetitions: number, hooks: BenchHooks & { readonly backend?: 'local' | 'slurm' }): Promise<RawReport> {
  preflight(profile);
  if (hooks.backend === 'slurm') await assertSlurmBackendUsable(undefined);
  const started = new Date();
  const facts = await collectMachineFacts();
  const loadBefore = loadAverage();
  const refusals = new Map(
    profile.modes.map((id) => [id, modeRefusal(modeById(id)) ?? (hooks.backend === 'slurm' ? slurmModeRefusal(modeById(id)) : null)] as const),
  );
  const runnable = profile.modes.filter((id) => refusals.get(id) === null);
  const runs = scheduleRuns({ ...profile, modes: runnable }, repetitions);
  const mtus = MTU_CLASSES.filter((mtu) => runnable.some((id) => modeById(id).mtu === mtu));
  const agents = runnable.some((id) => modeById(id).network === 'freeflow' && modeById(id).locality === 'cross-host');
  const hostNetwork = runnable.some((id) => modeById(id).hostNetwork);
  // a container per rank on host 0 for the same-host modes' runs with more ranks (profile shm)
  const containersPerHost = Math.max(BENCH_CLUSTER.containersPerHost, ...profile.passes.map((pass) => pass.ranks ?? 2));
  const { result, clusters } = await withBenchClusters(mtus, { agents, hostNetwork, containersPerHost }, hooks, async (built) => {
    const linkMtuRecord: RawReport['machine']['mtus'] = {};
    for (const { mtu, probed } of built) linkMtuRecord[mtu] = await linkMtus(probed);
    const clusterOf = (id: ModeId): ProbedCluster => built.find((c) => c.mtu === modeById(id).mtu)!.probed;
    const launcherOf = (id: ModeId): RankLauncher | undefined => built.find((c) => c.mtu === modeById(id).mtu)!.launcher;
    const modes = profile.modes.map((id) => modeRecord(id, refusals.get(id) ?? null, built[0]!.probed, containersPerHost));
    hooks.onSchedule?.(runs);
    const records: RunRecord[] = [];
    const failedModes = new Set<string>();
    for (const run of runs) {
      // A mode that failed once (it cannot start, or crashed) would fail again: its later runs are skipped.
      const execute = (): Promise<RunRecord> =>
        executeRun(run, {
          probed: clusterOf(run.mode),
          profile,
          validate: false,
          timeoutSeconds: RUN_TIMEOUT_SECONDS,
          progress: hooks.progress,
          interrupt: hooks.interrupt,
          containersPerHost,
          launcher: launcherOf(run.mode),
        });
      // the shm profile's ratios depend on where the two vCPUs are: floors before and after every run, and a
      // run during which they moved is run again (bounded)
      const record = failedModes.has(run.mode)
        ? skipped(run)
        : profile.coreFloor === true
          ? await runUnderOnePlacement(execute, measureFloor, () => !hooks.interrupt.aborted)
          : await execute();
      if (record.status === 'failed') failedModes.add(run.mode);
      records.push(record);
      hooks.onRunDone?.(record);
    }
    return { mtus: linkMtuRecord, modes, records };
  });
  // On the host, after the clusters are gone: the core benchmark needs no container.
  const idlePeers = profile.idlePeers === true ? await runIdlePeers(repetitions, hooks.interrupt) : null;
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
      ...(profile.rma === true ? { rma: true } : {}),
    },
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    machine: { ...facts, mtus: result.mtus, load: { before: loadBefore, after: loadAfter, ...loadVerdict(loadBefore, loadAfter, facts.cpus) } },
    clusters,
    modes: result.modes,
    runs: result.records,
    ...(idlePeers === null ? {} : { idlePeers }),
  };
}

async function linkMtus({ cluster }: ProbedCluster): Promise<{ container: Record<string, number>; host: Record<string, number> }> {
  const [container, host] = await Promise.all([
    cluster.execInContainer(cluster.containers[0]!, ['ip', '-o', 'link', 'show']),
    cluster.execInHost(cluster.hosts[0]!, ['ip', '-o', 'link', 'show']),
  ]);
  return { container: parseLinkMtus(container.stdout), host: parseLinkMtus(host.stdout) };
}

function modeRecord(id: ModeId, refused: string | null, { cluster }: ProbedCluster, containersPerHost: number): ModeRecord {
  const mode = modeById(id);
  // A refused mode has no spec; its placement is the one it would have had (of its 2-rank runs).
  const slots = refused === null ? jobForMode(mode, { command: FFBENCH_MPI, args: [] }, RUN_TIMEOUT_SECONDS, { ranks: 2, containersPerHost }).slots : [];
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
    interHost: mode.interHost,
    mtu: mode.mtu,
    hostNetwork: mode.hostNetwork,
    mca: { ...mode.mca },
    env: { ...mode.env },
    expectedPath: mode.expectedPath,
    link: mode.link,
    placement,
    refused,
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
