import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { inJobContainerCgroup } from '#runtime/cluster/container';
import * as assert from 'uvu/assert';
import { jobCgroupDirs } from '#runtime/cluster/teardown';

/** Every process's command line, as one string with spaces for the NULs. */
export function processCommandLines(): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (command !== '') found.push({ pid: Number(entry), command });
    } catch {
      // the process exited while we looked
    }
  }
  return found;
}

/** Processes in a cgroup of one of the job's containers (runc puts them in ff-<job>-<container>). */
export function processesInJobCgroups(jobId: string): Array<{ pid: number; command: string }> {
  return processCommandLines().filter((p) => {
    try {
      return inJobContainerCgroup(readFileSync(`/proc/${p.pid}/cgroup`, 'utf8'), jobId);
    } catch {
      return false;
    }
  });
}

export function processesMatching(pattern: RegExp): Array<{ pid: number; command: string }> {
  return processCommandLines().filter((p) => pattern.test(p.command));
}

export function shmEntries(): Set<string> {
  return new Set(readdirSync('/dev/shm'));
}

/**
 * What a job left behind: its network namespaces, mounts, state directory (with runc's state of its
 * containers), the containers' cgroups, processes that name it or run in its containers' cgroups (the
 * container inits, orted, ranks, mpirun, rsh agents, the hosts' ffagents), processes of the test's own marker, and /dev/shm files created
 * since `shmBefore` that name the job or freeflow (containers have private /dev/shm mounts, so Open MPI's own
 * vader files there vanish with them; files in the machine's /dev/shm come from other, local runs). Empty
 * means clean.
 */
export function leftoversOf(jobId: string, options: { marker?: RegExp; shmBefore?: Set<string> } = {}): string[] {
  const problems: string[] = [];
  const netns = existsSync('/run/netns') ? readdirSync('/run/netns').filter((name) => name.startsWith(`ff-${jobId}-`)) : [];
  if (netns.length > 0) problems.push(`network namespaces: ${netns.join(', ')}`);
  const stateDir = `/run/freeflow-jobs/${jobId}`;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(stateDir));
  if (mounts.length > 0) problems.push(`mounts: ${mounts.length} under ${stateDir}`);
  if (existsSync(stateDir)) problems.push(`state directory ${stateDir}`);
  // runc's state lives in <state dir>/runc (checked above); its containers' cgroups in every controller.
  const cgroups = jobCgroupDirs(jobId);
  if (cgroups.length > 0) problems.push(`cgroups: ${cgroups.join(', ')}`);
  // The hosts' ffagents name their control socket in the state dir, so this finds them as well; they
  // are listed on their own below so that a failure says "agents".
  const agents = processesMatching(new RegExp(`ffagent .*freeflow-jobs/${jobId}/`));
  if (agents.length > 0) problems.push(`ffagent processes: ${agents.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
  const named = processesMatching(new RegExp(`ff-${jobId}|freeflow-jobs/${jobId}`)).filter((p) => !agents.some((a) => a.pid === p.pid));
  for (const inCgroup of processesInJobCgroups(jobId)) if (!named.some((p) => p.pid === inCgroup.pid)) named.push(inCgroup);
  if (named.length > 0) problems.push(`processes: ${named.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
  if (options.marker !== undefined) {
    const marked = processesMatching(options.marker);
    if (marked.length > 0) problems.push(`program processes: ${marked.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
  }
  if (options.shmBefore !== undefined) {
    const created = [...shmEntries()].filter((name) => !options.shmBefore!.has(name) && new RegExp(`ff-|freeflow|${jobId}`).test(name));
    if (created.length > 0) problems.push(`/dev/shm: ${created.join(', ')}`);
  }
  return problems;
}

/** /dev/shm files created since `shmBefore` whose names name the job (`/dev/shm/<name>`). */
export function jobShmFiles(jobId: string, shmBefore: Set<string>): string[] {
  return [...shmEntries()].filter((name) => !shmBefore.has(name) && name.includes(jobId)).map((name) => `/dev/shm/${name}`);
}

/**
 * leftoversOf, with /dev/shm checked only for names of this job: other engineers' runs on this machine
 * create `freeflow-*` files there meanwhile (containers have /dev/shm of their own).
 */
export function leftoversOfThisJob(jobId: string, shmBefore: Set<string>, marker: RegExp): string[] {
  return [...leftoversOf(jobId, { marker }), ...jobShmFiles(jobId, shmBefore)];
}

/** Fails the test with what the job left (leftoversOf) unless it left nothing. */
export function assertJobClean(jobId: string, options: Parameters<typeof leftoversOf>[1] = {}): void {
  const problems = leftoversOf(jobId, options);
  assert.equal(problems, [], `job ${jobId} left: ${problems.join('\n')}`);
}
