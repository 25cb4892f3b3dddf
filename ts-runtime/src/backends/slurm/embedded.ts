import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, ProgressReporter } from '../../cluster';
import { JOBS_ROOT } from '../../cluster';
import { killAndWait, identify, type ProcessIdentity } from '../../cluster/procfs';
import { runtimeProgram } from '../../cluster/runtime-files';
import { FfError } from '../../errors';
import { plugstackConf, slurmConf, type SlurmNode } from './conf';
import { SLURM_DAEMONS, spankPluginPath } from './preflight';
import { querySlurm, type SlurmClient } from './client';

/** Where PMIx's per-step server directory goes on every node: the node's shared directory (conf.ts). */
const NODE_SHARED_DIR = '/run/freeflow';
/** The embedded Slurm gets this long to register every node; it takes about a second when the machine is idle. */
const READY_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

export interface EmbeddedOptions {
  /**
   * Also install freeflow's node pieces as a site would on its own Slurm (docs/slurm.md, "Your own
   * Slurm"): an ffagent per node (in slurmd's namespaces, listening on the host's underlay address at
   * this port, control socket in the node's /run/freeflow), the agents file, and the plugin's node
   * arguments in plugstack.conf. The cluster can then stand for "someone's existing Slurm" (the e2e test).
   */
  readonly nodePiecesAgentPort?: number;
}

/** Where a node-pieces agent's control socket is, in the node's own view of /run/freeflow ('.' keeps it apart from job ids). */
const NODE_AGENT_CONTROL = `${NODE_SHARED_DIR}/.agent/control.sock`;

/** A Slurm that ffrun booted on its local cluster for one job; stop() (or the cluster's teardown) ends it. */
export interface EmbeddedSlurm extends SlurmClient {
  /** <state dir>/slurm: configuration, munge key and socket, spool, state, logs. */
  readonly dir: string;
  readonly nodes: readonly SlurmNode[];
  /** Stops the daemons it started (by pid); the cluster's teardown removes the directory and anything left in the namespaces. */
  stop(): Promise<void>;
}

/**
 * Boots Slurm on a local cluster: munged (launcher namespace, pathname socket, a fresh key), slurmctld
 * (launcher namespace) and one slurmd per simulated host (through the rsh agent's host form, the same way a
 * host's orted starts: the host's network namespace, its own hostname, /run/freeflow = the host's shared
 * directory), then waits until every node is idle. Everything lives under the job's state directory and in
 * the job's network namespaces, so the cluster's teardown (and `ffrun clean` after a SIGKILL) removes it.
 */
