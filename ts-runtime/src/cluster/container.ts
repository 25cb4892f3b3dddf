import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import { jobNetnsPrefix, type ContainerLayout } from './layout';
import { writeBundle, type BundleInputs, type ContainerUser, type SystemLayout, type Volume } from './oci';
import { identify, type ProcessIdentity } from './procfs';

const START_TIMEOUT_MS = 15000;
const RUNC_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface ContainerMounts {
  readonly sharedDir: string;
  readonly shmSizeMiB: number | undefined;
  readonly volumes: readonly Volume[];
  /** The job's scratch volume, bound at /scratch; undefined: none. */
  readonly scratchDir: string | undefined;
}

export interface ContainerStart {
  readonly container: ContainerLayout;
  readonly mounts: ContainerMounts;
  readonly user: ContainerUser;
  readonly init: string;
  /** <state dir>/bundles/<name> */
  readonly bundleDir: string;
  /** <state dir>/runc: runc's --root, shared by every container of the job. */
  readonly runcRoot: string;
  readonly system: SystemLayout;
  readonly hostsText: string;
  /** `ip` batch lines for the container's own network namespace (runc runs them before the init); undefined: host network. */
  readonly network: { readonly ip: string; readonly lines: readonly string[] } | undefined;
}

/**
 * Relative, so runc puts it below its own cgroup (keeping the machine's limits) in every controller; one
 * level, named by the container (`ff-<job>-...`, which teardown looks for). Not below a common parent: in
 * cgroup v1's cpu controller a parent shared by every freeflow container on the machine is a single
 * scheduling weight, so a starting container queued behind every other job's busy ranks (runc init took
 * 1.6-3.2 s instead of 0.3-0.6 s at a load of 25, bench/startup/README.md); on its own each container
 * competes like one process.
 */
export function containerCgroupsPath(name: string): string {
  return name;
}

/** Whether /proc/<pid>/cgroup text puts the process in a cgroup of one of the job's containers (its init, or anything runc exec started). */
export function inJobContainerCgroup(procCgroupText: string, jobId: string): boolean {
  const prefix = jobNetnsPrefix(jobId);
  return procCgroupText.split('\n').some((line) => (line.split('/').pop() ?? '').startsWith(prefix));
}

/**
 * Writes the container's OCI bundle and starts it with `runc run --detach` in its network namespace
 * (which runc configures first, from `network`). Returns the identity of its init (pid 1 inside), which ends only when teardown
 * kills it.
 */
export async function startContainer(start: ContainerStart): Promise<ProcessIdentity> {
  const { container, bundleDir } = start;
  const inputs: BundleInputs = {
    name: container.name,
    netnsPath: `/run/netns/${container.netns}`,
    init: start.init,
    user: start.user,
    sharedDir: start.mounts.sharedDir,
    shmSizeMiB: start.mounts.shmSizeMiB,
    volumes: start.mounts.volumes,
    scratchDir: start.mounts.scratchDir,
    hostsFile: path.join(bundleDir, 'hosts'),
    hostnameFile: path.join(bundleDir, 'hostname'),
    cgroupsPath: containerCgroupsPath(container.name),
    networkSetup: start.network === undefined ? undefined : { ip: start.network.ip, netns: container.netns, batchFile: path.join(bundleDir, 'network.batch') },
  };
  writeBundle(bundleDir, inputs, start.system, start.hostsText);
  if (inputs.networkSetup !== undefined) fs.writeFileSync(inputs.networkSetup.batchFile, start.network!.lines.join('\n') + '\n', { mode: 0o600 });
  const pidFile = path.join(bundleDir, 'init.pid');
  const errorFile = path.join(bundleDir, 'runc.err');
  // Without a terminal runc hands its stdio to the init: no pipes, or they would stay open for good.
  const errorFd = fs.openSync(errorFile, 'w', 0o600);
  let outcome: { code: number | null; signal: NodeJS.Signals | null; error?: Error };
  try {
    const child = spawn('runc', ['--root', start.runcRoot, 'run', '--detach', '--bundle', bundleDir, '--pid-file', pidFile, container.name], {
      stdio: ['ignore', 'ignore', errorFd],
      env: RUNC_ENV,
      timeout: START_TIMEOUT_MS,
    });
    outcome = await new Promise((resolve) => {
      child.on('error', (error) => resolve({ code: null, signal: null, error }));
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
  } finally {
    fs.closeSync(errorFd);
  }
  if (outcome.code !== 0) {
    const why = outcome.error?.message ?? fs.readFileSync(errorFile, 'utf8').trim();
    throw new FfError('CLUSTER_SETUP_FAILED', `container ${container.name} did not start (runc run: ${outcome.signal ?? outcome.code}): ${why}`);
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  const init = Number.isInteger(pid) && pid > 0 ? identify(pid) : undefined;
  if (init === undefined) throw new FfError('CLUSTER_SETUP_FAILED', `container ${container.name} started, but its init (pid ${pid}) is gone`);
  return init;
}

/** Names of the containers runc knows in `runcRoot` (each is a directory holding its state.json). */
export function listRuncContainers(runcRoot: string): string[] {
  try {
    return fs.readdirSync(runcRoot).filter((entry) => fs.statSync(path.join(runcRoot, entry)).isDirectory());
  } catch {
    return [];
  }
}

/** What teardown needs from runc's state.json of one container. */
export interface RuncContainerState {
  readonly name: string;
  readonly init: ProcessIdentity | undefined;
  readonly cgroupPaths: readonly string[];
}

/**
 * Reads runc's state of each container (also of one whose start was cut short before it reached the
 * container map). Unreadable states give only the name: `runc delete --force` deals with those.
 */
export function readRuncStates(runcRoot: string): RuncContainerState[] {
  return listRuncContainers(runcRoot).map((name) => {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(runcRoot, name, 'state.json'), 'utf8')) as {
        init_process_pid?: unknown;
        init_process_start?: unknown;
        cgroup_paths?: Record<string, unknown>;
      };
      const pid = state.init_process_pid;
      const start = state.init_process_start;
      const init =
        typeof pid === 'number' && pid > 0 && (typeof start === 'number' || typeof start === 'string') ? { pid, startTime: String(start) } : undefined;
      const cgroupPaths = Object.values(state.cgroup_paths ?? {}).filter((p): p is string => typeof p === 'string' && p.startsWith('/sys/fs/cgroup/'));
      return { name, init, cgroupPaths };
    } catch {
      return { name, init: undefined, cgroupPaths: [] };
    }
  });
}

/** rmdir of cgroup directories (all their processes must be gone); returns those still there. */
export function removeCgroupDirs(dirs: readonly string[]): string[] {
  return dirs.filter((dir) => {
    try {
      fs.rmdirSync(dir);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  });
}

/** `runc delete --force` (kills what still runs, removes the cgroups and the state); returns the failures. */
export async function deleteRuncContainers(runcRoot: string, names: readonly string[]): Promise<string[]> {
  const outcomes = await Promise.all(names.map((name) => exec('runc', ['--root', runcRoot, 'delete', '--force', name], { env: RUNC_ENV, allowFailure: true })));
  return outcomes.flatMap((outcome, i) => (outcome.code === 0 ? [] : [`runc delete ${names[i]}: ${outcome.stderr.trim()}`]));
}
