import { FfError } from '../../errors';
import type { OutputLine } from '../../launcher/rank-output';
import type { MpirunOutcome } from '../../launcher/run-mpirun';
import type { HostCapabilities } from '../../native/capabilities';
import { componentPathSetting, jobMcaSettings } from '../../launcher/mpirun-invocation';
import { BTL_DIR } from '../../launcher/preflight';
import { runtimeProgram } from '../../cluster/runtime-files';
import { decideInterHost, planeBetween } from '../../orchestrator/decide-paths';
import { newJobId, newJobKey } from '../../orchestrator/job-identity';
import { planOneSided } from '../../orchestrator/osc-selection';
import { formatPathTable } from '../../orchestrator/path-table';
import type { PathKind } from '../../orchestrator/path-kind';
import { placeRanks } from '../../orchestrator/placement';
import type { JobPlan } from '../../orchestrator/plan';
import type { JobSpec } from '../../spec/schema';
import { resolveJobUser } from '../../spec/user';
import { exec } from '../../util/exec';
import type { ExistingSlurm } from './existing';
import { SLURM_CLIENTS } from './preflight';
import { runSrunChecked } from './run-srun';
import { DIRECT_LAUNCH_ENV, srunPlacementArgs } from './srun-invocation';

/** What runOnExistingSlurm needs of ffrun's job hooks (job/run-job.ts's JobHooks, which calls it). */
export interface ExistingJobHooks {
  readonly progress: { step<R>(what: string, run: () => Promise<R>): Promise<R> };
  readonly interrupt: AbortSignal;
  readonly onPlan: (plan: JobPlan, capabilities: readonly HostCapabilities[]) => void;
  readonly onLine: (line: OutputLine) => void;
}

/** The job's report in run-job.ts's terms: no local cluster, so no probes, no set-up, no actual matrix. */
export interface ExistingJobReport {
  readonly spec: JobSpec;
  readonly plan: JobPlan;
  readonly mpirun: MpirunOutcome;
  readonly outcomes: null;
  readonly capabilities: readonly HostCapabilities[];
  readonly timings: { readonly setupMs: number; readonly probeMs: number; readonly teardownMs: number; readonly totalMs: number };
}

/** Node states a job can be placed on (sinfo %T, without suffixes such as `*` for not responding). */
const USABLE_STATES = /^(idle|mixed|allocated|completing)$/;

/**
 * Runs a job on an existing Slurm whose nodes run freeflow's node pieces (docs/slurm.md, "Your own
 * Slurm"): ffrun plans it on nodes the site's agents file lists, and srun carries the plan to the nodes
 * as the path table (--freeflow-table). There the SPANK plugin, as root, makes the job's directory,
 * registers the job with the node's ffagent, gives every task its own namespaces and removes it all at the
 * step's end (and in the job epilog). ffrun creates nothing on the nodes itself; the BTL's reports stay on
 * the nodes and go with the job's directory, so the plan is printed without the actual matrix.
 */
