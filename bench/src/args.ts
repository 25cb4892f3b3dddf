import * as path from 'node:path';
import { z } from 'zod';
import { FfError } from '#runtime/errors';
import { parseOptions } from '#runtime/util/parse-options';
import { PROFILE_NAMES, PROFILES, type Profile } from './profiles';

export const BENCH_USAGE = `ffrun bench [--quick | --full | --profile quick|full|shm|cross-host|rma] [--repetitions N] [--out DIR] [--json]
  --quick, --full     the same as --profile quick / --profile full (default: quick)
  --profile shm       the freeflow BTL targets: freeflow vs vader, printed with their verdicts
  --profile cross-host  Fig. 7b: freeflow h and r vs overlay and host-mode TCP across hosts, default MTU, jumbo frames, jumbo host network under 1450-byte containers
  --profile rma       issue 9's one-sided targets: put/get/accumulate (ffbench_rma) and the shared-window round trip, freeflow vs vader
  --repetitions N     interleaved repetitions (default: the profile's; 1-100)
  --out DIR           where raw.json, summary.md and report.html go (new or empty; default reports/<time>/)
  --json              stdout holds only raw.json's document plus the report paths
  --backend slurm     start every run's ranks with srun of an embedded Slurm (docs/slurm.md); modes Slurm cannot launch are refused`;

export const MAX_REPETITIONS = 100;

export interface BenchArgs {
  readonly profile: Profile;
  readonly repetitions: number;
  /** Absolute, or null for the default reports/<time>/. */
  readonly out: string | null;
  readonly json: boolean;
  /** How the runs' ranks start: mpirun (local) or srun of an embedded Slurm per cluster (docs/slurm.md). */
  readonly backend: 'local' | 'slurm';
}

const argsSchema = z.object({
  profile: z.enum(PROFILE_NAMES, { error: (issue) => `--profile must be one of ${PROFILE_NAMES.join(', ')} (got ${JSON.stringify(issue.input)})` }),
  repetitions: z
    .string()
    .regex(/^\d+$/, { error: (issue) => `--repetitions must be a whole number (got ${JSON.stringify(issue.input)})` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, { error: `--repetitions must be at least 1` })
        .max(MAX_REPETITIONS, { error: `--repetitions must be at most ${MAX_REPETITIONS}` }),
    )
    .optional(),
  out: z.string().min(1, { error: '--out needs a directory' }).optional(),
  json: z.boolean(),
  backend: z.enum(['local', 'slurm'], { error: (issue) => `--backend must be local or slurm (got ${JSON.stringify(issue.input)})` }).default('local'),
});

function usage(problem: string): never {
  throw new FfError('USAGE', problem, { hint: `usage:\n${BENCH_USAGE}` });
}

/** Parses `ffrun bench`'s arguments; every problem is a USAGE error naming the flag. */
export function parseBenchArgs(args: readonly string[], cwd = process.cwd()): BenchArgs {
  const options = parseOptions(
    'ffrun bench',
    args,
    {
      quick: { type: 'boolean' },
      full: { type: 'boolean' },
      profile: { type: 'string' },
      repetitions: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      backend: { type: 'string' },
    },
    BENCH_USAGE,
  );
  const chosen = [options.quick === true ? 'quick' : undefined, options.full === true ? 'full' : undefined, options.profile].filter(
    (name) => name !== undefined,
  );
  if (new Set(chosen).size > 1) usage(`${chosen.join(' and ')} conflict: give one profile`);
  const raw = { profile: chosen[0], repetitions: options.repetitions, out: options.out, json: options.json ?? false, backend: options.backend };
  const parsed = argsSchema.safeParse({ ...raw, profile: raw.profile ?? 'quick' });
  if (!parsed.success) usage(parsed.error.issues.map((issue) => issue.message).join('; '));
  const profile = PROFILES[parsed.data.profile];
  return {
    profile,
    repetitions: parsed.data.repetitions ?? profile.repetitions,
    out: parsed.data.out === undefined ? null : path.resolve(cwd, parsed.data.out),
    json: parsed.data.json,
    backend: parsed.data.backend,
  };
}
