import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FfError } from '../errors';
import { agentsDirOf, agentsFileOf, type ClusterLayout, type HostLayout } from './layout';
import { identify } from './procfs';
import { runtimeProgram } from './runtime-files';
import { recordContainer } from './state';
import { z } from 'zod';
import type { HostAgentState, PeerReachability } from '../orchestrator/decide-paths';
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
// A live agent answers in milliseconds; a silent one costs the plan this long before its host falls back.
const REPLY_TIMEOUT_MS = 3000;

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

/** An agent that did not come up: the host's pairs fall back to tcp with this as the reason. */
export interface AgentStartFailure {
  readonly host: number;
  readonly problem: string;
}

export interface StartedAgents {
  readonly handles: readonly AgentHandle[];
  readonly failures: readonly AgentStartFailure[];
}

/**
 * Starts the agents and waits until each answers `ping` on its control socket. An agent that exits or
 * stays silent for 5 s is a failure of its host only (its pairs fall back to tcp, stated in the plan),
 * not of the cluster: the overlay always exists. Every agent's pid is recorded before it is waited for,
 * so teardown kills a silent one too.
 */
export async function startAgents(layout: ClusterLayout): Promise<StartedAgents> {
  const program = runtimeProgram('ffagent');
  const dir = agentsDirOf(layout.stateDir);
  // ffagent refuses a control directory that group or others could write (docs/agent.md).
  fs.mkdirSync(dir, { mode: 0o700 });
  const outcomes = await Promise.all(
    layout.hosts.map(async (host): Promise<AgentHandle | AgentStartFailure> => {
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
      if (pid === undefined || identity === undefined)
        return { host: host.index, problem: `ffagent of ${host.name} did not start: ${stderr.trim() || 'no process'}` };
      recordContainer(agentsFileOf(layout.stateDir), { name: host.name, init: identity });
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const state = await Promise.race([exited, ping(controlSocket).then((ok) => (ok ? 'up' : 'not yet'))]);
        if (state === 'up') break;
        if (state !== 'not yet' || Date.now() > deadline) {
          const logText = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
          const what = state === 'not yet' ? 'did not answer on its control socket within 5 s' : state;
          return { host: host.index, problem: `ffagent of ${host.name} (pid ${pid}, ${listen}) ${what}: ${`${stderr.trim()} ${logText}`.trim()}` };
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { host: host.index, pid, controlSocket, log, listen };
    }),
  );
  return {
    handles: outcomes.filter((outcome): outcome is AgentHandle => 'pid' in outcome),
    failures: outcomes.filter((outcome): outcome is AgentStartFailure => !('pid' in outcome)),
  };
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
 * Registers the job on every agent with `lease=1`: this is also the reachability probe of the plan (an
 * agent that accepts the job is running and serves it). Agents are asked in parallel; one that refuses
 * or does not answer within the reply timeout makes its host unreachable, with the reason, and does not
 * fail the others. `hosts` without a started agent are unreachable with `notStarted`'s reason. The
 * returned lease holds the accepted registrations: ending it removes the job from those agents, and so
 * does this process dying.
 */
export async function registerJobWithAgents(
  agents: readonly AgentHandle[],
  hosts: readonly HostHandle[],
  job: AgentJob,
  notStarted: (host: number) => string,
): Promise<{ lease: AgentLease; states: HostAgentState[] }> {
  if (!/^[a-z0-9]+$/.test(job.jobId) || !/^[0-9a-f]{32}$/.test(job.key)) throw new FfError('INTERNAL', 'bad job id or key for the agents');
  const peers = hosts.map((host) => `${host.index}@${host.underlayIp}:${AGENT_PORT}`).join(',');
  const outcomes = await Promise.all(
    hosts.map(async (host): Promise<net.Socket | string> => {
      const agent = agents.find((candidate) => candidate.host === host.index);
      if (agent === undefined) return notStarted(host.index);
      const command = `add ${job.jobId} key=${job.key} dir=${host.sharedDir} uid=${job.uid} gid=${job.gid} host=${host.index} peers=${peers} lease=1`;
      return holdCommand(agent, command).catch((error: unknown) => (error instanceof Error ? error.message : String(error)));
    }),
  );
  const sockets = outcomes.filter((outcome): outcome is net.Socket => typeof outcome !== 'string');
  // Every agent that took the job now tries the handshake with each other agent of the job (they all
  // have it by now): an agent that answers ffrun but cannot reach a peer agent over the underlay must not
  // get h or r planned with it.
  const states = await Promise.all(
    outcomes.map(async (outcome): Promise<HostAgentState> => {
      if (typeof outcome === 'string') return { reachable: false, problem: outcome };
      return { reachable: true, peers: await probePeers(outcome, job.jobId, hosts.length) };
    }),
  );
  return { lease: new AgentLease(job.jobId, sockets), states };
}

/** The agent bounds each handshake by 3 s (HANDSHAKE_MS in native/agent/ffagent.h); the reply follows. */
const PROBE_REPLY_TIMEOUT_MS = 6000;

const probeReplySchema = z.string().regex(/^ok reached=([0-9]+(,[0-9]+)*)? unreached=([0-9]+:[A-Z_]+(,[0-9]+:[A-Z_]+)*)?$/, 'not a probe reply');

/**
 * `probe <job>` on the agent's held control connection: which of the job's other agents it completed the
 * authenticated handshake with, and why not the others. A failed probe counts every peer as unreached.
 */
async function probePeers(socket: net.Socket, jobId: string, hostCount: number): Promise<PeerReachability> {
  let reply: string;
  try {
    reply = await command(socket, `probe ${jobId}`, PROBE_REPLY_TIMEOUT_MS);
  } catch (error) {
    reply = `probe failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  const parsed = probeReplySchema.safeParse(reply);
  if (!parsed.success) {
    const unreached = Array.from({ length: hostCount }, (_, host) => ({ host, reason: reply }));
    return { reached: [], unreached };
  }
  const [, reachedText = '', unreachedText = ''] = /^ok reached=(\S*) unreached=(\S*)$/.exec(parsed.data) ?? [];
  return {
    reached: reachedText === '' ? [] : reachedText.split(',').map(Number),
    unreached:
      unreachedText === ''
        ? []
        : unreachedText.split(',').map((entry) => {
            const [host, reason] = entry.split(':');
            return { host: Number(host), reason: reason ?? '' };
          }),
  };
}

/** The control connections that hold a job's registrations. */
export class AgentLease {
  constructor(
    private readonly jobId: string,
    private readonly sockets: net.Socket[],
  ) {}

  /** Closes them at once: the agents drop the job when they see the connections end. */
  release(): void {
    for (const socket of this.sockets.splice(0)) socket.destroy();
  }

  /**
   * Removes the job from every agent and waits for their answers, then closes the connections: the
   * next job of the same cluster (same job id, new key) can register at once, without racing the
   * agents' handling of the closed connections.
   */
  async end(): Promise<void> {
    const sockets = this.sockets.splice(0);
    await Promise.all(sockets.map((socket) => command(socket, `remove ${this.jobId}`).catch(() => undefined)));
    for (const socket of sockets) socket.destroy();
  }
}

/** One command on a held control connection; resolves with the reply line. */
function command(socket: net.Socket, line: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (error) reject(error);
      else resolve(reply.slice(0, reply.indexOf('\n')));
    };
    const onData = (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\n')) done();
    };
    const timer = setTimeout(() => done(new Error(`no reply within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.on('data', onData);
    socket.write(`${line}\n`);
  });
}

function holdCommand(agent: AgentHandle, command: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(agent.controlSocket);
    let reply = '';
    const fail = (why: string) => {
      socket.destroy();
      reject(
        new FfError('CLUSTER_SETUP_FAILED', `ffagent of host ${agent.host} (${agent.controlSocket}) did not accept the job: ${why}`, {
          hint: `see its log ${agent.log}`,
        }),
      );
    };
    const timer = setTimeout(() => fail('no reply within 3 s'), REPLY_TIMEOUT_MS);
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
