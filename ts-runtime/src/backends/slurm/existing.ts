import * as fs from 'node:fs';
import { FfError } from '../../errors';
import { exec } from '../../util/exec';
import { SLURM_CLIENTS } from './preflight';

/** `scontrol show config` lines "Name = value". */
export function parseSlurmConfig(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\w+)\s+=\s+(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, match[2]!.trim());
  }
  return settings;
}

/**
 * Checks an existing Slurm the way ffrun needs it: the controller answers, it offers PMIx, and its
 * plugstack loads the freeflow SPANK plugin. Each problem is its own typed error naming the fix.
 */
export async function checkExistingSlurm(conf: string): Promise<Map<string, string>> {
  const env = { ...process.env, SLURM_CONF: conf };
  const ping = await exec(SLURM_CLIENTS.scontrol, ['ping'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (ping.code !== 0 || !/is UP/.test(ping.stdout)) {
    throw new FfError(
      'SLURM_UNREACHABLE',
      `the Slurm controller of ${conf} does not answer: ${(ping.stdout + ping.stderr).trim().split('\n').slice(-1)[0] ?? ''}`,
      {
        hint: 'start slurmctld (systemctl start slurmctld) or fix SlurmctldHost in that slurm.conf; `scontrol ping` must say UP; omit --slurm-conf for an embedded Slurm',
      },
    );
  }
  const shown = await exec(SLURM_CLIENTS.scontrol, ['show', 'config'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (shown.code !== 0) {
    throw new FfError('SLURM_MISCONFIGURED', `\`scontrol show config\` failed for ${conf}: ${shown.stderr.trim()}`, { hint: 'fix the slurm.conf it names' });
  }
  const settings = parseSlurmConfig(shown.stdout);
  const mpiTypes = await exec(SLURM_CLIENTS.srun, ['--mpi=list'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (!/pmix/.test(mpiTypes.stdout + mpiTypes.stderr)) {
    throw new FfError('SLURM_MISCONFIGURED', `the Slurm of ${conf} offers no PMIx (srun --mpi=list shows no pmix)`, {
      hint: 'install slurm-wlm-basic-plugins (mpi_pmix.so); Open MPI 4.1 ranks are wired by srun --mpi=pmix only',
    });
  }
  const plugstack = settings.get('PlugStackConfig') ?? '/etc/slurm/plugstack.conf';
  let stack = '';
  try {
    stack = fs.readFileSync(plugstack, 'utf8');
  } catch {
    // a missing plugstack loads no plugin: reported below
  }
  if (!/^\s*(required|optional)\s+\S*spank_freeflow\.so/m.test(stack)) {
    throw new FfError('SPANK_PLUGIN_NOT_LOADED', `${plugstack} (PlugStackConfig of ${conf}) does not list the freeflow SPANK plugin`, {
      hint: 'add `required <repo>/build/lib/spank_freeflow.so` to it on the submit host and every node and restart slurmd (docs/slurm.md)',
    });
  }
  return settings;
}
