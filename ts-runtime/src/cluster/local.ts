import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { exec, type ExecOptions, type ExecResult } from '../util/exec';
import { REPO_ROOT } from '../util/repo-root';
import { AgentLease, registerJobWithAgents, startAgents, type StartedAgents } from './agents';
import type { HostAgentState } from '../orchestrator/decide-paths';
import { startContainer } from './container';
import { OVERLAY_SUBNET, planLayout, type ClusterLayout, type HostLayout } from './layout';
import { createNetnsBatch, endpointBatch, fabricBatch, hostBatch, hostFloodBatch, runBatch, type Mtus } from './network';
import { checkLocalClusterPrerequisites } from './prerequisites';
import { hostsFileText, inspectSystemDirs, type ContainerUser, type SystemLayout, type Volume } from './oci';
import { orderVolumes, resolveClusterRequest, type ResolvedClusterRequest } from './request';
import { runtimeProgram } from './runtime-files';
import { findOnPath } from '../util/system';
import { mountScratch, scratchDirOf } from './scratch';
import { claimJobDir, recordContainer, recordHost } from './state';
import { listJobNetns, teardownJob } from './teardown';
import type { Cluster, ClusterRequest, ContainerHandle, HostHandle, LauncherHandle, ProgressReporter } from './types';

/** A failure inside one named set-up step; hosts are set up in parallel, so the step travels with the error. */
class SetupStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

async function runStep<T>(step: string, progress: ProgressReporter, work: () => Promise<T>): Promise<T> {
  progress(step);
  try {
    return await work();
  } catch (error) {
    throw error instanceof SetupStepError ? error : new SetupStepError(step, error);
  }
}

/** Like Promise.all, but waits for every branch, so nothing is still being created while we tear down. */
async function allSettledOrThrow<T>(work: readonly Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(work);
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure) throw failure.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}

/** The host's shared tmpfs: owned by the job's user, mode 0700 (nobody else on the machine may enter it). */
function mountSharedDir(jobId: string, host: HostLayout, sizeMiB: number | undefined, user: ContainerUser): Promise<ExecResult> {
  fs.mkdirSync(host.sharedDir, { recursive: true, mode: 0o700 });
  const options = `mode=0700,uid=${user.uid},gid=${user.gid},nosuid,nodev${sizeMiB === undefined ? '' : `,size=${sizeMiB}m`}`;
  return exec('mount', ['-t', 'tmpfs', '-o', options, `freeflow-${jobId}-${host.name}`, host.sharedDir]);
}

/**
 * The OCI bundles live on a tmpfs of their own: runc creates a dozen mount points in every rootfs, and
 * removing hundreds of those from a disk file system (ext4 with discard here) took 1.4 s for 32
 * containers; the tmpfs goes in one umount.
 */
function mountBundlesDir(layout: ClusterLayout): Promise<ExecResult> {
  fs.mkdirSync(layout.bundlesDir, { mode: 0o700 });
  return exec('mount', ['-t', 'tmpfs', '-o', 'mode=0700,nosuid,nodev,size=64m', `freeflow-${layout.jobId}-bundles`, layout.bundlesDir]);
}

/** What every container of a job is made of. */
interface ContainerCommon {
  readonly system: SystemLayout;
  readonly hostsText: string;
  readonly init: string;
  readonly volumes: readonly Volume[];
  readonly scratchDir: string | undefined;
  /** Absolute path of `ip` (runc runs it as a hook). */
  readonly ip: string;
}

function containerCommon(layout: ClusterLayout, request: ResolvedClusterRequest): ContainerCommon {
  const init = runtimeProgram('ffrun-init');
  // The checkout's build outputs are read-only in every container, whatever the volumes say: mpirun
  // passes its rsh agent's path on to every orted (which will not start if it cannot see it), the init
  // runs from there, a job that could change the agent would run code as root on the machine, and one
  // that could change the BTL's .so would run code in every later job's ranks.
  const runtimeDirs = [...new Set([path.dirname(init), path.dirname(runtimeProgram('ffrun-rsh')), path.join(REPO_ROOT, 'build')])];
  const volumes = orderVolumes(
    request.volumes.filter((volume) => !volume.readOnly).map((volume) => volume.path),
    [...request.volumes.filter((volume) => volume.readOnly).map((volume) => volume.path), ...runtimeDirs],
  );
  const endpoints = [
    ...layout.hosts.flatMap((host) => host.containers.map((container) => ({ name: container.name, ip: container.overlayIp }))),
    { name: layout.launcher.netns, ip: layout.launcher.overlayIp },
  ];
  const scratchDir = request.scratch === undefined ? undefined : scratchDirOf(layout.stateDir);
  // checkLocalClusterPrerequisites found it on PATH
  const ip = findOnPath('ip')!;
  return { system: inspectSystemDirs(), hostsText: hostsFileText(endpoints), init, volumes, scratchDir, ip };
}

