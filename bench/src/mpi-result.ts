import { z } from 'zod';
import { FfError } from '#runtime/errors';

/**
 * ffbench_mpi's JSON (schema `freeflow-bench-mpi` version 1, bench/mpi/README.md), validated where it
 * enters the harness. Fields added within version 1 pass through untouched (loose objects), so raw.json
 * keeps the program's whole document.
 */
const nullableNumber = z.number().nullable();

const sizeResultSchema = z.looseObject({
  size: z.number().int().nonnegative(),
  iterations: z.number().int().positive(),
  warmup: z.number().int().nonnegative(),
  elapsed_s: z.number().nonnegative(),
  bytes_moved: z.number().nonnegative(),
  latency_us: nullableNumber.optional(),
  bandwidth_mb_s: nullableNumber.optional(),
  bandwidth_gb_s: nullableNumber.optional(),
  message_rate_per_s: nullableNumber.optional(),
  window: z.number().int().positive().optional(),
  cpu_user_s: z.number().nonnegative(),
  cpu_sys_s: z.number().nonnegative(),
  cpu_ns_per_byte: nullableNumber,
  checked_bytes: z.number().nonnegative(),
  bad_bytes: z.number().nonnegative(),
});

export const mpiResultSchema = z.looseObject({
  schema: z.literal('freeflow-bench-mpi'),
  schema_version: z.literal(1),
  benchmark: z.enum(['latency', 'bw', 'bibw', 'mr', 'allreduce', 'alltoall']),
  metric: z.enum(['latency', 'bandwidth', 'message_rate', 'collective']),
  complete: z.boolean(),
  timing_meaningful: z.boolean(),
  job: z.looseObject({
    ranks: z.number().int().positive(),
    hostnames: z.array(z.string()),
    cpus: z.array(z.string()),
    mpi_library_version: z.string(),
  }),
  results: z.array(sizeResultSchema),
  validation: z.looseObject({
    enabled: z.boolean(),
    checked_bytes: z.number().nonnegative(),
    bad_bytes: z.number().nonnegative(),
    passed: z.boolean().nullable(),
  }),
});

export type MpiResult = z.output<typeof mpiResultSchema>;
export type MpiSizeResult = MpiResult['results'][number];

/** Parses the JSON document rank 0 wrote (`--json FILE`); throws BENCH_RESULT_INVALID naming what is wrong. */
export function parseMpiResult(text: string, source: string): MpiResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new FfError(
      'BENCH_RESULT_INVALID',
      `${source} wrote no valid JSON: ${(error as Error).message} (output starts ${JSON.stringify(text.slice(0, 120))})`,
      {
        hint: 'run the same ffbench_mpi command by hand; rebuild with npm run build if the program is older than the harness',
      },
    );
  }
  const parsed = mpiResultSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FfError('BENCH_RESULT_INVALID', `${source} wrote JSON that is not freeflow-bench-mpi version 1:\n${z.prettifyError(parsed.error)}`, {
      hint: 'ffbench_mpi and the harness disagree (bench/mpi/README.md documents the schema): rebuild with npm run build',
    });
  }
  return parsed.data;
}

/**
 * Whether each rank ran pinned to its own single core (the job record's affinity lists): otherwise
 * busy-polling ranks share a core and latencies are scheduler ticks, not the network.
 */
export function ranksOnDistinctCores(result: MpiResult): boolean {
  const cpus = result.job.cpus;
  // More ranks than the 2 cores (4-rank runs): ffrun leaves every rank on all cores (and sets
  // mpi_yield_when_idle), so the modes share the cores alike: every rank must have the same list.
  if (cpus.length > 2) return /^\d+-\d+$/.test(cpus[0] ?? '') && cpus.every((cpu) => cpu === cpus[0]);
  return cpus.every((cpu) => /^\d+$/.test(cpu)) && new Set(cpus).size === cpus.length;
}
