import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FfError } from '../errors';
import { agentsDirOf, agentsFileOf, type ClusterLayout, type HostLayout } from './layout';
import { identify } from './procfs';
import { runtimeProgram } from './runtime-files';
import { recordContainer } from './state';
import type { HostHandle } from './types';

/**
 * One ffagent per simulated host (docs/agent.md), for jobs whose pairs across hosts use host-network
 * handoff (path `h`). Each runs in its host's network namespace (the underlay), listens on the host's
 * underlay address, and has its control socket in the job's root-only state directory. ffrun registers
 * the job on every agent over a control connection it holds for the job's lifetime (`lease=1`): if ffrun
 * dies, even by SIGKILL, the kernel closes those connections and the agents drop the job at once.
 * The agents' pids are recorded (agents.pids) and teardown kills them; they also run in the job's host
 * namespaces, so the namespace sweep of teardown and of the stale-job reaper catches them regardless.
 */
export const AGENT_PORT = 7470;
const START_TIMEOUT_MS = 5000;
const REPLY_TIMEOUT_MS = 5000;

export interface AgentHandle {
  readonly host: number;
  readonly pid: number;
  readonly controlSocket: string;
  readonly log: string;
  readonly listen: string;
}

export function agentListenAddress(host: Pick<HostLayout, 'underlayIp'>): string {
  return `${host.underlayIp}:${AGENT_PORT}`;
}

/** Starts the agents and waits until each answers `ping` on its control socket. */
export async function startAgents(layout: ClusterLayout): Promise<AgentHandle[]> {
  const program = runtimeProgram('ffagent');
  const dir = agentsDirOf(layout.stateDir);
  // ffagent refuses a control directory that group or others could write (docs/agent.md).
  fs.mkdirSync(dir, { mode: 0o700 });
  return Promise.all(
    layout.hosts.map(async (host): Promise<AgentHandle> => {
      const controlSocket = path.join(dir, `${host.name}.sock`);
      const log = path.join(dir, `${host.name}.log`);
      const listen = agentListenAddress(host);
      // `ip netns exec` execs ffagent in place (the child's pid is the agent's) in the host's network
      // namespace, with /sys remounted for it: UCX (the router) finds the host's interfaces through
      // /sys/class/net, which `nsenter --net` would leave showing the machine's. The mounts the agent
      // needs (the hosts' shared directories) exist before it starts. Detached, so a Ctrl-C meant for
      // ffrun does not reach it before ffrun has ended the job in order; teardown kills it.
      const child = spawn('ip', ['netns', 'exec', host.netns, program, '--control', controlSocket, '--listen', listen, '--log', log], {
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`exited (${signal ?? code})`)));
      child.once('error', (error) => (stderr += error.message));
      child.unref();
      (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
      const pid = child.pid;
      const identity = pid === undefined ? undefined : identify(pid);
      if (pid === undefined || identity === undefined) throw new FfError('CLUSTER_SETUP_FAILED', `ffagent of ${host.name} did not start: ${stderr}`);
      recordContainer(agentsFileOf(layout.stateDir), { name: host.name, init: identity });
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const state = await Promise.race([exited, ping(controlSocket).then((ok) => (ok ? 'up' : 'not yet'))]);
        if (state === 'up') break;
        if (state !== 'not yet' || Date.now() > deadline) {
          const logText = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
          throw new FfError('CLUSTER_SETUP_FAILED', `ffagent of ${host.name} (pid ${pid}, ${listen}) ${state === 'not yet' ? 'did not answer on its control socket within 5 s' : state}: ${stderr.trim()} ${logText}`.trim());
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { host: host.index, pid, controlSocket, log, listen };
    }),
  );
}

/** One request on a fresh connection: true when the agent answered `ok`. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(socketPath)) return resolve(false);
    const socket = net.connect(socketPath);
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\n')) done(reply.startsWith('ok'));
    });
    socket.write('ping\n');
  });
}

/** What `add` needs besides the hosts: the job key and who runs the ranks. */
export interface AgentJob {
  readonly jobId: string;
  readonly key: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Registers the job on every agent with `lease=1` and returns the held control connections: closing
 * them (release) removes the job from the agents, and so does this process dying.
 */
export async function registerJobWithAgents(agents: readonly AgentHandle[], hosts: readonly HostHandle[], job: AgentJob): Promise<AgentLease> {
  if (!/^[a-z0-9]+$/.test(job.jobId) || !/^[0-9a-f]{32}$/.test(job.key)) throw new FfError('INTERNAL', 'bad job id or key for the agents');
  const peers = hosts.map((host) => `${host.index}@${host.underlayIp}:${AGENT_PORT}`).join(',');
  const sockets: net.Socket[] = [];
  try {
    for (const agent of agents) {
      const host = hosts[agent.host]!;
      const command = `add ${job.jobId} key=${job.key} dir=${host.sharedDir} uid=${job.uid} gid=${job.gid} host=${host.index} peers=${peers} lease=1`;
      sockets.push(await holdCommand(agent, command));
    }
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    throw error;
  }
  return new AgentLease(sockets);
}

/** The control connections that hold a job's registrations; `release()` ends them (the agents drop the job). */
export class AgentLease {
  constructor(private readonly sockets: net.Socket[]) {}
  release(): void {
    for (const socket of this.sockets.splice(0)) socket.destroy();
  }
}

function holdCommand(agent: AgentHandle, command: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(agent.controlSocket);
    let reply = '';
    const fail = (why: string) => {
      socket.destroy();
      reject(new FfError('CLUSTER_SETUP_FAILED', `ffagent of host ${agent.host} (${agent.controlSocket}) refused the job: ${why}`, { hint: `see its log ${agent.log}` }));
    };
    const timer = setTimeout(() => fail('no reply within 5 s'), REPLY_TIMEOUT_MS);
    socket.on('error', (error) => {
      clearTimeout(timer);
      fail(error.message);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      const end = reply.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if (!reply.startsWith('ok')) return fail(reply.slice(0, end));
      // Held open until release(): the lease. An error later (the agent died) is the BTL's to report.
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.unref();
      resolve(socket);
    });
    socket.write(`${command}\n`);
  });
}
