import * as path from 'node:path';
import type { JobPlan } from '../orchestrator/plan';
import { FfError } from '../errors';
import type { JobSpec, NetworkMode } from '../spec/schema';
import type { LaunchMode } from '../orchestrator/launch-mode';
import { IO_MCA_SETTINGS } from './io-selection';
import { planOneSided, type OneSidedPlan } from '../orchestrator/osc-selection';

/** Where Debian's Open MPI keeps its components; the freeflow BTL's directory goes in front of it. */
export const OMPI_COMPONENT_DIR = '/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3';
export const BTL_FILE_NAME = 'mca_btl_freeflow.so';

/** The BTL list of each network mode (ob1 is forced: the default PML here is UCX, which uses no BTL). */
export const BTLS_OF_NETWORK: Readonly<Record<NetworkMode, string>> = {
  overlay: 'self,vader,tcp',
  // freeflow's higher exclusivity keeps two-sided traffic on freeflow; its RDMA module (lower latency than
  // vader's) carries one-sided windows, within a container too. vader stays as the fallback for a rank whose
  // freeflow is disabled (btl_freeflow_rdma=0, no shared directory).
  freeflow: 'self,vader,freeflow,tcp',
};

/** The one environment setting that makes the stock mpirun find the freeflow BTL. */
export function componentPathSetting(btlDir: string): { name: string; value: string } {
  return { name: 'OMPI_MCA_mca_base_component_path', value: `${btlDir}:${OMPI_COMPONENT_DIR}` };
}

export interface InvocationInputs {
  readonly plan: JobPlan;
  readonly spec: Pick<JobSpec, 'program' | 'env' | 'mca' | 'cluster'>;
  /** CPUs of the machine; every simulated host shares them. */
  readonly cpus: number;
  readonly overlaySubnet: string;
  readonly rshAgent: string;
  /** build/bin/ffrun-fork-agent: orted runs every rank through it (pin; in host launches, enter the container). */
  readonly forkAgent: string;
  readonly containerMapFile: string;
  readonly btlDir: string;
  /** The name under which the rsh agent starts a host's own orted (the map's host lines), by host index. */
  readonly hostNames: readonly string[];
  /** Where the hostfile will be written (the job's state directory). */
  readonly stateDir: string;
}

export interface MpirunInvocation {
  readonly argv: readonly string[];
  /** Added to ffrun's own environment for mpirun. */
  readonly env: Readonly<Record<string, string>>;
  readonly files: ReadonlyArray<{ readonly path: string; readonly text: string }>;
  readonly oversubscribed: boolean;
  readonly launch: LaunchMode;
  /** The one-sided components selected and what serves which windows (docs/onesided.md). */
  readonly oneSided: OneSidedPlan;
}

/** Where a host launch puts shared-memory backing files: the host's shared directory as containers see it. */
export const CONTAINER_SHARED_DIR = '/run/freeflow';

/** The hostfile's nodes in order of first use, each with as many slots as the plan gives it. */
function nodesOf(sequence: readonly string[]): Array<{ name: string; slots: number }> {
  const nodes: Array<{ name: string; slots: number }> = [];
  for (const name of sequence) {
    const node = nodes.find((n) => n.name === name);
    if (node) node.slots++;
    else nodes.push({ name, slots: 1 });
  }
  return nodes;
}

/** What mpirun's `--map-by slot` (fill each node) or `--map-by node` (round robin) does with these nodes. */
export function simulateMapping(nodes: ReadonlyArray<{ name: string; slots: number }>, policy: 'slot' | 'node'): string[] {
  const left = nodes.map((n) => n.slots);
  const total = left.reduce((a, b) => a + b, 0);
  const order: string[] = [];
  if (policy === 'slot') {
    nodes.forEach((node) => order.push(...Array<string>(node.slots).fill(node.name)));
    return order;
  }
  while (order.length < total) {
    nodes.forEach((node, i) => {
      if (left[i]! > 0) {
        left[i]!--;
        order.push(node.name);
      }
    });
  }
  return order;
}

