import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../../errors';
import { REPO_ROOT } from '../../util/repo-root';

/** Debian's paths of the programs the Slurm backend runs (packages slurmctld, slurmd, slurm-client, munge). */
export const SLURM_DAEMONS = {
  munged: '/usr/sbin/munged',
  slurmctld: '/usr/sbin/slurmctld',
  slurmd: '/usr/sbin/slurmd',
} as const;
export const SLURM_CLIENTS = { srun: '/usr/bin/srun', sinfo: '/usr/bin/sinfo', scontrol: '/usr/bin/scontrol' } as const;
const PMIX_PLUGIN = '/usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so';
const RUNC = '/usr/sbin/runc';

/** build/lib/spank_freeflow.so of this checkout (native/spank). */
export function spankPluginPath(): string {
  return path.join(REPO_ROOT, 'build', 'lib', 'spank_freeflow.so');
}

/** What every Slurm job of ffrun needs on this machine: the client programs, Slurm's PMIx plugin, runc, the SPANK plugin. */
export function assertSlurmClientInstalled(): void {
  const missing = [...Object.values(SLURM_CLIENTS), PMIX_PLUGIN].filter((file) => !fs.existsSync(file));
  if (missing.length > 0) {
    throw new FfError('SLURM_NOT_INSTALLED', `the Slurm backend needs Slurm's client programs and PMIx plugin; missing: ${missing.join(', ')}`, {
      hint: 'run scripts/setup.sh (it installs slurm-client, slurm-wlm-basic-plugins, slurmd, slurmctld and munge), or apt-get install those packages',
    });
  }
  assertRuncInstalled();
  if (!fs.existsSync(spankPluginPath())) {
    throw new FfError('SPANK_PLUGIN_NOT_BUILT', `the freeflow SPANK plugin ${spankPluginPath()} is missing`, {
      hint: 'install libslurm-dev (scripts/setup.sh does) and rebuild with scripts/setup.sh; it is built from native/spank when slurm/spank.h exists',
    });
  }
}

/** The daemons of an embedded Slurm. */
export function assertSlurmDaemonsInstalled(): void {
  const missing = Object.values(SLURM_DAEMONS).filter((file) => !fs.existsSync(file));
  if (missing.length > 0) {
    throw new FfError('SLURM_NOT_INSTALLED', `an embedded Slurm needs ${missing.join(', ')}`, {
      hint: 'run scripts/setup.sh (it installs slurmctld, slurmd and munge), or give an existing cluster with --slurm-conf',
    });
  }
}

export function assertRuncInstalled(runc = RUNC): void {
  if (!fs.existsSync(runc)) {
    throw new FfError('RUNC_MISSING', `${runc} is missing: every rank runs in a runc container, under Slurm too`, {
      hint: 'apt-get install runc (scripts/setup.sh does)',
    });
  }
}
