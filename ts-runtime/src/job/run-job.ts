import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { createLocalCluster, reapStaleJobs, type Cluster } from '../cluster';
import { FfError } from '../errors';
import { buildMpirunInvocation } from '../launcher/mpirun-invocation';
import { assertNetworkAvailable, assertOpenMpiInstalled, assertProgramRunnable, BTL_DIR } from '../launcher/preflight';
import { assertRoot } from '../util/system';
import type { OutputLine } from '../launcher/rank-output';
import { runMpirun, type MpirunOutcome } from '../launcher/run-mpirun';
import { compareWithReports, type PairOutcome } from '../orchestrator/actual-paths';
import { readBtlReports, removeBtlReports } from '../orchestrator/btl-report';
import type { HostCapabilities } from '../native/capabilities';
import { decideInterHost, decidePaths } from '../orchestrator/decide-paths';
import { plural } from '../orchestrator/format-plan';
import { newJobId, newJobKey } from '../orchestrator/job-identity';
import { placeRanks, type ClusterShape, type RankSlot } from '../orchestrator/placement';
import type { JobPlan } from '../orchestrator/plan';
import { probeHosts } from '../orchestrator/probe-cluster';
import { writePathTables } from '../orchestrator/write-path-table';
import { containerMtuOf, MTU, scratchRequest, type JobSpec } from '../spec/schema';
import { resolveJobUser, type JobUser } from '../spec/user';
import { REPO_ROOT } from '../util/repo-root';
import { runtimeProgram } from '../cluster/runtime-files';
import { chooseLaunch } from '../orchestrator/launch-mode';
import type { Progress } from './progress';
import { assertSlurmBackendUsable, existingSlurmConf, runOnExistingSlurm, withSlurm, type RankLauncher } from '../backends/slurm';

export interface JobHooks {
  readonly progress: Progress;
  /** Aborted with the signal name (SIGINT/SIGTERM) as reason when ffrun is asked to stop. */
  readonly interrupt: AbortSignal;
  /** Called once the plan exists, before mpirun starts (ffrun prints placement and path matrix here). */
  readonly onPlan: (plan: JobPlan, capabilities: readonly HostCapabilities[]) => void;
  readonly onLine: (line: OutputLine) => void;
}

export interface JobReport extends JobOnCluster {
  readonly spec: JobSpec;
  readonly capabilities: readonly HostCapabilities[];
  readonly timings: ClusterTimings;
}

/** A cluster that exists and whose hosts were probed: what a job (or several, as ffbench runs) needs. */
export interface ProbedCluster {
  readonly cluster: Cluster;
  readonly capabilities: readonly HostCapabilities[];
}

export interface ClusterTimings {
  readonly setupMs: number;
  readonly probeMs: number;
  readonly teardownMs: number;
  readonly totalMs: number;
}

/**
 * Runs one job from start to finish: checks, reaping what killed runs left, the cluster, probes, plan,
 * path tables, mpirun, BTL reports. Once the cluster exists it is destroyed in every case (success,
 * failure, signal, timeout) before this returns or throws.
 */
export async function runJob(spec: JobSpec, hooks: JobHooks): Promise<JobReport> {
  assertRoot();
  assertOpenMpiInstalled();
  const slots = placeRanks(spec.cluster, spec.ranks, spec.placement);
  assertNetworkAvailable(spec.network);
  const user = resolveJobUser(spec.user);
  // Agents only when pairs across hosts may use them: other jobs run exactly as before.
  const agents = wantsAgents(spec, spec.cluster.hosts);
  const underlayMtu = spec.cluster.mtu ?? MTU.default;
  const containerMtu = containerMtuOf(spec.cluster);
  const scratch = scratchRequest(spec.scratch);
  // --backend slurm: the same cluster and plan, the ranks started by srun of a Slurm (docs/slurm.md)
  const slurmConf = spec.backend === 'slurm' ? existingSlurmConf(spec.slurmConf) : undefined;
  const existingSlurm = spec.backend === 'slurm' ? await assertSlurmBackendUsable(slurmConf) : undefined;
  // an existing Slurm's nodes hold the job: no local cluster (docs/slurm.md, "Your own Slurm")
  if (existingSlurm !== undefined) return runOnExistingSlurm(spec, existingSlurm, hooks);
  const { result, capabilities, timings } = await withProbedCluster(
    { ...spec.cluster, ...jobVolumes(spec), user, agents, containerMtu, underlayMtu, ...(scratch ? { scratch } : {}) },
    hooks,
    (probed) =>
      spec.backend === 'slurm'
        ? withSlurm(probed.cluster, { progress: hooks.progress }, (launcher) => runJobOnCluster(probed, spec, slots, hooks, launcher))
        : runJobOnCluster(probed, spec, slots, hooks),
  );
  if (result.mpirun.timedOut) {
    throw new FfError('JOB_TIMEOUT', `the job did not finish within ${spec.timeoutSeconds} s; it was stopped and its cluster removed`, {
      hint: 'raise timeoutSeconds in the spec (--timeout on the command line), or look at the rank output above for a hang',
    });
  }
  return { spec, ...result, capabilities, timings };
}

