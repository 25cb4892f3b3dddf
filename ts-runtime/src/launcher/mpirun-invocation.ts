import * as path from 'node:path';
import type { JobPlan } from '../orchestrator/plan';
import type { JobSpec, NetworkMode } from '../spec/schema';
import { planOneSided, type OneSidedPlan } from './osc-selection';

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
  readonly containerMapFile: string;
  readonly btlDir: string;
  /** Every container of the cluster, in order: the hostfile offers all their slots, so processes that
   * MPI_Comm_spawn starts find room beside the ranks the rankfile places. */
  readonly containers: readonly string[];
  /** Where the hostfile and rankfile will be written (the job's state directory). */
  readonly stateDir: string;
}

export interface MpirunInvocation {
  readonly argv: readonly string[];
  /** Added to ffrun's own environment for mpirun. */
  readonly env: Readonly<Record<string, string>>;
  readonly files: ReadonlyArray<{ readonly path: string; readonly text: string }>;
  readonly oversubscribed: boolean;
  /** The one-sided components selected and what serves which windows (docs/onesided.md). */
  readonly oneSided: OneSidedPlan;
}

/**
 * Builds the stock mpirun command line for a plan.
 * Every container looks like a separate node to Open MPI, so its default binding would pin every rank to
 * core 0. The rankfile pins rank i to core i mod cpus while ranks fit the cores, and lets every rank use
 * all cores (slot=0-(cpus-1), i.e. unbound) when there are more ranks than cores; those busy-polling ranks
 * then also need mpi_yield_when_idle. The rankfile also fixes each rank's container exactly as planned.
 */
export function buildMpirunInvocation(inputs: InvocationInputs): MpirunInvocation {
  const { plan, spec, cpus } = inputs;
  const oversubscribed = plan.ranks.length > cpus;
  const hostfile = path.join(inputs.stateDir, 'hostfile');
  const rankfile = path.join(inputs.stateDir, 'rankfile');
  const hostfileText = inputs.containers.map((name) => `${name} slots=${spec.cluster.slotsPerContainer}\n`).join('');
  const rankfileText = plan.ranks
    .map((rank) => `rank ${rank.rank}=${rank.container} slot=${oversubscribed ? `0-${cpus - 1}` : rank.rank % cpus}\n`)
    .join('');

  // Open MPI refuses a parameter given twice, so the spec's own values replace ffrun's of the same name
  // (e.g. `btl: self,tcp` to leave shared memory out, or `pml: ucx`).
  const oneSided = planOneSided(plan);
  const mca = new Map<string, string>([
    ['pml', 'ob1'],
    ['btl', BTLS_OF_NETWORK[plan.network]],
    // Debian's default (^ucx,pt2pt) leaves windows between containers nothing when osc rdma cannot serve them.
    ['osc', oneSided.components],
    ['plm_rsh_agent', inputs.rshAgent],
    ['plm_rsh_no_tree_spawn', '1'],
    ['oob_tcp_if_include', inputs.overlaySubnet],
    ['btl_tcp_if_include', inputs.overlaySubnet],
    ...(oversubscribed ? ([['mpi_yield_when_idle', '1']] as Array<[string, string]>) : []),
    ...Object.entries(spec.mca),
  ]);
  const env: Record<string, string> = { FFRUN_CONTAINER_MAP: inputs.containerMapFile };
  const forwarded = Object.entries(spec.env).map(([name, value]) => `${name}=${value}`);
  if (plan.network === 'freeflow') {
    const setting = componentPathSetting(inputs.btlDir);
    env[setting.name] = setting.value;
    forwarded.push(`${setting.name}=${setting.value}`);
  }
  const argv = [
    'mpirun',
    '--allow-run-as-root',
    '-np', String(plan.ranks.length),
    '--hostfile', hostfile,
    '--rankfile', rankfile,
    ...(oversubscribed ? ['--oversubscribe'] : []),
    '--tag-output',
    ...[...mca].flatMap(([name, value]) => ['--mca', name, value]),
    ...forwarded.flatMap((setting) => ['-x', setting]),
    spec.program.command,
    ...spec.program.args,
  ];
  return {
    argv,
    env,
    files: [
      { path: hostfile, text: hostfileText },
      { path: rankfile, text: rankfileText },
    ],
    oversubscribed,
    oneSided,
  };
}
