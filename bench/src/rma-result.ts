import * as path from 'node:path';
import { z } from 'zod';
import { FfError } from '#runtime/errors';
import { REPO_ROOT } from '#runtime/util/repo-root';

/**
 * Profile rma's programs (issue 9's one-sided targets) and the parsing of their output. ffbench_rma
 * (bench/onesided/rma_bench.c): put, get and MPI_Accumulate from rank 0 into rank 1's MPI_Win_create
 * window, latency (one operation + flush) and bandwidth (32 operations per flush) at 8 B, 64 KiB and
 * 4 MiB; ffbench_shmwin_pingpong (bench/nodeshare/shmwin_pingpong.c): the MPI_Win_allocate_shared
 * load/store round trip. Both print text lines, parsed here (the former bench/onesided/run.sh parsed them alike).
 */
export const FFBENCH_RMA = path.join(REPO_ROOT, 'build', 'bin', 'ffbench_rma');
export const FFBENCH_SHMWIN = path.join(REPO_ROOT, 'build', 'bin', 'ffbench_shmwin_pingpong');
/** One round of 20000 round trips: the profile's repetitions are the rounds (interleaved with vader's). */
export const SHMWIN_ARGS = ['--rounds', '1', '--iterations', '20000'] as const;

/**
 * The one-sided programs run with osc limited to sm (MPI_Win_allocate_shared) and rdma in both modes: a
 * window osc rdma cannot serve then fails the run instead of falling back to osc pt2pt unnoticed (which
 * is what vader did under a host launch, docs/onesided.md), so both modes measure osc rdma over their BTL.
 */
export const ONE_SIDED_MCA: Readonly<Record<string, string>> = { osc: 'sm,rdma' };

export const RMA_OPS = ['put', 'get', 'acc'] as const;
export const RMA_SIZES = [8, 64 * 1024, 4 * 1024 * 1024] as const;
export const RMA_KINDS = ['latency', 'bandwidth'] as const;

const rmaLineSchema = z.object({
  op: z.enum(RMA_OPS),
  bytes: z.number().int().positive(),
  kind: z.enum(RMA_KINDS),
  value: z.number().nonnegative(),
  unit: z.enum(['us', 'MB/s']),
});

/** A run's parsed output in raw.json (runRecordSchema's `rma`). */
export const rmaResultSchema = z.discriminatedUnion('program', [
  z.object({ program: z.literal('ffbench_rma'), results: z.array(rmaLineSchema) }),
  z.object({ program: z.literal('ffbench_shmwin_pingpong'), roundTripNs: z.number().positive() }),
]);
export type RmaResult = z.output<typeof rmaResultSchema>;

/** run.sh's `sed 's/.*rma op=$op bytes=$bytes mode=$mode value=\([0-9.]*\) .*'`: the first such line counts. */
const RMA_LINE = /rma op=([a-z]+) bytes=(\d+) mode=([a-z]+) value=([0-9.]*) unit=(\S+)/;
/** run.sh's `sed 's/.*median of 1 round medians \([0-9]*\) ns.*'`. */
const SHMWIN_LINE = /median of 1 round medians ([0-9]+) ns/;

const invalid = (message: string, hint: string): FfError => new FfError('BENCH_RESULT_INVALID', message, { hint });

/**
 * ffbench_rma's output lines: every operation, size and kind once (a missing or garbled line throws
 * BENCH_RESULT_INVALID naming it, so a broken program or parser fails the run instead of reporting a gap).
 */
export function parseRmaOutput(lines: readonly string[]): RmaResult {
  const results: Array<z.output<typeof rmaLineSchema>> = [];
  for (const line of lines) {
    const match = RMA_LINE.exec(line);
    if (match === null) continue;
    const [, op, bytes, kind, value, unit] = match;
    const parsed = rmaLineSchema.safeParse({ op, bytes: Number(bytes), kind, value: Number(value), unit });
    if (!parsed.success || value === '' || !Number.isFinite(parsed.data.value)) {
      throw invalid(
        `ffbench_rma printed a line the harness does not know: ${JSON.stringify(line)}`,
        'ffbench_rma and the harness disagree: rebuild with npm run build',
      );
    }
    if (results.some((r) => r.op === parsed.data.op && r.bytes === parsed.data.bytes && r.kind === parsed.data.kind)) continue;
    results.push(parsed.data);
  }
  const missing = RMA_OPS.flatMap((op) =>
    RMA_SIZES.flatMap((bytes) =>
      RMA_KINDS.filter((kind) => !results.some((r) => r.op === op && r.bytes === bytes && r.kind === kind)).map((kind) => `${op} ${bytes} B ${kind}`),
    ),
  );
  if (missing.length > 0) {
    throw invalid(`ffbench_rma printed no result for ${missing.join(', ')}`, `see its output; run ${FFBENCH_RMA} under mpirun -n 2 by hand`);
  }
  return { program: 'ffbench_rma', results };
}

/** ffbench_shmwin_pingpong's summary line (one round: SHMWIN_ARGS). */
export function parseShmwinOutput(lines: readonly string[]): RmaResult {
  for (const line of lines) {
    const match = SHMWIN_LINE.exec(line);
    if (match !== null && Number(match[1]) > 0) return { program: 'ffbench_shmwin_pingpong', roundTripNs: Number(match[1]) };
  }
  throw invalid(
    'ffbench_shmwin_pingpong printed no "median of 1 round medians N ns" line',
    `see its output; run ${FFBENCH_SHMWIN} ${SHMWIN_ARGS.join(' ')} by hand`,
  );
}