/**
 * Directories containers see at their own paths, like a pod's volumes: the repository (the containers'
 * "image", with the BTL and the rsh agent) read-only, so that no job can change what ffrun and the
 * ranks of later jobs run; the caller's working directory (the ranks' working directory, as with
 * mpirun) and the program's directory read-write, unless they lie inside the repository. Containers see
 * the machine's system directories read-only and nothing else of it; /tmp and /run are their own and
 * never shared whole.
 */
const CONTAINER_OWN_DIRS = new Set(['/', '/tmp', '/run']);

export function jobVolumes(spec: Pick<JobSpec, 'program'>, cwd = process.cwd()): { volumes: string[]; readOnlyVolumes: string[] } {
  const directories = [cwd];
  if (path.isAbsolute(spec.program.command)) directories.push(path.dirname(spec.program.command));
  // A directory that does not exist cannot be mounted; the program check then names what is missing.
  const usable = (directory: string) => existsSync(directory) && !CONTAINER_OWN_DIRS.has(directory);
  return { volumes: [...new Set(directories)].filter(usable), readOnlyVolumes: [REPO_ROOT] };
}

/**
 * Reaps what killed runs left, builds a cluster of the given shape, probes its hosts and runs `work` on
 * it; the cluster is destroyed in every case (success, failure, signal) before this returns or throws.
 */
export async function withProbedCluster<T>(
  shape: Pick<ClusterShape, 'hosts' | 'containersPerHost'> & {
    readonly volumes?: readonly string[];
    readonly readOnlyVolumes?: readonly string[];
    readonly user?: JobUser;
    /** Start one ffagent per host (multi-host freeflow jobs whose pairs across hosts may use them). */
    readonly agents?: boolean;
    /** Jumbo-frame clusters, containers below the hosts' MTU, host-mode ranks (see ClusterRequest). */
    readonly containerMtu?: number;
    readonly underlayMtu?: number;
    readonly hostNetworkContainersPerHost?: number;
    /** A job-wide scratch volume at /scratch (cluster/scratch.ts). */
    readonly scratch?: { readonly sizeMiB?: number };
  },
  hooks: Pick<JobHooks, 'progress' | 'interrupt'>,
  work: (probed: ProbedCluster) => Promise<T>,
): Promise<{ result: T; capabilities: readonly HostCapabilities[]; timings: ClusterTimings }> {
  const started = Date.now();
  assertRoot();
  const { progress, interrupt } = hooks;
  const reaped = await progress.step('removing what killed runs left', () => reapStaleJobs((step) => progress.note(step)));
  if (reaped.jobs.length > 0) progress.note(`removed stale jobs: ${reaped.jobs.join(', ')}`);
  throwIfInterrupted(interrupt);

  const jobId = newJobId();
  const setupStart = Date.now();
  const cluster = await progress.step(`setting up cluster ${jobId}: ${plural(shape.hosts, 'host')} x ${plural(shape.containersPerHost, 'container')}`, () =>
    createLocalCluster(
      {
        jobId,
        hosts: shape.hosts,
        containersPerHost: shape.containersPerHost,
        volumes: shape.volumes ?? [],
        readOnlyVolumes: shape.readOnlyVolumes ?? [REPO_ROOT],
        ...(shape.user === undefined ? {} : { user: shape.user }),
        ...(shape.agents === true ? { agents: true } : {}),
        ...(shape.containerMtu === undefined ? {} : { containerMtu: shape.containerMtu }),
        ...(shape.underlayMtu === undefined ? {} : { underlayMtu: shape.underlayMtu }),
        ...(shape.hostNetworkContainersPerHost === undefined ? {} : { hostNetworkContainersPerHost: shape.hostNetworkContainersPerHost }),
        ...(shape.scratch === undefined ? {} : { scratch: shape.scratch }),
      },
      (step) => progress.note(step),
    ),
  );
  const setupMs = Date.now() - setupStart;
  let outcome: { result: T; capabilities: readonly HostCapabilities[]; probeMs: number } | undefined;
  let failure: unknown;
  try {
    throwIfInterrupted(interrupt);
    const probeStart = Date.now();
    const capabilities = await progress.step('probing hosts', () => probeHosts(cluster));
    const probeMs = Date.now() - probeStart;
    outcome = { result: await work({ cluster, capabilities }), capabilities, probeMs };
  } catch (error) {
    failure = error;
  }
  const teardownStart = Date.now();
  try {
    await progress.step(`tearing down cluster ${jobId}`, () => cluster.destroy());
  } catch (teardownError) {
    if (failure !== undefined) progress.note(`(before teardown failed, the job had failed: ${(failure as Error).message})`);
    throw teardownError;
  }
  const teardownMs = Date.now() - teardownStart;

  throwIfInterrupted(interrupt);
  if (outcome === undefined) throw failure;
  const { result, capabilities, probeMs } = outcome;
  return { result, capabilities, timings: { setupMs, probeMs, teardownMs, totalMs: Date.now() - started } };
}