export async function runOnExistingSlurm(spec: JobSpec, slurm: ExistingSlurm, hooks: ExistingJobHooks): Promise<ExistingJobReport> {
  const started = Date.now();
  if (resolveJobUser(spec.user).uid !== 0) {
    throw new FfError('SLURM_MISCONFIGURED', 'the Slurm backend runs root jobs only (ffrun submits as the user it runs as)', {
      hint: 'drop --user (spec user:); run ffrun as the user whose job it is',
    });
  }
  if (spec.cluster.slotsPerContainer !== 1) {
    throw new FfError('SPEC_INVALID', `on an existing Slurm every task is its own container, but slotsPerContainer is ${spec.cluster.slotsPerContainer}`, {
      hint: 'use --slots-per-container 1 (the default) and give more containers per host instead',
    });
  }
  const nodes = await chooseNodes(slurm, spec.cluster.hosts);
  const slots = placeRanks(spec.cluster, spec.ranks, spec.placement);
  const jobId = newJobId();
  // Every node the site lists runs an agent (the plugin refuses the step on a node whose agent does not
  // take the job); RDMA of the nodes is not known from here, so auto plans handoff, as between hosts without it.
  const interHost = decideInterHost(
    spec.network,
    spec.interHost,
    nodes.map(() => ({ rdma: false })),
    nodes.map(() => ({ reachable: true })),
  );
  const paths = slots.map((from) =>
    slots.map((to): PathKind => (from.rank === to.rank ? 'self' : from.host === to.host ? 'shm' : planeBetween(interHost, from.host, to.host))),
  );
  const plan: JobPlan = {
    jobId,
    key: newJobKey(),
    network: spec.network,
    placement: spec.placement,
    launch: 'host',
    interHost,
    hosts: nodes.map((name, index) => ({ index, name })),
    ranks: slots.map((slot) => ({ ...slot, container: `${nodes[slot.host]}-c${slot.containerIndex}` })),
    paths,
  };
  hooks.onPlan(plan, []);
  const nodeDir = `${slurm.nodeRoot}/${jobId}`;
  const transported = formatPathTable(plan)
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .join(',');
  const mca = jobMcaSettings(plan.network, planOneSided(plan).components, spec.mca, [
    // co-located tasks have their own /dev/shm: Open MPI's shared memory goes to the job's node directory
    ['btl_vader_backing_directory', nodeDir],
    ['btl_vader_single_copy_mechanism', 'none'],
    ['osc_sm_backing_directory', nodeDir],
    ['osc_rdma_backing_directory', nodeDir],
  ]);
  const component = componentPathSetting(BTL_DIR);
  const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env, SLURM_CONF: slurm.conf, [component.name]: component.value };
  for (const line of DIRECT_LAUNCH_ENV) env[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  for (const [name, value] of mca) env[`OMPI_MCA_${name}`] = value;
  const argv = [
    ...srunPlacementArgs(
      jobId,
      plan.ranks.map((rank) => nodes[rank.host]!),
      spec.timeoutSeconds,
    ),
    `--freeflow-table=${transported}`,
    runtimeProgram('ffrun-fork-agent'),
    '--slurm',
    '--',
    spec.program.command,
    ...spec.program.args,
  ];
  const outcome = await hooks.progress.step(`running ${spec.ranks} ranks on ${nodes.join(', ')} of ${slurm.conf} through srun`, () =>
    runSrunChecked(argv, { prefix: [], env, timeoutMs: spec.timeoutSeconds * 1000, interrupt: hooks.interrupt, onLine: hooks.onLine }),
  );
  const totalMs = Date.now() - started;
  return { spec, plan, mpirun: outcome, outcomes: null, capabilities: [], timings: { setupMs: 0, probeMs: 0, teardownMs: 0, totalMs } };
}

/** The first `count` usable nodes (sinfo's order) that the site's agents file lists; too few is the cluster's fault. */
async function chooseNodes(slurm: ExistingSlurm, count: number): Promise<string[]> {
  const listed = await exec(SLURM_CLIENTS.sinfo, ['--noheader', '--Node', '--format=%N %T'], {
    env: { ...process.env, SLURM_CONF: slurm.conf },
    allowFailure: true,
    timeoutMs: 20_000,
  });
  const usable = [
    ...new Set(
      listed.stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter(([name, state]) => name !== undefined && state !== undefined && USABLE_STATES.test(state))
        .map(([name]) => name!),
    ),
  ];
  const withAgent = usable.filter((name) => slurm.agents.has(name));
  if (withAgent.length < count) {
    const lacking = usable.filter((name) => !slurm.agents.has(name));
    throw new FfError(
      'SLURM_MISCONFIGURED',
      `the job needs ${count} nodes that run a freeflow agent, but ${slurm.agentsFile} lists ${withAgent.length} of the usable nodes of ${slurm.conf}` +
        (lacking.length > 0 ? ` (no agent: ${lacking.join(', ')})` : ''),
      { hint: 'run ffagent on those nodes and list each as `<node> <address>:7470` in that file (docs/slurm.md), or lower --hosts' },
    );
  }
  return withAgent.slice(0, count);
}
