import { MODE_IDS, MODES, type ModeId } from './modes';

/** The ffbench_mpi subcommands ffbench runs (2 ranks), and NetPIPE. */
export const MPI_BENCHMARKS = ['latency', 'bw', 'bibw', 'mr', 'allreduce', 'alltoall'] as const;
export type MpiBenchmark = (typeof MPI_BENCHMARKS)[number];

/**
 * One mpirun of ffbench_mpi per mode and repetition. A benchmark may be split into passes because its
 * iteration count applies to every size: small messages need many iterations to be timed well, large
 * ones few to keep TCP modes short. `iterations: null` keeps ffbench_mpi's OSU counts per size.
 */
export interface MpiPass {
  readonly benchmark: MpiBenchmark;
  readonly sizes: readonly number[];
  readonly iterations: number | null;
  readonly warmup: number | null;
  /** Ranks of the run (default 2); more only in the one-namespace and same-host modes. */
  readonly ranks?: number;
}

/** NetPIPE (NPopenmpi) in the same run, for agreement with a standard tool. */
export interface NetpipePlan {
  readonly modes: readonly ModeId[];
  /** Largest message (NetPIPE picks its own sizes below it). */
  readonly upperBytes: number;
  /** NetPIPE's -n: fixed ping-pongs per size (it otherwise calibrates, which takes tens of seconds). */
  readonly repeats: number;
}

