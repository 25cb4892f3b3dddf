import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import { deleteRuncContainers, readRuncStates, removeCgroupDirs } from './container';
import { agentsFileOf, containerMapFile, jobNetnsPrefix, jobStateDir, runcRootOf } from './layout';
import { deleteNetnsBatch, runBatch } from './network';
import { killAndWait, netnsInode, processesInNetns } from './procfs';
import { readContainerMap } from './state';
import type { ProgressReporter } from './types';

// A SIGKILLed rank that unmaps large shared segments can take seconds to exit on a loaded machine.
const PROCESS_EXIT_TIMEOUT_MS = 15_000;

/** Names of the job's network namespaces that exist now. */
export function listJobNetns(jobId: string): string[] {
  const prefix = jobNetnsPrefix(jobId);
  try {
    return fs.readdirSync('/run/netns').filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
}

function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
export function mountsBelow(dir: string): string[] {
  const points = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map(unescapeMountPath)
    .filter((point) => point === dir || point.startsWith(dir + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

async function unmountBelow(dir: string): Promise<string[]> {
  for (const lazy of [false, true]) {
    const points = mountsBelow(dir);
    if (points.length === 0) return [];
    // Busy mounts (a process we could not kill still uses them) are detached lazily on the second pass.
    await exec('umount', [...(lazy ? ['--lazy'] : []), ...points], { allowFailure: true });
  }
  return mountsBelow(dir);
}

/**
 * Where runc put a relative cgroupsPath: below this process's own cgroup. Runs before the flat layout
 * (containerCgroupsPath) put them below `freeflow/`, so the reaper looks there too.
 */
const CONTAINER_CGROUP_PARENTS = ['', 'freeflow'] as const;

/**
 * Cgroup directories of the job's containers that exist now, in every v1 controller (and cgroup2), below
 * this process's own cgroup, where runc puts a relative cgroupsPath.
 */
export function jobCgroupDirs(jobId: string): string[] {
  const prefix = jobNetnsPrefix(jobId);
  const found: string[] = [];
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return [];
  }
  for (const line of lines) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const controllers = match[1]!;
    const mountDir = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    for (const parent of CONTAINER_CGROUP_PARENTS) {
      const dir = path.join('/sys/fs/cgroup', mountDir, match[2]!, parent);
      let entries: string[];
      try {
        entries = fs.readdirSync(dir);
      } catch {
        continue;
      }
      found.push(...entries.filter((entry) => entry.startsWith(prefix)).map((entry) => path.join(dir, entry)));
    }
  }
  return found;
}

/** rmdir of the job's container cgroups below this process's cgroup that are left (a runc killed before it wrote its state); returns those left. */
function removeJobCgroups(jobId: string): string[] {
  removeCgroupDirs(jobCgroupDirs(jobId));
  return jobCgroupDirs(jobId);
}

/**
 * Removes everything a job made, in the order that frees each resource: processes (container inits
 * take their whole pid namespace with them; then anything left in the job's network namespaces, such
 * as mpirun in the launcher), mounts, network namespaces (their links go with them), the state dir.
 * Works from what exists, not from what set-up got to, so it finishes partial set-ups and dead owners'
 * jobs alike. Runs every step even when one fails, then throws CLUSTER_TEARDOWN_FAILED naming the rest.
 */
export async function teardownJob(jobId: string, progress: ProgressReporter = () => {}): Promise<void> {
  const stateDir = jobStateDir(jobId);
  const problems: string[] = [];
  const netnsNames = listJobNetns(jobId);
  const inodes = new Set(netnsNames.map(netnsInode).filter((inode): inode is number => inode !== undefined));

  progress(`teardown ${jobId}: stopping processes`);
  // The inits from the container map and from runc's own state (a container whose start was cut short
  // is only there); each takes its pid namespace along.
  const runcRoot = runcRootOf(stateDir);
  const runcStates = readRuncStates(runcRoot);
  const inits = [
    ...readContainerMap(containerMapFile(stateDir)).map((record) => record.init),
    ...runcStates.flatMap((state) => (state.init === undefined ? [] : [state.init])),
    // The hosts' ffagents (they also run in the job's host namespaces, so the sweep below would find them).
    ...readContainerMap(agentsFileOf(stateDir)).map((record) => record.init),
  ];
  const survivors = await killAndWait(inits, PROCESS_EXIT_TIMEOUT_MS);
  const stragglers = processesInNetns(inodes).filter((found) => found.pid !== process.pid);
  survivors.push(...(await killAndWait(stragglers, PROCESS_EXIT_TIMEOUT_MS)));
  if (survivors.length > 0) problems.push(`processes still running after SIGKILL: ${[...new Set(survivors.map((p) => p.pid))].join(', ')}`);

  // With every init dead, what `runc delete` would do is left: the containers' cgroups (removed here
  // directly: one runc process per container costs ~0.1 s of CPU each) and runc's state (it goes with
  // the state dir). A container whose cgroups cannot go this way is left to `runc delete --force`.
  const stubborn = runcStates.filter((state) => state.init === undefined || removeCgroupDirs(state.cgroupPaths).length > 0);
  if (stubborn.length > 0) progress(`teardown ${jobId}: runc delete of ${stubborn.length} containers`);
  problems.push(
    ...(await deleteRuncContainers(
      runcRoot,
      stubborn.map((state) => state.name),
    )),
  );
  const cgroupsLeft = removeJobCgroups(jobId);
  if (cgroupsLeft.length > 0) problems.push(`cgroups left: ${cgroupsLeft.join(', ')}`);

  progress(`teardown ${jobId}: unmounting`);
  const stuckMounts = await unmountBelow(stateDir);
  if (stuckMounts.length > 0) problems.push(`could not unmount ${stuckMounts.join(', ')}`);

  progress(`teardown ${jobId}: deleting ${netnsNames.length} network namespaces`);
  try {
    await runBatch('ip', undefined, deleteNetnsBatch(netnsNames), { force: true });
  } catch (error) {
    // A concurrent teardown of the same job (its owner finishing while a reaper starts) deletes some
    // names first; what matters is that none is left.
    const left = listJobNetns(jobId);
    if (left.length > 0) problems.push(`network namespaces left (${left.join(', ')}): ${(error as Error).message}`);
  }

  // Removing files below a mount that is still there would delete the job's data, not the directory.
  if (stuckMounts.length === 0) fs.rmSync(stateDir, { recursive: true, force: true });

  if (problems.length > 0) {
    throw new FfError('CLUSTER_TEARDOWN_FAILED', `could not remove everything of job ${jobId}: ${problems.join('; ')}`, {
      hint: 'check `ip netns list`, `mount | grep freeflow` and the pids named; then run the stale-job reaper again',
      notes: problems,
    });
  }
}