/** A host's shared directory and network (underlay, bridge, VXLAN, container ports), recorded in the map. */
async function buildHostNetwork(layout: ClusterLayout, host: HostLayout, request: ResolvedClusterRequest, progress: ProgressReporter): Promise<void> {
  const mtus: Mtus = request;
  await allSettledOrThrow<unknown>([
    runStep(`${host.name}: shared directory`, progress, () => mountSharedDir(layout.jobId, host, request.sharedDirSizeMiB, request.user)),
    runStep(`${host.name}: network`, progress, () => runBatch('ip', host.netns, hostBatch(layout, host, mtus))),
  ]);
  // node-sharing launches start one orted per host through the rsh agent, by the namespace's name
  recordHost(layout.containerMapFile, { name: host.netns, netns: host.netns, sharedDir: host.sharedDir });
}

/** A host's containers (each its endpoint, then runc), its VXLAN flooding entries and, on h0, the launcher's endpoint. */
async function startHostContainers(
  layout: ClusterLayout,
  host: HostLayout,
  request: ResolvedClusterRequest,
  common: ContainerCommon,
  progress: ProgressReporter,
): Promise<ContainerHandle[]> {
  const others = [runStep(`${host.name}: VXLAN flooding entries`, progress, () => runBatch('bridge', host.netns, hostFloodBatch(layout, host)))];
  if (host.index === 0) {
    others.push(runStep('launcher: network', progress, () => runBatch('ip', layout.launcher.netns, endpointBatch(layout.launcher.overlayCidr))));
  }
  const containers = host.containers.map((container) =>
    runStep(`${container.name}: network and init`, progress, async (): Promise<ContainerHandle> => {
      const init = await startContainer({
        container,
        mounts: { sharedDir: host.sharedDir, shmSizeMiB: request.shmSizeMiB, volumes: common.volumes, scratchDir: common.scratchDir },
        user: request.user,
        init: common.init,
        bundleDir: path.join(layout.bundlesDir, container.name),
        runcRoot: layout.runcRoot,
        system: common.system,
        hostsText: common.hostsText,
        network: container.network === 'own' ? { ip: common.ip, lines: endpointBatch(container.overlayCidr) } : undefined,
      });
      recordContainer(layout.containerMapFile, { name: container.name, init });
      const { name, index, network, netns, overlayIp } = container;
      return { name, host: host.index, index, network, netns, overlayIp, initPid: init.pid };
    }),
  );
  await allSettledOrThrow<unknown>([...containers, ...others]);
  return Promise.all(containers);
}

class LocalCluster implements Cluster {
  readonly jobId: string;
  readonly hosts: readonly HostHandle[];
  readonly launcher: LauncherHandle;
  readonly overlaySubnet = OVERLAY_SUBNET;
  readonly containerMtu: number;
  readonly underlayMtu: number;
  readonly stateDir: string;
  readonly containerMapFile: string;
  readonly user: { readonly uid: number; readonly gid: number };
  readonly scratchDir: string | undefined;
  readonly rshAgent = runtimeProgram('ffrun-rsh');
  private destroyed: Promise<void> | undefined;
  private agentLease: AgentLease | undefined;

  constructor(
    layout: ClusterLayout,
    request: ResolvedClusterRequest,
    readonly containers: readonly ContainerHandle[],
    private readonly startedAgents: StartedAgents | undefined,
  ) {
    this.jobId = layout.jobId;
    this.hosts = layout.hosts.map(({ index, name, netns, underlayIp, sharedDir }) => ({ index, name, netns, underlayIp, sharedDir }));
    this.launcher = { netns: layout.launcher.netns, overlayIp: layout.launcher.overlayIp };
    this.containerMtu = request.containerMtu;
    this.underlayMtu = request.underlayMtu;
    this.stateDir = layout.stateDir;
    this.containerMapFile = layout.containerMapFile;
    this.user = request.user;
    this.scratchDir = request.scratch === undefined ? undefined : scratchDirOf(layout.stateDir);
  }

  execInContainer(container: ContainerHandle, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const { cwd, env, ...rest } = options;
    const agentArgs = ['--argv', ...(cwd === undefined ? [] : ['--cwd', cwd]), container.name, ...argv];
    return exec(this.rshAgent, agentArgs, { ...rest, env: { ...(env ?? process.env), FFRUN_CONTAINER_MAP: this.containerMapFile } });
  }

  execInHost(host: HostHandle, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return exec('ip', ['netns', 'exec', host.netns, ...argv], options);
  }

