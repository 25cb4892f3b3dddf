import * as fs from 'node:fs';
import * as path from 'node:path';
import { exec, type ExecResult } from '../util/exec';
import type { ContainerUser } from './oci';

/**
 * The job-wide scratch volume (`ffrun --scratch`): one directory every container of the job sees at
 * SCRATCH_PATH, read-write, with the same files on every host, as a cluster's shared file system would
 * give them (on a real cluster it is the user's shared file system; the hosts here are simulated on one
 * machine, so it is one tmpfs). It lives below the job's state directory (0700 root, so no other job or
 * user can reach it), is owned by the job's user, and goes with the job: teardown unmounts everything
 * below the state directory, also when the reaper finishes the teardown of a SIGKILLed ffrun.
 */
export const SCRATCH_PATH = '/scratch';
/** Set in every container's environment (and so in every rank's) when the job has a scratch volume. */
export const SCRATCH_ENV = 'FFRUN_SCRATCH';

export function scratchDirOf(stateDir: string): string {
  return path.join(stateDir, 'scratch');
}

/**
 * A tmpfs (mode 0700, the job's user) at the job's scratch directory; `sizeMiB` undefined: the kernel's
 * default (half of RAM; pages are used only when written). fcntl locks work on it across containers (one
 * kernel), which ompio's sharedfp lockedfile and ROMIO's shared file pointers rely on.
 */
export function mountScratch(jobId: string, stateDir: string, sizeMiB: number | undefined, user: ContainerUser): Promise<ExecResult> {
  const dir = scratchDirOf(stateDir);
  fs.mkdirSync(dir, { mode: 0o700 });
  const options = `mode=0700,uid=${user.uid},gid=${user.gid},nosuid,nodev${sizeMiB === undefined ? '' : `,size=${sizeMiB}m`}`;
  return exec('mount', ['-t', 'tmpfs', '-o', options, `freeflow-${jobId}-scratch`, dir]);
}
