import type { ExecOptions, ExecResult } from '../../util/exec';

/** How ffrun talks to a Slurm: its slurm.conf and where its client commands run (they need the controller's network). */
export interface SlurmClient {
  /** The slurm.conf the client commands read (SLURM_CONF). */
  readonly conf: string;
  /** Runs a Slurm client command (sinfo, scontrol, srun) with SLURM_CONF set, where it reaches slurmctld. */
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

/** stdout of a client command that must succeed; throws its stderr otherwise. */
export async function querySlurm(client: SlurmClient, argv: readonly string[]): Promise<string> {
  const result = await client.run(argv, { allowFailure: true, timeoutMs: 15_000 });
  if (result.code !== 0) throw new Error(`${argv[0]} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}
