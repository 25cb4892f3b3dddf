import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { FfError } from '../errors';
import type { ContainerLayout } from './layout';
import { identify, type ProcessIdentity } from './procfs';
import { runtimeProgram } from './runtime-files';

const READY_TIMEOUT_MS = 15000;

export interface ContainerMounts {
  readonly sharedDir: string;
  readonly shmSizeMiB: number | undefined;
  readonly volumes: readonly string[];
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Starts a container's init in its (already configured) network namespace, with new ipc, uts, pid and
 * mount namespaces, and waits until it has built its mounts. The init runs in its own session, so a
 * terminal's Ctrl-C does not reach it: only teardown's SIGKILL ends it.
 */
export function startContainerInit(container: ContainerLayout, mounts: ContainerMounts): Promise<ProcessIdentity> {
  const argv = [
    'netns', 'exec', container.netns,
    'unshare', '--ipc', '--uts', '--pid', '--mount', '--fork', '--mount-proc', '--propagation', 'private',
    runtimeProgram('ffrun-container-init'), container.name, mounts.sharedDir, String(mounts.shmSizeMiB ?? 'default'),
    ...mounts.volumes,
  ];
  // `ip netns exec` and then `unshare` exec in place, so the spawned pid is unshare's and the init is its child.
  const child = spawn('ip', argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
  return new Promise<ProcessIdentity>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const finish = (outcome: { init: ProcessIdentity } | { error: FfError }) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      if ('init' in outcome) resolve(outcome.init);
      else reject(outcome.error);
    };
    const fail = (why: string) =>
      finish({ error: new FfError('CLUSTER_SETUP_FAILED', `container ${container.name} did not start: ${why}`) });
    const timer = setTimeout(() => fail(`no "ready" within ${READY_TIMEOUT_MS} ms; stderr: ${stderr.trim()}`), READY_TIMEOUT_MS);
    child.on('error', (error) => fail(error.message));
    child.on('exit', (code, signal) => fail(`its init exited (${signal ?? code}): ${stderr.trim()}`));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!stdout.includes('ready\n')) return;
      const initPid = child.pid === undefined ? undefined : childPids(child.pid)[0];
      const init = initPid === undefined ? undefined : identify(initPid);
      if (init === undefined) fail(`cannot find its init below unshare (pid ${child.pid})`);
      else finish({ init });
    });
  });
}
