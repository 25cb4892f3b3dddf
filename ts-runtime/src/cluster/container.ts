import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { exec } from '../util/exec';
import type { ContainerLayout } from './layout';
import { writeBundle, type BundleInputs, type ContainerUser, type SystemLayout, type Volume } from './oci';
import { identify, type ProcessIdentity } from './procfs';

const START_TIMEOUT_MS = 15000;
const RUNC_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface ContainerMounts {
  readonly sharedDir: string;
  readonly shmSizeMiB: number | undefined;
  readonly volumes: readonly Volume[];
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
}

/** Relative, so runc puts it below its own cgroup (keeping the machine's limits) in every controller. */
export function containerCgroupsPath(name: string): string {
  return `freeflow/${name}`;
}

/**
 * Writes the container's OCI bundle and starts it with `runc run --detach` in its (already configured)
 * network namespace. Returns the identity of its init (pid 1 inside), which ends only when teardown
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
    hostsFile: path.join(bundleDir, 'hosts'),
    hostnameFile: path.join(bundleDir, 'hostname'),
    cgroupsPath: containerCgroupsPath(container.name),
  };
  writeBundle(bundleDir, inputs, start.system, start.hostsText);
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

/** `runc delete --force` (kills what still runs, removes the cgroups and the state); returns the failures. */
export async function deleteRuncContainers(runcRoot: string, names: readonly string[]): Promise<string[]> {
  const outcomes = await Promise.all(
    names.map((name) => exec('runc', ['--root', runcRoot, 'delete', '--force', name], { env: RUNC_ENV, allowFailure: true })),
  );
  return outcomes.flatMap((outcome, i) => (outcome.code === 0 ? [] : [`runc delete ${names[i]}: ${outcome.stderr.trim()}`]));
}