export const PROFILE_NAMES = ['quick', 'full', 'shm', 'cross-host', 'rma'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface Profile {
  readonly name: ProfileName;
  readonly description: string;
  readonly modes: readonly ModeId[];
  readonly passes: readonly MpiPass[];
  readonly netpipe: NetpipePlan | null;
  readonly repetitions: number;
  /** Whether the stdout summary leads with the shm targets rather than the headline table. */
  readonly targetsFirst: boolean;
  /** Also run the idle-peers core benchmark (idle-peers.ts), with as many rounds as repetitions. */
  readonly idlePeers?: boolean;
  /** Measure the core-to-core floor on the host before every run (shm-machine.ts). */
  readonly coreFloor?: boolean;
  /** Run the one-sided programs ffbench_rma and ffbench_shmwin_pingpong in every mode (rma-result.ts, rma.ts). */
  readonly rma?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** 1 B to `max`, every power of two. */
function powersOfTwo(max: number): number[] {
  const sizes: number[] = [];
  for (let size = 1; size <= max; size *= 2) sizes.push(size);
  return sizes;
}

const SMALL = [1, 8, 64, 512, 4 * KiB];
const CROSS_HOST_MODES = MODES.filter((mode) => mode.locality === 'cross-host').map((mode) => mode.id);
/** quick: everything at the default MTU except host-mode TCP (Fig. 7b's extra baseline is the cross-host profile's). */
const QUICK_MODES = MODES.filter((mode) => mode.mtu === 'default' && mode.id !== 'host-tcp').map((mode) => mode.id);
const LARGE = [32 * KiB, 256 * KiB, 1 * MiB, 4 * MiB];

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  quick: {
    name: 'quick',
    description: 'every mode at the default MTU but host-mode TCP, latency and bandwidth at 9 sizes from 1 B to 4 MiB, NetPIPE on freeflow; about a minute',
    modes: QUICK_MODES,
    passes: [
      { benchmark: 'latency', sizes: SMALL, iterations: 5000, warmup: 100 },
      // freeflow's rings are sparse files: the first lap through a ring faults its pages in, so large
      // messages need enough warm-up to leave that out of the timed loop.
      { benchmark: 'latency', sizes: LARGE, iterations: 100, warmup: 20 },
      { benchmark: 'bw', sizes: SMALL, iterations: 50, warmup: 5 },
      { benchmark: 'bw', sizes: LARGE, iterations: 4, warmup: 1 },
    ],
    netpipe: { modes: ['freeflow-same-host'], upperBytes: 4 * MiB, repeats: 100 },
    repetitions: 3,
    targetsFirst: false,
  },
  full: {
    name: 'full',
    description:
      "every mode (cross-host ones at both MTUs), latency, bandwidth and bidirectional bandwidth at every power of two from 1 B to 4 MiB with OSU's iteration counts, NetPIPE on freeflow and vader; about 20 minutes",
    modes: MODE_IDS,
    passes: [
      { benchmark: 'latency', sizes: powersOfTwo(4 * MiB), iterations: null, warmup: null },
      { benchmark: 'bw', sizes: powersOfTwo(4 * MiB), iterations: null, warmup: null },
      { benchmark: 'bibw', sizes: powersOfTwo(4 * MiB), iterations: null, warmup: null },
    ],
    netpipe: { modes: ['freeflow-same-host', 'vader'], upperBytes: 4 * MiB, repeats: 1000 },
    repetitions: 5,
    targetsFirst: false,
  },
  shm: {
    name: 'shm',
    description:
      'the freeflow BTL targets: freeflow between containers of one host against vader in one namespace: latency at small sizes, bandwidth at large ones, 8 B message rate over 1 and 2 pairs, allreduce and alltoall on 4 ranks, and 8 B latency with idle peers (core benchmark)',
    modes: ['vader', 'vader-2copy', 'freeflow-same-host'],
    passes: [
      { benchmark: 'latency', sizes: SMALL, iterations: 10000, warmup: 200 },
      { benchmark: 'bw', sizes: [64 * KiB, 1 * MiB, 4 * MiB], iterations: 20, warmup: 2 },
      // Issue 10: message rate (osu_mbw_mr: windows of 64) over 1 and 2 pairs, and collectives on 4 ranks
      // (4 containers of one host for freeflow, one namespace for vader). 2000 windows (about 15 ms): 200
      // (1.5 ms) measured start-up more than the steady rate (docs/btl.md, "Second pass").
      { benchmark: 'mr', sizes: [8], iterations: 2000, warmup: 200 },
      { benchmark: 'mr', sizes: [8], iterations: 2000, warmup: 200, ranks: 4 },
      { benchmark: 'allreduce', sizes: [8, 64 * KiB], iterations: 500, warmup: 50, ranks: 4 },
      { benchmark: 'alltoall', sizes: [8, 64 * KiB], iterations: 500, warmup: 50, ranks: 4 },
    ],
    netpipe: null,
    repetitions: 7,
    targetsFirst: true,
    idlePeers: true,
    coreFloor: true,
  },
  'cross-host': {
    name: 'cross-host',
    description:
      'Fig. 7b and the inter-host targets: overlay TCP, host-mode TCP and freeflow over h and r between two hosts, at the default MTU, at jumbo frames and with a jumbo host network under 1450-byte containers; latency at small and large sizes, bandwidth at large ones',
    modes: CROSS_HOST_MODES,
    passes: [
      { benchmark: 'latency', sizes: [1, 8, 64, 4 * KiB], iterations: 2000, warmup: 100 },
      { benchmark: 'latency', sizes: [64 * KiB, 1 * MiB, 4 * MiB], iterations: 50, warmup: 10 },
      { benchmark: 'bw', sizes: [64 * KiB, 1 * MiB, 4 * MiB], iterations: 4, warmup: 1 },
    ],
    netpipe: null,
    repetitions: 5,
    targetsFirst: true,
  },
  rma: {
    name: 'rma',
    description:
      "issue 9's one-sided targets: freeflow between 2 containers of one host against vader in one namespace, put, get and accumulate latency and bandwidth at 8 B, 64 KiB and 4 MiB (ffbench_rma) and the MPI_Win_allocate_shared load/store round trip (ffbench_shmwin_pingpong)",
    modes: ['vader', 'freeflow-same-host'],
    passes: [],
    netpipe: null,
    // about 5 s per repetition on an idle machine
    repetitions: 7,
    targetsFirst: true,
    rma: true,
  },
};
