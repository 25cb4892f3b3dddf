import * as path from 'node:path';
import { z } from 'zod';
import { FfError } from '../../ts-runtime/src/errors';
import { PROFILE_NAMES, PROFILES, type Profile } from './profiles';

export const BENCH_USAGE = `ffrun bench [--quick | --full | --profile quick|full|shm|cross-host] [--repetitions N] [--out DIR] [--json]
  --quick, --full     the same as --profile quick / --profile full (default: quick)
  --profile shm       the freeflow BTL targets: freeflow vs vader, printed with their verdicts
  --profile cross-host  Fig. 7b: freeflow h and r vs overlay and host-mode TCP across hosts, default MTU, jumbo frames, jumbo host network under 1450-byte containers
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
    .pipe(z.number().int().min(1, { error: `--repetitions must be at least 1` }).max(MAX_REPETITIONS, { error: `--repetitions must be at most ${MAX_REPETITIONS}` }))
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
  const raw: { profile?: string; repetitions?: string; out?: string; json: boolean; backend?: string } = { json: false };
  const setProfile = (name: string, flag: string): void => {
    if (raw.profile !== undefined && raw.profile !== name) usage(`${flag} conflicts with the profile already chosen (${raw.profile}): give one profile`);
    raw.profile = name;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string => {
      const next = args[++i];
      if (next === undefined || next.startsWith('--')) usage(`${arg} needs a value`);
      return next;
    };
    if (arg === '--quick') setProfile('quick', arg);
    else if (arg === '--full') setProfile('full', arg);
    else if (arg === '--profile') setProfile(value(), arg);
    else if (arg === '--repetitions') raw.repetitions = value();
    else if (arg === '--out') raw.out = value();
    else if (arg === '--json') raw.json = true;
    else if (arg === '--backend') raw.backend = value();
    else usage(`unknown argument ${arg}`);
  }
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