export async function bootEmbeddedSlurm(cluster: Cluster, progress: ProgressReporter, options: EmbeddedOptions = {}): Promise<EmbeddedSlurm> {
  const dir = path.join(cluster.stateDir, 'slurm');
  for (const sub of ['', 'munge', 'ctld']) fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
  const mungeSocket = path.join(dir, 'munge', 'munge.socket');
  const keyFile = path.join(dir, 'munge', 'munge.key');
  fs.writeFileSync(keyFile, randomBytes(1024), { mode: 0o600, flag: 'wx' });
  // every node's spool lies in its shared directory (conf.ts), which slurmd sees at /run/freeflow
  for (const host of cluster.hosts) fs.mkdirSync(path.join(host.sharedDir, 'slurmd'), { mode: 0o700 });
  const nodes = cluster.hosts.map((host) => ({ name: host.netns, address: bridgeAddress(host.index) }));
  const conf = path.join(dir, 'slurm.conf');
  const plugstack = path.join(dir, 'plugstack.conf');
  const agentPort = options.nodePiecesAgentPort;
  const agentsFile = path.join(dir, 'agents');
  if (agentPort !== undefined) {
    const lines = cluster.hosts.map((host) => `${host.netns} ${host.underlayIp}:${agentPort}\n`);
    fs.writeFileSync(agentsFile, `# node ffagent address (docs/slurm.md)\n${lines.join('')}`, { mode: 0o644, flag: 'wx' });
  }
  const nodePieces = agentPort === undefined ? {} : { nodeRoot: NODE_SHARED_DIR, agentsFile, agentControl: NODE_AGENT_CONTROL };
  fs.writeFileSync(plugstack, plugstackConf(spankPluginPath(), JOBS_ROOT, nodePieces), { mode: 0o644, flag: 'wx' });
  fs.writeFileSync(
    conf,
    slurmConf({
      jobId: cluster.jobId,
      // slurmctld runs in the machine's UTS namespace and insists on being the host it is configured as
      controllerName: os.hostname().split('.')[0]!,
      controllerAddress: cluster.launcher.overlayIp,
      nodes,
      cpusPerNode: 64,
      slurmDir: dir,
      mungeSocket,
      plugstackConf: plugstack,
      tmpFs: NODE_SHARED_DIR,
    }),
    { mode: 0o644, flag: 'wx' },
  );
  const started: ProcessIdentity[] = [];
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
  const inLauncher = (argv: readonly string[]) => ['nsenter', `--net=/run/netns/${cluster.launcher.netns}`, '--', ...argv];
  const client: SlurmClient = { conf, run: (argv, options) => cluster.execInLauncher(argv, { ...options, env: { ...env, SLURM_CONF: conf } }) };
  const stop = async () => {
    const survivors = await killAndWait(started.splice(0), 5_000);
    if (survivors.length > 0) progress(`slurm: ${survivors.length} daemons did not stop; the cluster's teardown kills them`);
  };
  try {
    progress('slurm: starting munged');
    started.push(
      daemon(
        inLauncher([
          SLURM_DAEMONS.munged,
          '--foreground',
          '--force',
          `--key-file=${keyFile}`,
          `--socket=${mungeSocket}`,
          `--pid-file=${dir}/munge/munged.pid`,
          `--log-file=${dir}/munge/munged.log`,
          `--seed-file=${dir}/munge/munged.seed`,
        ]),
        env,
      ),
    );
    await waitFor(() => fs.existsSync(mungeSocket), 'munged to open its socket', path.join(dir, 'munge', 'munged.log'));
    progress('slurm: starting slurmctld and one slurmd per host');
    started.push(daemon(inLauncher([SLURM_DAEMONS.slurmctld, '-D', '-i', '-f', conf]), env));
    const rsh = runtimeProgram('ffrun-rsh');
    for (const node of nodes) {
      // PMIx 4 talks TCP only, on loopback by default: slurmstepd's PMIx server must listen on the host's
      // bridge, which the host's containers reach (as a host's orted does, docs/node-sharing.md).
      started.push(
        daemon([rsh, '--argv', node.name, SLURM_DAEMONS.slurmd, '-D', '-N', node.name, '-f', conf], {
          ...env,
          FFRUN_CONTAINER_MAP: cluster.containerMapFile,
          // what slurmd runs for the job epilog (slurmstepd spank epilog) finds this configuration and its plugstack
          SLURM_CONF: conf,
          PMIX_MCA_ptl_tcp_remote_connections: '1',
          PMIX_MCA_ptl_tcp_if_include: cluster.overlaySubnet,
        }),
      );
    }
    if (agentPort !== undefined) {
      progress('slurm: starting an ffagent on every node');
      for (const host of cluster.hosts) {
        // in slurmd's namespaces, so that it sees /run/freeflow as the node's slurmd and tasks do
        const argv = [rsh, '--argv', host.netns, runtimeProgram('ffagent'), '--control', NODE_AGENT_CONTROL];
        argv.push('--listen', `${host.underlayIp}:${agentPort}`, '--log', path.join(dir, `ffagent-${host.netns}.log`));
        started.push(daemon(argv, { ...env, FFRUN_CONTAINER_MAP: cluster.containerMapFile }));
      }
    }
    await waitForIdleNodes(client, nodes, dir);
  } catch (error) {
    await stop();
    throw error;
  }
  return { ...client, dir, nodes, stop };
}

/** The host bridge's overlay address (cluster/layout.ts: 10.244.<host+1>.1): slurmctld and srun reach slurmd there. */
function bridgeAddress(hostIndex: number): string {
  return `10.244.${hostIndex + 1}.1`;
}

function daemon(argv: readonly string[], env: NodeJS.ProcessEnv): ProcessIdentity {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', env, detached: true });
  child.unref();
  child.on('error', () => {});
  const identity = child.pid === undefined ? undefined : identify(child.pid);
  if (identity === undefined)
    throw new FfError('SLURM_SETUP_FAILED', `could not start ${argv.join(' ')}`, { hint: 'scripts/setup.sh installs Slurm and munge' });
  return identity;
}

async function waitFor(ready: () => boolean, what: string, log: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw setupFailure(`timed out waiting for ${what}`, log);
    await sleep(POLL_MS);
  }
}

async function waitForIdleNodes(client: SlurmClient, nodes: readonly SlurmNode[], dir: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const states = await querySlurm(client, ['sinfo', '--noheader', '--Node', '--format=%N %T']).catch((error: Error) => error.message);
    const idle = new Set(
      states
        .split('\n')
        .filter((line) => /^\S+ idle$/.test(line.trim()))
        .map((line) => line.trim().split(' ')[0]),
    );
    if (nodes.every((node) => idle.has(node.name))) return;
    if (Date.now() > deadline)
      throw setupFailure(`its nodes did not all become idle (sinfo: ${states.trim() || 'no answer'})`, path.join(dir, 'slurmctld.log'));
    await sleep(POLL_MS);
  }
}

function setupFailure(problem: string, log: string): FfError {
  let tail = '';
  try {
    tail = fs.readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    // no log yet
  }
  return new FfError('SLURM_SETUP_FAILED', `the embedded Slurm did not start: ${problem}`, {
    hint: `scripts/setup.sh installs slurm-wlm and munge; the daemons' logs are under the job's state directory (last lines of ${path.basename(log)} below)`,
    notes: tail === '' ? [] : tail.split('\n'),
  });
}
