import { createLocalCluster, reapStaleJobs, type Cluster } from '../../cluster';
import { FfError } from '../../errors';
import { buildMpirunInvocation } from '../../launcher/mpirun-invocation';
import { assertNetworkAvailable, assertOpenMpiInstalled, assertProgramRunnable, assertRoot, BTL_DIR } from '../../launcher/preflight';
import type { OutputLine } from '../../launcher/rank-output';
import { runMpirun, type MpirunOutcome } from '../../launcher/run-mpirun';
import { compareWithReports, type PairOutcome } from '../../orchestrator/actual-paths';
import { readBtlReports } from '../../orchestrator/btl-report';
import type { HostCapabilities } from '../../native/capabilities';
import { decidePaths } from '../../orchestrator/decide-paths';
import { plural } from '../../orchestrator/format-plan';
import { newJobId, newJobKey } from '../../orchestrator/job-identity';
import { placeRanks, type RankSlot } from '../../orchestrator/placement';
import type { JobPlan } from '../../orchestrator/plan';
import { probeHosts } from '../../orchestrator/probe-hosts';
import { writePathTables } from '../../orchestrator/write-path-table';
import type { JobSpec } from '../../spec/schema';
import { REPO_ROOT } from '../../util/repo-root';
import type { Progress } from '../progress';

export interface JobHooks {
  readonly progress: Progress;
  /** Aborted with the signal name (SIGINT/SIGTERM) as reason when ffrun is asked to stop. */
  readonly interrupt: AbortSignal;
  /** Called once the plan exists, before mpirun starts (ffrun prints placement and path matrix here). */
  readonly onPlan: (plan: JobPlan, capabilities: readonly HostCapabilities[]) => void;
  readonly onLine: (line: OutputLine) => void;
}

export interface JobReport {
  readonly spec: JobSpec;
  readonly plan: JobPlan;
  readonly capabilities: readonly HostCapabilities[];
  readonly mpirun: MpirunOutcome;
  /** Plan vs what the freeflow BTL reported; null when the BTL was not in use (network overlay). */
  readonly outcomes: PairOutcome[][] | null;
  readonly timings: { readonly setupMs: number; readonly probeMs: number; readonly teardownMs: number; readonly totalMs: number };
}

type ClusterPart = Omit<JobReport, 'spec' | 'timings'> & { readonly probeMs: number };

/**
 * Runs one job from start to finish: checks, reaping what killed runs left, the cluster, probes, plan,
 * path tables, mpirun, BTL reports. Once the cluster exists it is destroyed in every case (success,
 * failure, signal, timeout) before this returns or throws.
 */
export async function runJob(spec: JobSpec, hooks: JobHooks): Promise<JobReport> {
  const started = Date.now();
  assertRoot();
  assertOpenMpiInstalled();
  const slots = placeRanks(spec.cluster, spec.ranks, spec.placement);
  assertNetworkAvailable(spec.network);
  const { progress, interrupt } = hooks;
  const reaped = await progress.step('removing what killed runs left', () => reapStaleJobs((step) => progress.note(step)));
  if (reaped.jobs.length > 0) progress.note(`removed stale jobs: ${reaped.jobs.join(', ')}`);
  throwIfInterrupted(interrupt);

  const jobId = newJobId();
  const setupStart = Date.now();
  const cluster = await progress.step(`setting up cluster ${jobId}: ${plural(spec.cluster.hosts, 'host')} x ${plural(spec.cluster.containersPerHost, 'container')}`, () =>
    // The repository is the containers' "image": mounted at its own path even where containers replace
    // the directory (a clone under /tmp), so its programs and the BTL are found inside.
    createLocalCluster(
      { jobId, hosts: spec.cluster.hosts, containersPerHost: spec.cluster.containersPerHost, volumes: [REPO_ROOT] },
      (step) => progress.note(step),
    ),
  );
  const setupMs = Date.now() - setupStart;
  let part: ClusterPart | undefined;
  let failure: unknown;
  try {
    part = await runOnCluster(cluster, spec, slots, hooks);
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
  if (part === undefined) throw failure;
  if (part.mpirun.timedOut) {
    throw new FfError('JOB_TIMEOUT', `the job did not finish within ${spec.timeoutSeconds} s; it was stopped and its cluster removed`, {
      hint: 'raise timeoutSeconds in the spec (--timeout on the command line), or look at the rank output above for a hang',
    });
  }
  const { probeMs, ...rest } = part;
  return { spec, ...rest, timings: { setupMs, probeMs, teardownMs, totalMs: Date.now() - started } };
}

async function runOnCluster(cluster: Cluster, spec: JobSpec, slots: readonly RankSlot[], hooks: JobHooks): Promise<ClusterPart> {
  const { progress, interrupt } = hooks;
  throwIfInterrupted(interrupt);
  const probeStart = Date.now();
  const capabilities = await progress.step('probing hosts', () => probeHosts(cluster));
  const probeMs = Date.now() - probeStart;
  await assertProgramRunnable(cluster.containers[0]!, spec.program.command, (container, argv, options) =>
    cluster.execInContainer(container, argv, options),
  );
  const plan: JobPlan = {
    jobId: cluster.jobId,
    key: newJobKey(),
    network: spec.network,
    placement: spec.placement,
    hosts: cluster.hosts.map((host) => ({ index: host.index, name: host.name })),
    ranks: slots.map((slot) => ({ ...slot, container: containerAt(cluster, slot).name })),
    paths: decidePaths(slots, capabilities, spec.network),
  };
  const sharedDirs = cluster.hosts.map((host) => host.sharedDir);
  writePathTables(plan, sharedDirs);
  hooks.onPlan(plan, capabilities);
  throwIfInterrupted(interrupt);

  const invocation = buildMpirunInvocation({
    plan,
    spec,
    cpus: capabilities[0]!.cpus,
    overlaySubnet: cluster.overlaySubnet,
    rshAgent: cluster.rshAgent,
    containerMapFile: cluster.containerMapFile,
    btlDir: BTL_DIR,
    stateDir: cluster.stateDir,
  });
  const mpirun = await runMpirun(invocation, {
    launcherNetns: cluster.launcher.netns,
    timeoutMs: spec.timeoutSeconds * 1000,
    interrupt,
    onLine: hooks.onLine,
  });
  const outcomes = spec.network === 'freeflow' ? compareWithReports(plan, readBtlReports(plan.ranks, sharedDirs)) : null;
  return { plan, capabilities, mpirun, outcomes, probeMs };
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
