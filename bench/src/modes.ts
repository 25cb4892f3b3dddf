import { FfError, isFfError } from '#runtime/errors';
import type { PathKind } from '#runtime/orchestrator/path-kind';
import type { RankSlot } from '#runtime/orchestrator/placement';
import { placeRanks } from '#runtime/orchestrator/placement';
import type { JobSpec, NetworkMode } from '#runtime/spec/schema';
import { validateJobSpec } from '#runtime/spec/validate';

/**
 * The network modes ffbench compares. Each is: where the two ranks sit on the benchmark's cluster, and
 * what Open MPI is told. Every mode except the freeflow ones names exactly one transport besides `self`,
 * so Open MPI has no other way to connect the pair: its path is fixed by construction (a wrong set-up
 * fails instead of measuring something else). The freeflow modes keep tcp behind freeflow, as ffrun
 * does, so their path (shm, or the inter-host plane h or r they ask for) is checked from the BTL's
 * reports after every run. Cross-host modes exist at the default MTU, at jumbo frames, and on a jumbo-frame
 * host network under containers kept at the default MTU.
 */
export const MODE_IDS = [
  'vader',
  'vader-2copy',
  'tcp-loopback',
  'ucx-shm',
  'bridge-tcp',
  'freeflow-same-host',
  'overlay-tcp',
  'host-tcp',
  'freeflow-handoff',
  'freeflow-router',
  // The cross-host modes again on a jumbo-frame cluster (jumboVariant below).
  'overlay-tcp-jumbo',
  'host-tcp-jumbo',
  'freeflow-handoff-jumbo',
  'freeflow-router-jumbo',
  // And on a jumbo-frame host network under containers kept at 1450 (jumboHostVariant below).
  'overlay-tcp-jumbo-host',
  'host-tcp-jumbo-host',
  'freeflow-handoff-jumbo-host',
  'freeflow-router-jumbo-host',
] as const;
export type ModeId = (typeof MODE_IDS)[number];

/** Where the two ranks are: one container (one set of namespaces, "bare"), two containers on one host, two hosts. */
export type Locality = 'one-namespace' | 'same-host' | 'cross-host';
export const LOCALITY_LABEL: Readonly<Record<Locality, string>> = {
  'one-namespace': 'bare, one namespace',
  'same-host': 'containers, same host',
  'cross-host': 'containers, across hosts',
};

/**
 * The MTUs of the cluster a mode runs on: the cluster default (containers 1450, underlay 1500), jumbo
 * frames (8950, underlay 9000), or jumbo-host: a 9000-byte host network under containers kept at 1450,
 * what Docker's overlay driver does whatever the underlay (the host network is faster than the overlay
 * there). One cluster per class, all up for the whole run, so runs interleave.
 */
export const JUMBO_CONTAINER_MTU = 8950;
export const JUMBO_UNDERLAY_MTU = 9000;
export const DEFAULT_CONTAINER_MTU = 1450;
export type MtuClass = 'default' | 'jumbo' | 'jumbo-host';

/** The inter-host plane each mode asks for explicitly (the spec's `interHost`), so that a mode means the
 * same whatever ffrun's default `auto` picks. A string: the launcher's validation decides what it accepts. */
export type RequestedInterHost = 'tcp' | 'handoff' | 'router';

export interface BenchMode {
  readonly id: ModeId;
  readonly locality: Locality;
  /** Short name for legends and tables. */
  readonly name: string;
  /** What the mode is, in a sentence. */
  readonly description: string;
  /** ffrun's network: decides the plan and whether the freeflow BTL is loaded. */
  readonly network: NetworkMode;
  readonly interHost: RequestedInterHost;
  readonly mtu: MtuClass;
  /** The ranks run in their hosts' network namespaces (host-network containers), not in containers' own. */
  readonly hostNetwork: boolean;
  /** MCA parameters that replace or add to ffrun's own. */
  readonly mca: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  /** The path the pair must use for the numbers to mean what the mode's name says. */
  readonly expectedPath: Exclude<PathKind, 'self'>;
  /**
   * Run only if the launcher accepts the mode's spec (a plane still being built): when its validation
   * refuses it, the mode is reported as not run with the launcher's own message instead of failing.
   */
  readonly optional: boolean;
  /** The network link whose MTU applies (names as in the machine record), or null for shared memory. */
  readonly link: 'container lo' | 'container eth0' | 'container eth0 over host vxlan0 and ul0' | 'host ul0' | null;
}