/**
 * The MCA parameters of a job, in mpirun's order, whoever starts its orteds (ffrun's local cluster, or the
 * MPI operator on Kubernetes: render/k8s): the BTLs of the network, ob1, the osc components, the launcher's
 * own (`launcherSpecific`), MPI-IO's, then the spec's `mca`. Open MPI refuses a parameter given twice, so
 * a spec's value replaces any other of the same name (e.g. `btl: self,tcp` to leave shared memory out).
 */
export function jobMcaSettings(
  network: NetworkMode,
  oscComponents: string,
  specMca: Readonly<Record<string, string>>,
  launcherSpecific: ReadonlyArray<readonly [string, string]>,
): Map<string, string> {
  return new Map<string, string>([
    ['pml', 'ob1'],
    ['btl', BTLS_OF_NETWORK[network]],
    // Debian's default (^ucx,pt2pt) leaves windows between containers nothing when osc rdma cannot serve them.
    ['osc', oscComponents],
    ...launcherSpecific,
    // MPI-IO's shared file pointers across containers and hosts (io-selection.ts)
    ...IO_MCA_SETTINGS,
    ...Object.entries(specMca),
  ]);
}

/**
 * The part of a job's mpirun command line that does not depend on who runs mpirun (ffrun here, the
 * launcher pod on Kubernetes): the mapping policy, no binding by mpirun (ffrun-fork-agent pins ranks; pods
 * of one node share its cores), room to spawn, tagged output, the MCA settings, the spec's environment
 * forwarded with -x (and the freeflow BTL's component path when `btlDir` is given), then the program.
 */
export function mpirunJobArgs(spec: Pick<JobSpec, 'env' | 'program'>, job: { mapBy: 'slot' | 'node'; mca: Map<string, string>; btlDir?: string }): string[] {
  const forwarded = Object.entries(spec.env).map(([name, value]) => `${name}=${value}`);
  if (job.btlDir !== undefined) {
    const setting = componentPathSetting(job.btlDir);
    forwarded.push(`${setting.name}=${setting.value}`);
  }
  return [
    '--map-by',
    job.mapBy,
    '--bind-to',
    'none',
    '--oversubscribe',
    '--tag-output',
    ...[...job.mca].flatMap(([name, value]) => ['--mca', name, value]),
    ...forwarded.flatMap((setting) => ['-x', setting]),
    spec.program.command,
    ...spec.program.args,
  ];
}

/**
 * Builds the stock mpirun command line for a plan.
 * Placement without a rankfile (a rankfile maps only the initial ranks: MPI_Comm_spawn then finds no
 * mapping): the hostfile lists the nodes (containers, or hosts in a host launch) in order of first use with
 * the plan's number of ranks each, and `--map-by slot` or `--map-by node` (whichever reproduces the plan)
 * puts every rank where planned; `--oversubscribe` leaves room for spawned processes beyond those slots.
 * mpirun binds nothing: ffrun-fork-agent pins rank i to core i mod cpus while ranks fit the cores (with one
 * orted per container, Open MPI's own binding would pin every container's first rank to core 0); with more
 * ranks than cores they stay unbound and need mpi_yield_when_idle.
 */
