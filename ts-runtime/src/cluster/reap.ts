import * as fs from 'node:fs';
import { FfError } from '../errors';
import { jobStateDir } from './layout';
import { isRunning } from './procfs';
import { listJobDirs, readOwner } from './state';
import { teardownJob } from './teardown';
import type { ProgressReporter } from './types';

function ownerIsAlive(dir: string): boolean {
  const owner = readOwner(dir);
  return owner !== undefined && isRunning(owner);
}

function jobIdsOfNetns(): Set<string> {
  let names: string[];
  try {
    names = fs.readdirSync('/run/netns');
  } catch {
    return new Set();
  }
  return new Set(names.flatMap((name) => /^ff-([a-z0-9]{6})-/.exec(name)?.[1] ?? []));
}

/**
 * Removes what ffrun runs that died (SIGKILL) left behind: every job whose recorded owner is dead or
 * missing, and every `ff-<job>-*` network namespace whose job has no state dir (set-up records the owner
 * before it creates anything, and teardown removes the state dir last, so such namespaces have no owner).
 * Never touches a job whose owner is alive.
 */
export async function reapStaleJobs(progress: ProgressReporter = () => {}): Promise<{ jobs: string[] }> {
  // Namespaces first: a job created after this snapshot cannot be mistaken for an ownerless one.
  const netnsJobs = jobIdsOfNetns();
  const { jobs: jobDirs, claims } = listJobDirs();
  for (const claim of claims) {
    if (!ownerIsAlive(claim)) fs.rmSync(claim, { recursive: true, force: true });
  }
  const stale = new Set<string>();
  for (const jobId of [...jobDirs, ...netnsJobs]) {
    const stateDir = jobStateDir(jobId);
    if (fs.existsSync(stateDir) ? !ownerIsAlive(stateDir) : netnsJobs.has(jobId)) stale.add(jobId);
  }
  const reaped: string[] = [];
  const failures: string[] = [];
  for (const jobId of stale) {
    progress(`reaping stale job ${jobId}`);
    try {
      await teardownJob(jobId, progress);
      reaped.push(jobId);
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  if (failures.length > 0) {
    throw new FfError('CLUSTER_TEARDOWN_FAILED', `could not reap every stale job: ${failures.join('; ')}`, {
      hint: 'check the pids and mounts named; then run the reaper again',
      notes: failures,
    });
  }
  return { jobs: reaped };
}