  execInLauncher(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    // nsenter, not `ip netns exec`: the launcher keeps the machine's /sys (and its cgroup mounts, which
    // runc needs when mpirun's rsh agent starts orted in a container).
    return exec('nsenter', [`--net=/run/netns/${this.launcher.netns}`, '--', ...argv], options);
  }

  get agents() {
    return this.startedAgents?.handles ?? [];
  }

  async registerJobWithAgents(key: string): Promise<HostAgentState[]> {
    // A previous job on this cluster (ffbench runs many): the agents drop it before this one is added.
    await this.agentLease?.end();
    const started = this.startedAgents;
    const notStarted = (host: number): string =>
      started === undefined
        ? 'no ffagent was started for this cluster'
        : (started.failures.find((failure) => failure.host === host)?.problem ?? 'its ffagent did not start');
    const { lease, states } = await registerJobWithAgents(this.agents, this.hosts, { jobId: this.jobId, key, ...this.user }, notStarted);
    this.agentLease = lease;
    return states;
  }

  destroy(): Promise<void> {
    // The leases first: the agents drop the job (its ranks see EOF) before teardown kills them.
    this.agentLease?.release();
    // Remembering success matters: a later job may reuse the id, and a second teardown would hit it.
    this.destroyed ??= teardownJob(this.jobId).catch((error: unknown) => {
      this.destroyed = undefined;
      throw error;
    });
    return this.destroyed;
  }
}

/**
 * Builds H hosts x C containers of real namespaces (the topology is described in this folder's README).
 * On failure it removes what it made and throws CLUSTER_SETUP_FAILED naming the step.
 */
export async function createLocalCluster(request: ClusterRequest, progress: ProgressReporter = () => {}): Promise<Cluster> {
  const resolved = resolveClusterRequest(request);
  checkLocalClusterPrerequisites();
  const layout = planLayout(resolved);
  claimJobDir(resolved.jobId);
  // With the claim held nobody else owns this job id, so leftovers under its name are a dead run's.
  const leftovers = listJobNetns(resolved.jobId);
  if (leftovers.length > 0) {
    fs.rmSync(layout.stateDir, { recursive: true, force: true });
    throw new FfError('CLUSTER_SETUP_FAILED', `network namespaces of job ${resolved.jobId} already exist: ${leftovers.join(', ')}`, {
      hint: 'a killed ffrun left them behind: run the stale-job reaper (reapStaleJobs), or choose another job id',
    });
  }
  try {
    await allSettledOrThrow<unknown>([
      runStep('network namespaces', progress, () => runBatch('ip', undefined, createNetnsBatch(layout.allNetns))),
      runStep('bundle directory', progress, () => mountBundlesDir(layout)),
      ...(resolved.scratch === undefined
        ? []
        : [runStep('scratch volume', progress, () => mountScratch(layout.jobId, layout.stateDir, resolved.scratch!.sizeMiB, resolved.user))]),
    ]);
    await runStep('fabric network', progress, () => runBatch('ip', layout.fabricNetns, fabricBatch(layout, resolved)));
    const common = containerCommon(layout, resolved);
    const networks = layout.hosts.map((host) => buildHostNetwork(layout, host, resolved, progress));
    // A host's containers start as soon as its network is up. The agents need every host's network and
    // shared directory, not the containers: they start alongside them instead of after the last one.
    const containers = allSettledOrThrow(layout.hosts.map((host, i) => networks[i]!.then(() => startHostContainers(layout, host, resolved, common, progress))));
    const agentsStarted = resolved.agents
      ? allSettledOrThrow(networks).then(() => runStep('ffagents', progress, () => startAgents(layout)))
      : Promise.resolve(undefined);
    const [perHost, agents] = (await allSettledOrThrow<unknown>([containers, agentsStarted])) as [ContainerHandle[][], StartedAgents | undefined];
    progress(`cluster ${resolved.jobId} ready`);
    return new LocalCluster(layout, resolved, perHost.flat(), agents);
  } catch (error) {
    const step = error instanceof SetupStepError ? error.step : 'set-up';
    const cause = error instanceof SetupStepError ? error.cause : error;
    const notes: string[] = [];
    try {
      await teardownJob(resolved.jobId, progress);
    } catch (teardownError) {
      notes.push(`cleaning up after the failure also failed: ${(teardownError as Error).message}`);
    }
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new FfError('CLUSTER_SETUP_FAILED', `local cluster set-up failed at step "${step}": ${reason}`, {
      hint:
        notes.length === 0
          ? 'everything the set-up had made was removed; the message names the command that failed'
          : 'run the stale-job reaper (reapStaleJobs) to remove what is left; the message names the command that failed',
      notes,
      cause,
    });
  }
}
