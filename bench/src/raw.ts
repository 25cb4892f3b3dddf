import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FfError } from '#runtime/errors';
import { MODE_IDS } from './modes';
import { idlePeersSchema } from './idle-peers';
import { shmMachineSchema } from './shm-machine';
import { mpiResultSchema } from './mpi-result';
import { rmaResultSchema } from './rma-result';
import { MPI_BENCHMARKS, PROFILE_NAMES } from './profiles';

/**
 * raw.json: every measurement of one ffbench run with the machine, the modes and the paths actually
 * used. The Markdown and HTML reports are computed from it alone, so a recorded raw.json (such as
 * bench/fixtures/) reproduces them. Schema `freeflow-bench-report` version 2 (version 2: modes name their
 * inter-host plane and MTU, one cluster per MTU, modes the launcher refused).
 */
export const RAW_SCHEMA = 'freeflow-bench-report';
export const RAW_SCHEMA_VERSION = 2;

export const MTU_CLASSES = ['default', 'jumbo', 'jumbo-host'] as const;

const count = z.number().int().nonnegative();
const loadTriple = z.tuple([z.number(), z.number(), z.number()]);

export const machineSchema = z.object({
  hostname: z.string(),
  cpuModel: z.string(),
  cpus: count,
  memoryBytes: count,
  kernel: z.string(),
  os: z.string(),
  node: z.string(),
  openMpi: z.string(),
  ucx: z.string(),
  netpipe: z.string().nullable(),
  /** Per cluster MTU: the MTU of every link, by name, in container h0c0 and in host 0's namespace. */
  mtus: z.partialRecord(z.enum(MTU_CLASSES), z.object({ container: z.record(z.string(), count), host: z.record(z.string(), count) })),
  load: z.object({
    /** os.loadavg() before the cluster was built and after it was removed. */
    before: loadTriple,
    after: loadTriple,
    high: z.boolean(),
    rule: z.string(),
  }),
  freeflow: z.object({ commit: z.string().nullable(), ringSizeBytes: count.nullable() }),
  /** Profile shm: the CPU's features and caches and the BTL's choices (shm-machine.ts); absent in older reports. */
  shm: shmMachineSchema.nullable().optional(),
});
export type MachineRecord = z.output<typeof machineSchema>;

const passSchema = z.object({
  benchmark: z.enum(MPI_BENCHMARKS),
  sizes: z.array(count),
  iterations: count.nullable(),
  warmup: count.nullable(),
  ranks: count.optional(),
});

const rankPlaceSchema = z.object({ rank: count, host: count, container: z.string() });

export const modeRecordSchema = z.object({
  id: z.enum(MODE_IDS),
  locality: z.enum(['one-namespace', 'same-host', 'cross-host']),
  name: z.string(),
  description: z.string(),
  network: z.enum(['overlay', 'freeflow']),
  mca: z.record(z.string(), z.string()),
  env: z.record(z.string(), z.string()),
  /** The spec's interHost, always explicit. */
  interHost: z.string(),
  mtu: z.enum(MTU_CLASSES),
  hostNetwork: z.boolean(),
  expectedPath: z.enum(['shm', 'tcp', 'handoff', 'router']),
  link: z.string().nullable(),
  placement: z.array(rankPlaceSchema),
  /** Why the mode was not run (the launcher refused its spec), or null. */
  refused: z.string().nullable(),
});
export type ModeRecord = z.output<typeof modeRecordSchema>;

export const netpipePointSchema = z.object({ size: count, latencyUs: z.number(), bandwidthMBs: z.number() });