export function buildMpirunInvocation(inputs: InvocationInputs): MpirunInvocation {
  const { plan, spec, cpus } = inputs;
  const launch = plan.launch;
  const oversubscribed = plan.ranks.length > cpus;
  const hostfile = path.join(inputs.stateDir, 'hostfile');
  const nodeOfRank = plan.ranks.map((rank) => {
    if (launch === 'container') return rank.container;
    const host = inputs.hostNames[rank.host];
    if (host === undefined) throw new FfError('INTERNAL', `no host name for host ${rank.host} of rank ${rank.rank}`);
    return host;
  });
  const nodes = nodesOf(nodeOfRank);
  const mapBy = (['slot', 'node'] as const).find((policy) => simulateMapping(nodes, policy).join() === nodeOfRank.join());
  if (mapBy === undefined) {
    throw new FfError('INTERNAL', `no mpirun mapping reproduces the planned placement (${nodeOfRank.join(' ')})`, {
      hint: 'use placement fill or round-robin',
    });
  }
  const hostfileText = nodes.map((node) => `${node.name} slots=${node.slots}\n`).join('');

  // Words of orte_fork_agent (orted splits the value at spaces and appends the app's argv after "--").
  const forkAgent = [inputs.forkAgent];
  if (!oversubscribed) forkAgent.push('--cpus', plan.ranks.map((rank) => String(rank.rank % cpus)).join(','));
  if (launch === 'host') {
    forkAgent.push('--enter', inputs.rshAgent, inputs.containerMapFile, '--containers', plan.ranks.map((rank) => rank.container).join(','));
    // spawned processes go to the containers of the host they were mapped to, in turn
    const containersByHost = new Map<string, string[]>();
    plan.ranks.forEach((rank, i) => {
      const list = containersByHost.get(nodeOfRank[i]!) ?? [];
      if (!list.includes(rank.container)) list.push(rank.container);
      containersByHost.set(nodeOfRank[i]!, list);
    });
    for (const [host, containers] of containersByHost) forkAgent.push('--host', `${host}=${containers.join('+')}`);
  }
  forkAgent.push('--');

  const oneSided = planOneSided(plan);
  const mca = jobMcaSettings(plan.network, oneSided.components, spec.mca, [
    ['plm_rsh_agent', inputs.rshAgent],
    ['plm_rsh_no_tree_spawn', '1'],
    ['orte_fork_agent', forkAgent.join(' ')],
    ['oob_tcp_if_include', inputs.overlaySubnet],
    ['btl_tcp_if_include', inputs.overlaySubnet],
    ...(oversubscribed ? ([['mpi_yield_when_idle', '1']] as Array<[string, string]>) : []),
    ...(launch === 'host' ? hostLaunchMca() : []),
  ]);
  const env: Record<string, string> = { FFRUN_CONTAINER_MAP: inputs.containerMapFile };
  if (launch === 'host') {
    // PMIx 4 (Debian's) talks to its clients over TCP only, on loopback by default; the ranks are in their
    // containers' network namespaces, so each host's orted must listen on its overlay address (the bridge).
    // The rsh agent passes PMIX_* on to the orteds. Only the job's own containers reach that address.
    env.PMIX_MCA_ptl_tcp_remote_connections = '1';
    env.PMIX_MCA_ptl_tcp_if_include = inputs.overlaySubnet;
  }
  const freeflow = plan.network === 'freeflow';
  if (freeflow) {
    const setting = componentPathSetting(inputs.btlDir);
    env[setting.name] = setting.value;
  }
  const argv = [
    'mpirun',
    '--allow-run-as-root',
    '-np',
    String(plan.ranks.length),
    '--hostfile',
    hostfile,
    ...mpirunJobArgs(spec, { mapBy, mca, ...(freeflow ? { btlDir: inputs.btlDir } : {}) }),
  ];
  return { argv, env, files: [{ path: hostfile, text: hostfileText }], oversubscribed, launch, oneSided };
}

/**
 * Open MPI's shared memory in a host launch, where a node spans containers with their own /dev/shm, ipc and
 * pid namespaces: backing files go to the host's shared directory (the one place all of a host's
 * containers see), and vader copies through its segments only (its single-copy CMA needs one pid
 * namespace). coll sm is never selected by default (priority 0).
 */
function hostLaunchMca(): Array<[string, string]> {
  return [
    ['btl_vader_backing_directory', CONTAINER_SHARED_DIR],
    ['btl_vader_single_copy_mechanism', 'none'],
    ['osc_sm_backing_directory', CONTAINER_SHARED_DIR],
    // osc rdma shares its local peers' state through a segment too (its default directory, the creator's
    // own session directory, was not found from the other containers: "open(2) ... No such file")
    ['osc_rdma_backing_directory', CONTAINER_SHARED_DIR],
  ];
}