export interface JobOnCluster {
  readonly plan: JobPlan;
  readonly mpirun: MpirunOutcome;
  /** Plan vs what the freeflow BTL reported; null when the BTL was not in use (network overlay). */
  readonly outcomes: PairOutcome[][] | null;
}

/**
 * Runs one job on a probed cluster: plan, path tables (reports of an earlier job on the same cluster
 * are removed first), mpirun, BTL reports. `slots` must fit the cluster (placeRanks with spec.cluster).
 * ffbench runs many jobs on one cluster this way, so that all are measured on the same machine state.
 */
export async function runJobOnCluster(
  { cluster, capabilities }: ProbedCluster,
  spec: JobSpec,
  slots: readonly RankSlot[],
  hooks: JobHooks,
  /** Starts the ranks instead of ffrun's mpirun (the Slurm backend's srun). */
  launcher?: RankLauncher,
): Promise<JobOnCluster> {
  const { interrupt } = hooks;
  throwIfInterrupted(interrupt);
  await assertProgramRunnable(cluster.containers[0]!, spec.program.command, (container, argv, options) => cluster.execInContainer(container, argv, options));
  // A fresh key per job: segments of an earlier job on the same cluster can never be taken for this one's.
  const key = newJobKey();
  // The agents' reachability is probed by registering the job on them, before the plan: registered
  // before the ranks start, so that their registration finds the job (agent.sock exists).
  const agents = wantsAgents(spec, cluster.hosts.length)
    ? await hooks.progress.step('registering the job with the ffagents', () => cluster.registerJobWithAgents(key))
    : cluster.hosts.map(() => ({ reachable: false, problem: 'no ffagent is needed by this job' }));
  const interHost = decideInterHost(spec.network, spec.interHost, capabilities, agents);
  // A cluster made without agents (ffbench's) is the caller's choice, stated in the plan; a missing agent
  // of a cluster that has them is a fault worth a warning.
  agents.forEach((agent, host) => {
    if (agent.problem !== undefined && wantsAgents(spec, cluster.hosts.length) && cluster.agents.length > 0) {
      hooks.progress.note(`warning: pairs with host ${host} fall back to tcp over the overlay: ${agent.problem}`);
    }
  });
  const plan: JobPlan = {
    jobId: cluster.jobId,
    key,
    network: spec.network,
    placement: spec.placement,
    launch: launcher?.launch ?? chooseLaunch(spec.network, cluster.user, spec.launch),
    interHost,
    hosts: cluster.hosts.map((host) => ({ index: host.index, name: host.name })),
    ranks: slots.map((slot) => ({ ...slot, container: containerAt(cluster, slot).name })),
    paths: decidePaths(slots, capabilities, spec.network, interHost),
  };
  const sharedDirs = cluster.hosts.map((host) => host.sharedDir);
  removeBtlReports(plan.ranks, sharedDirs);
  writePathTables(plan, sharedDirs, cluster.user);
  hooks.onPlan(plan, capabilities);
  throwIfInterrupted(interrupt);

  const invocation = buildMpirunInvocation({
    plan,
    spec,
    cpus: capabilities[0]!.cpus,
    overlaySubnet: cluster.overlaySubnet,
    rshAgent: cluster.rshAgent,
    forkAgent: runtimeProgram('ffrun-fork-agent'),
    containerMapFile: cluster.containerMapFile,
    hostNames: cluster.hosts.map((host) => host.netns),
    btlDir: BTL_DIR,
    stateDir: cluster.stateDir,
  });
  const runOptions = { launcherNetns: cluster.launcher.netns, timeoutMs: spec.timeoutSeconds * 1000, interrupt, onLine: hooks.onLine };
  const mpirun = launcher === undefined ? await runMpirun(invocation, runOptions) : await launcher.run(invocation, plan, runOptions);
  const outcomes = spec.network === 'freeflow' ? compareWithReports(plan, readBtlReports(plan.ranks, sharedDirs), { succeeded: mpirun.exitCode === 0 }) : null;
  return { plan, mpirun, outcomes };
}

/** Whether the job's pairs across hosts may use the agents (every plane but the overlay's needs them). */
function wantsAgents(spec: Pick<JobSpec, 'network' | 'interHost'>, hosts: number): boolean {
  return hosts > 1 && spec.network === 'freeflow' && spec.interHost !== 'tcp';
}

function containerAt(cluster: Cluster, slot: RankSlot): Cluster['containers'][number] {
  const container = cluster.containers.find((c) => c.host === slot.host && c.index === slot.containerIndex);
  if (container === undefined) throw new FfError('INTERNAL', `the cluster has no container ${slot.containerIndex} on host ${slot.host}`);
  return container;
}

function throwIfInterrupted(interrupt: AbortSignal): void {
  if (interrupt.aborted) {
    throw new FfError('INTERRUPTED', `interrupted by ${String(interrupt.reason)}; the job was stopped and everything it created was removed`);
  }
}