export const RUN_STATUSES = ['ok', 'invalid', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const runRecordSchema = z.object({
  index: count,
  repetition: z.number().int().positive(),
  mode: z.enum(MODE_IDS),
  work: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('mpi'), pass: count }),
    z.object({ kind: z.literal('netpipe') }),
    z.object({ kind: z.literal('rma') }),
    z.object({ kind: z.literal('shmwin') }),
  ]),
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  /** The 1-minute load average when the run started. */
  load1: z.number(),
  exitCode: z.number().int().nullable(),
  /** Path matrices (docs/path-table.md characters); actual from the BTL reports, null without the BTL. */
  paths: z.object({
    planned: z.array(z.string()),
    actual: z.array(z.string()).nullable(),
    declined: z.array(z.object({ from: count, to: count, reason: z.string() })),
  }),
  /** ok; invalid: measured, but not on the mode's path (or not pinned); failed: no measurement. */
  status: z.enum(RUN_STATUSES),
  problem: z.string().nullable(),
  /** The last lines of mpirun's output when the run failed. */
  output: z.array(z.string()),
  mpi: mpiResultSchema.nullable(),
  netpipe: z.array(netpipePointSchema).nullable(),
  /** Profile rma: ffbench_rma's or ffbench_shmwin_pingpong's parsed output (rma-result.ts); absent otherwise. */
  rma: rmaResultSchema.nullable().optional(),
  /** Profile shm: the core-to-core floor (ns) measured just before the run (shm-machine.ts). */
  floorNs: z.number().positive().nullable().optional(),
  /** Profile shm: the floor measured just after the run; a placement other than before's means it moved during the run. */
  floorAfterNs: z.number().positive().nullable().optional(),
  /** Profile shm: earlier attempts of this run discarded because the placement moved during them (the floors of each). */
  placementReruns: z.array(z.object({ floorNs: z.number().positive().nullable(), floorAfterNs: z.number().positive().nullable() })).optional(),
});
export type RunRecord = z.output<typeof runRecordSchema>;

export const rawReportSchema = z.object({
  schema: z.literal(RAW_SCHEMA),
  schema_version: z.literal(RAW_SCHEMA_VERSION),
  profile: z.object({
    name: z.enum(PROFILE_NAMES),
    description: z.string(),
    repetitions: z.number().int().positive(),
    modes: z.array(z.enum(MODE_IDS)),
    passes: z.array(passSchema),
    netpipe: z.object({ modes: z.array(z.enum(MODE_IDS)), upperBytes: count, repeats: count }).nullable(),
    /** Profile rma: the one-sided programs ran in every mode and repetition (absent in older reports). */
    rma: z.boolean().optional(),
  }),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number().nonnegative(),
  machine: machineSchema,
  /** One cluster per MTU the modes needed, all up for the whole run. */
  clusters: z.array(
    z.object({
      mtu: z.enum(MTU_CLASSES),
      jobId: z.string(),
      hosts: count,
      containersPerHost: count,
      hostNetworkContainersPerHost: count,
      containerMtu: count,
      underlayMtu: count,
      setupMs: z.number(),
      probeMs: z.number(),
      teardownMs: z.number(),
    }),
  ),
  modes: z.array(modeRecordSchema),
  runs: z.array(runRecordSchema),
  /** The idle-peers core benchmark (profile shm), run on the host after the MPI runs; absent otherwise. */
  idlePeers: idlePeersSchema.nullable().optional(),
});
export type RawReport = z.output<typeof rawReportSchema>;

/** Reads and validates a raw.json (a fixture, or an earlier run's). */
export function loadRawReport(file: string): RawReport {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new FfError('BENCH_RESULT_INVALID', `cannot read ${file} as JSON: ${(error as Error).message}`, {
      hint: 'give the raw.json that ffbench wrote into its report directory',
    });
  }
  const parsed = rawReportSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FfError(
      'BENCH_RESULT_INVALID',
      `${file} is not an ffbench ${RAW_SCHEMA} version ${RAW_SCHEMA_VERSION} document:\n${z.prettifyError(parsed.error)}`,
      {
        hint: 'it was written by another version of ffbench, or edited: run the benchmark again',
      },
    );
  }
  return parsed.data;
}