const TCP_ONLY = { btl: 'self,tcp' };
/** The cluster's underlay subnet (cluster/layout.ts): host-mode ranks talk over it. */
const UNDERLAY_SUBNET = '10.200.0.0/24';
const SAME_HOST = { interHost: 'tcp', mtu: 'default', hostNetwork: false, optional: false } as const;

const BASE_MODES: readonly BenchMode[] = [
  {
    id: 'vader',
    locality: 'one-namespace',
    name: 'vader',
    description: "Open MPI's shared memory (vader) with its default single copy (CMA), both ranks in one container",
    network: 'overlay',
    ...SAME_HOST,
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
    ...SAME_HOST,
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
    ...SAME_HOST,
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
    ...SAME_HOST,
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
    ...SAME_HOST,
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
    ...SAME_HOST,
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
    interHost: 'tcp',
    mtu: 'default',
    hostNetwork: false,
    optional: false,
    mca: TCP_ONLY,
    env: {},
    expectedPath: 'tcp',
    link: 'container eth0 over host vxlan0 and ul0',
  },
  {
    id: 'host-tcp',
    locality: 'cross-host',
    name: 'host-mode TCP',
    description: "TCP between ranks in the two hosts' own network namespaces over the underlay (host networking, as Docker's and Kubernetes' host mode)",
    network: 'overlay',
    interHost: 'tcp',
    mtu: 'default',
    hostNetwork: true,
    optional: false,
    mca: { ...TCP_ONLY, btl_tcp_if_include: UNDERLAY_SUBNET },
    env: {},
    expectedPath: 'tcp',
    link: 'host ul0',
  },
  {
    id: 'freeflow-handoff',
    locality: 'cross-host',
    name: 'freeflow h',
    description:
      "the freeflow BTL between containers on two hosts over the `h` plane: a TCP socket across the underlay that the hosts' ffagents connect and hand to the ranks",
    network: 'freeflow',
    interHost: 'handoff',
    mtu: 'default',
    hostNetwork: false,
    optional: false,
    mca: {},
    env: {},
    expectedPath: 'handoff',
    link: 'host ul0',
  },
  {
    id: 'freeflow-router',
    locality: 'cross-host',
    name: 'freeflow r',
    description:
      "the freeflow BTL between containers on two hosts over the `r` plane: the hosts' routers carry the data over UCX (tcp transport) across the underlay",
    network: 'freeflow',
    interHost: 'router',
    mtu: 'default',
    hostNetwork: false,
    optional: true,
    mca: {},
    env: {},
    expectedPath: 'router',
    link: 'host ul0',
  },
];

/** The same mode on the jumbo-frame cluster (container MTU 8950, underlay 9000). */
function jumboVariant(mode: BenchMode): BenchMode {
  return {
    ...mode,
    id: `${mode.id}-jumbo` as ModeId,
    name: `${mode.name} jumbo`,
    description: `${mode.description}; jumbo frames (underlay MTU 9000, overlay 8950)`,
    mtu: 'jumbo',
  };
}

/** The same mode on a 9000-byte host network with containers at 1450. */
function jumboHostVariant(mode: BenchMode): BenchMode {
  return {
    ...mode,
    id: `${mode.id}-jumbo-host` as ModeId,
    name: `${mode.name} (underlay ${JUMBO_UNDERLAY_MTU}, overlay ${DEFAULT_CONTAINER_MTU})`,
    description: `${mode.description}; jumbo-frame host network under containers kept at the default MTU (underlay ${JUMBO_UNDERLAY_MTU}, overlay ${DEFAULT_CONTAINER_MTU}, Docker's overlay default)`,
    mtu: 'jumbo-host',
  };
}

const CROSS_HOST_BASE = BASE_MODES.filter((mode) => mode.locality === 'cross-host');
export const MODES: readonly BenchMode[] = [...BASE_MODES, ...CROSS_HOST_BASE.map(jumboVariant), ...CROSS_HOST_BASE.map(jumboHostVariant)];

export function modeById(id: ModeId): BenchMode {
  const mode = MODES.find((candidate) => candidate.id === id);
  if (mode === undefined) throw new FfError('INTERNAL', `no benchmark mode ${id}`);
  return mode;
}

