import { FfError } from '../../ts-runtime/src/errors';
import type { PathKind } from '../../ts-runtime/src/orchestrator/path-kind';
import type { RankSlot } from '../../ts-runtime/src/orchestrator/placement';
import { placeRanks } from '../../ts-runtime/src/orchestrator/placement';
import type { JobSpec, NetworkMode } from '../../ts-runtime/src/spec/schema';

/**
 * The network modes ffbench compares. Each is: where the two ranks sit on the benchmark's cluster, and
 * what Open MPI is told. Every mode except the freeflow ones names exactly one transport besides `self`,
 * so Open MPI has no other way to connect the pair: its path is fixed by construction (a wrong set-up
 * fails instead of measuring something else). The freeflow modes keep tcp behind freeflow, as ffrun
 * does, so their path is checked from the BTL's reports after every run.
 */
export const MODE_IDS = [
  'vader',
  'vader-2copy',
  'tcp-loopback',
  'ucx-shm',
  'bridge-tcp',
  'freeflow-same-host',
  'overlay-tcp',
  'freeflow-cross-host',
] as const;
export type ModeId = (typeof MODE_IDS)[number];

/** Where the two ranks are: one container (one set of namespaces, "bare"), two containers on one host, two hosts. */
export type Locality = 'one-namespace' | 'same-host' | 'cross-host';
export const LOCALITY_LABEL: Readonly<Record<Locality, string>> = {
  'one-namespace': 'bare, one namespace',
  'same-host': 'containers, same host',
  'cross-host': 'containers, across hosts',
};

export interface BenchMode {
  readonly id: ModeId;
  readonly locality: Locality;
  /** Short name for legends and tables. */
  readonly name: string;
  /** What the mode is, in a sentence. */
  readonly description: string;
  /** ffrun's network: decides the plan and whether the freeflow BTL is loaded. */
  readonly network: NetworkMode;
  /** MCA parameters that replace or add to ffrun's own. */
  readonly mca: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  /** The path the pair must use for the numbers to mean what the mode's name says. */
  readonly expectedPath: Exclude<PathKind, 'self' | 'router' | 'handoff'>;
  /** The network link whose MTU applies (names as in the machine record), or null for shared memory. */
  readonly link: 'container lo' | 'container eth0' | 'container eth0 over host vxlan0 and ul0' | null;
}

const TCP_ONLY = { btl: 'self,tcp' };

export const MODES: readonly BenchMode[] = [
  {
    id: 'vader',
    locality: 'one-namespace',
    name: 'vader',
    description: "Open MPI's shared memory (vader) with its default single copy (CMA), both ranks in one container",
    network: 'overlay',
    mca: { btl: 'self,vader' },
    env: {},
    expectedPath: 'shm',
    link: null,
  },
  {
    id: 'vader-2copy',
    locality: 'one-namespace',
    name: 'vader 2-copy',
    description: 'vader without single copy (btl_vader_single_copy_mechanism none): the fair 2-copy baseline for freeflow',
    network: 'overlay',
    mca: { btl: 'self,vader', btl_vader_single_copy_mechanism: 'none' },
    env: {},
    expectedPath: 'shm',
    link: null,
  },
  {
    id: 'tcp-loopback',
    locality: 'one-namespace',
    name: 'TCP loopback',
    description: 'TCP over loopback in one network namespace (the paper\'s "host mode")',
    network: 'overlay',
    mca: { ...TCP_ONLY, btl_tcp_if_include: 'lo' },
    env: {},
    expectedPath: 'tcp',
    link: 'container lo',
  },
  {
    id: 'ucx-shm',
    locality: 'one-namespace',
    name: 'UCX shm',
    description: "UCX's shared memory transports (pml ucx, UCX_TLS=self,sm), both ranks in one container",
    network: 'overlay',
    // Debian's pml ucx accepts only verbs devices unless told otherwise (notes/openmpi-btl.md).
    mca: { pml: 'ucx', pml_ucx_tls: 'any', pml_ucx_devices: 'any', btl: 'self' },
    env: { UCX_TLS: 'self,sm' },
    expectedPath: 'shm',
    link: null,
  },
  {
    id: 'bridge-tcp',
    locality: 'same-host',
    name: 'bridge TCP',
    description: "TCP between two containers on one host over the host's bridge (the paper's overlay mode, Weave within a host)",
    network: 'overlay',
    mca: TCP_ONLY,
    env: {},
    expectedPath: 'tcp',
    link: 'container eth0',
  },
  {
    id: 'freeflow-same-host',
    locality: 'same-host',
    name: 'freeflow',
    description: 'the freeflow BTL between two containers on one host (self,vader,freeflow,tcp; shared memory through the host directory)',
    network: 'freeflow',
    mca: {},
    env: {},
    expectedPath: 'shm',
    link: null,
  },
  {
    id: 'overlay-tcp',
    locality: 'cross-host',
    name: 'overlay TCP',
    description: 'TCP between containers on two hosts over the VXLAN overlay (Weave across hosts)',
    network: 'overlay',
    mca: TCP_ONLY,
    env: {},
    expectedPath: 'tcp',
    link: 'container eth0 over host vxlan0 and ul0',
  },
  {
    id: 'freeflow-cross-host',
    locality: 'cross-host',
    name: 'freeflow x-host',
    description:
      'the freeflow BTL between containers on two hosts: without an inter-host router (none exists yet) its pairs go to tcp over the overlay, as the BTL reports',
    network: 'freeflow',
    mca: {},
    env: {},
    expectedPath: 'tcp',
    link: 'container eth0 over host vxlan0 and ul0',
  },
];

export function modeById(id: ModeId): BenchMode {
  const mode = MODES.find((candidate) => candidate.id === id);
  if (mode === undefined) throw new FfError('INTERNAL', `no benchmark mode ${id}`);
  return mode;
}

/** The benchmark cluster: 2 hosts x 2 containers, every mode placed on it. */
export const BENCH_CLUSTER = { hosts: 2, containersPerHost: 2 } as const;

/**
 * Two ranks placed as the locality says: slots 2 and `fill` put both into h0c0; `fill` with one slot
 * per container gives h0c0 and h0c1; `round-robin` gives h0c0 and h1c0. Rank i is pinned to core
 * i mod cpus by ffrun's rankfile in every case.
 */
const SHAPE_OF: Readonly<Record<Locality, Pick<JobSpec, 'placement'> & { slotsPerContainer: number }>> = {
  'one-namespace': { placement: 'fill', slotsPerContainer: 2 },
  'same-host': { placement: 'fill', slotsPerContainer: 1 },
  'cross-host': { placement: 'round-robin', slotsPerContainer: 1 },
};

export interface ModeJob {
  readonly spec: JobSpec;
  readonly slots: readonly RankSlot[];
}

/** The job spec of one run of `program` in `mode`, and where its two ranks go. */
export function jobForMode(mode: BenchMode, program: { command: string; args: readonly string[] }, timeoutSeconds: number): ModeJob {
  const shape = SHAPE_OF[mode.locality];
  const spec: JobSpec = {
    name: `bench-${mode.id}`,
    cluster: { ...BENCH_CLUSTER, slotsPerContainer: shape.slotsPerContainer },
    ranks: 2,
    placement: shape.placement,
    network: mode.network,
    // The job's default inter-host plane: the bench measures what users get, and checks the actual path.
    interHost: 'auto',
    program: { command: program.command, args: [...program.args] },
    env: { ...mode.env },
    mca: { ...mode.mca },
    timeoutSeconds,
  };
  return { spec, slots: placeRanks(spec.cluster, spec.ranks, spec.placement) };
}