/**
 * The benchmark cluster: 2 hosts x 2 containers, and one host-network container per host when a mode has
 * host-mode ranks, every mode placed on it; one such cluster per container MTU the profile's modes need.
 */
export const BENCH_CLUSTER = { hosts: 2, containersPerHost: 2, hostNetworkContainersPerHost: 1 } as const;

/**
 * Runs with more ranks than the 2-rank default (issue 10: message rate over 2 pairs, collectives on 4
 * ranks): the same-host modes then need a container per rank on host 0, so a profile with such runs gets
 * that many containers per host.
 */
export interface RunShape {
  readonly ranks: number;
  readonly containersPerHost: number;
}
export const TWO_RANKS: RunShape = { ranks: 2, containersPerHost: BENCH_CLUSTER.containersPerHost };

/** What the cluster of an MTU class is built with (nothing: the launcher's defaults). */
export function clusterMtusOf(mtu: MtuClass): { containerMtu?: number; underlayMtu?: number } {
  if (mtu === 'jumbo') return { containerMtu: JUMBO_CONTAINER_MTU };
  if (mtu === 'jumbo-host') return { containerMtu: DEFAULT_CONTAINER_MTU, underlayMtu: JUMBO_UNDERLAY_MTU };
  return {};
}

/**
 * Two ranks placed as the locality says: slots 2 and `fill` put both into h0c0; `fill` with one slot
 * per container gives h0c0 and h0c1; `round-robin` gives h0c0 and h1c0. Rank i is pinned to core
 * i mod cpus by ffrun's rankfile in every case.
 */
const SHAPE_OF: Readonly<Record<Locality, { placement: 'fill' | 'round-robin'; slotsPerContainer: number }>> = {
  'one-namespace': { placement: 'fill', slotsPerContainer: 2 },
  'same-host': { placement: 'fill', slotsPerContainer: 1 },
  'cross-host': { placement: 'round-robin', slotsPerContainer: 1 },
};

export interface ModeJob {
  readonly spec: JobSpec;
  readonly slots: readonly RankSlot[];
}

/**
 * The job spec of one run of `program` in `mode`, validated by the launcher's own spec validation (so a
 * plane the launcher does not accept is refused here, with its SPEC_INVALID error), and where its two
 * ranks go: host-mode ranks go to the hosts' host-network containers, which follow the others.
 */
export function jobForMode(mode: BenchMode, program: { command: string; args: readonly string[] }, timeoutSeconds: number, run: RunShape = TWO_RANKS): ModeJob {
  const shape = SHAPE_OF[mode.locality];
  // More ranks than cores: ffrun then leaves ranks unbound and sets mpi_yield_when_idle, in every mode alike.
  if (run.ranks > 2 && mode.locality === 'cross-host') throw new FfError('INTERNAL', `mode ${mode.id} runs 2 ranks only, not ${run.ranks}`);
  const spec = validateJobSpec(
    {
      name: `bench-${mode.id}`,
      cluster: {
        hosts: BENCH_CLUSTER.hosts,
        containersPerHost: run.containersPerHost,
        slotsPerContainer: mode.locality === 'one-namespace' ? run.ranks : shape.slotsPerContainer,
      },
      ranks: run.ranks,
      placement: shape.placement,
      network: mode.network,
      interHost: mode.interHost,
      program: { command: program.command, args: [...program.args] },
      env: { ...mode.env },
      mca: { ...mode.mca },
      timeoutSeconds,
    },
    { kind: 'file', path: `ffbench mode ${mode.id}` },
  );
  const placed = placeRanks(spec.cluster, spec.ranks, spec.placement);
  const slots = mode.hostNetwork ? placed.map((slot) => ({ ...slot, containerIndex: run.containersPerHost })) : placed;
  return { spec, slots };
}

/**
 * null when the launcher accepts the mode, else why not (the launcher's own validation message). Only
 * optional modes may be refused: for any other a refusal is a bug in this file, and is thrown.
 */
export function modeRefusal(mode: BenchMode): string | null {
  try {
    jobForMode(mode, { command: 'ffbench_mpi', args: [] }, 60);
    return null;
  } catch (error) {
    if (mode.optional && isFfError(error) && error.code === 'SPEC_INVALID') return `the launcher refuses it: ${error.notes.join('; ')}`;
    throw error;
  }
}
