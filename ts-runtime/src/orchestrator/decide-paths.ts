import type { InterHostMode, NetworkMode } from '../spec/schema';
import { planeDecide, type PlaneDecision } from '../native/addon';
import type { HostCapabilities } from '../native/capabilities';
import type { PathKind } from './path-kind';
import type { RankSlot } from './placement';

/** Whether a host's ffagent serves the job: it answered ffrun and accepted the job before the plan. */
export interface HostAgentState {
  readonly reachable: boolean;
  /** Why not, for people (the agent's reply, the connection error, or why none was started). */
  readonly problem?: string;
  /**
   * The agent's own probe of the job's other agents (the `probe` control command: the authenticated
   * handshake over the underlay). Absent: not probed, taken as reaching every peer.
   */
  readonly peers?: PeerReachability;
}

/** Host indexes this agent completed the handshake with, and the refusal for each one it did not. */
export interface PeerReachability {
  readonly reached: readonly number[];
  readonly unreached: readonly { readonly host: number; readonly reason: string }[];
}

export type InterHostPlane = PlaneDecision['plane'];

/** The plane of one pair of hosts (`hosts[0] < hosts[1]`; the policy is symmetric) and why. */
export interface HostPairPlane {
  readonly hosts: readonly [number, number];
  readonly plane: InterHostPlane;
  /**
   * A stable name: the core's FF_PLANE_REASON_* (docs/agent.md, "The plane policy"), or the one the
   * orchestrator adds: NETWORK_OVERLAY (the job asked for the overlay).
   */
  readonly reason: string;
  /** A sentence for people, naming the host whose agent is missing when that is the reason. */
  readonly why: string;
}

/** The inter-host planes of a job, per pair of hosts; ffrun prints them under the plan and in --json. */
export interface InterHostDecision {
  readonly requested: InterHostMode;
  /** Per host, in host order: its agent's state when the plan was made. */
  readonly agents: readonly HostAgentState[];
  readonly pairs: readonly HostPairPlane[];
}

/**
 * Decides the plane of every pair of hosts from the user's choice and what each host reported: its
 * agent (started and pinged by ffrun before the plan) and RDMA (the probe). The rule is the core's
 * ff_plane_decide (through the addon), so ffrun and native callers cannot disagree: `auto` gives handoff
 * between hosts whose agents answered, router where both have RDMA, tcp with the reason otherwise.
 */
export function decideInterHost(
  network: NetworkMode,
  requested: InterHostMode,
  hosts: readonly Pick<HostCapabilities, 'rdma'>[],
  agents: readonly HostAgentState[],
): InterHostDecision {
  const pairs: HostPairPlane[] = [];
  for (let a = 0; a < hosts.length; a++) {
    for (let b = a + 1; b < hosts.length; b++) {
      pairs.push(decideHostPair(network, requested, [a, b], hosts, agents));
    }
  }
  return { requested, agents, pairs };
}

function decideHostPair(
  network: NetworkMode,
  requested: InterHostMode,
  pair: readonly [number, number],
  hosts: readonly Pick<HostCapabilities, 'rdma'>[],
  agents: readonly HostAgentState[],
): HostPairPlane {
  if (network === 'overlay') {
    return { hosts: pair, plane: 'tcp', reason: 'NETWORK_OVERLAY', why: 'network overlay: every pair between containers uses TCP over the overlay' };
  }
  const caps = pair.map((host) => ({ agentReachable: agents[host]?.reachable === true, rdmaActive: hosts[host]?.rdma === true }));
  const [a, b] = pair;
  const unlinked = [linkProblem(agents[a], a, b), linkProblem(agents[b], b, a)].filter((problem) => problem !== undefined);
  const decision = planeDecide(requested, caps[0]!, caps[1]!, unlinked.length === 0);
  const missing = pair.filter((host) => agents[host]?.reachable !== true);
  const problems = missing.map((host) => `h${host}: ${agents[host]?.problem ?? 'no ffagent state'}`);
  const linkProblems = decision.reason === 'FF_PLANE_REASON_AGENTS_CANNOT_REACH' ? unlinked : [];
  return { hosts: pair, plane: decision.plane, reason: decision.reason, why: [decision.description, ...problems, ...linkProblems].join('; ') };
}

/** Why the agent of `from` did not complete the handshake with the agent of `to`; undefined if it did. */
function linkProblem(state: HostAgentState | undefined, from: number, to: number): string | undefined {
  const peers = state?.peers;
  if (peers === undefined || peers.reached.includes(to)) return undefined;
  const reason = peers.unreached.find((entry) => entry.host === to)?.reason ?? 'not in its probe reply';
  return `h${from}'s ffagent could not complete the handshake with h${to}'s: ${reason}`;
}

/** The plane between two different hosts; tcp for a pair the decision does not list. */
export function planeBetween(interHost: InterHostDecision, a: number, b: number): InterHostPlane {
  const [low, high] = a < b ? [a, b] : [b, a];
  return interHost.pairs.find((pair) => pair.hosts[0] === low && pair.hosts[1] === high)?.plane ?? 'tcp';
}

const PATH_OF_PLANE: Readonly<Record<InterHostPlane, PathKind>> = { handoff: 'handoff', router: 'router', tcp: 'tcp' };

/**
 * Decides the path of every ordered rank pair.
 * - the same rank: `self`.
 * - network `freeflow`, the same host, and the host's shared directory is in memory with room: `shm`.
 * - network `overlay` (the status quo): only ranks in the same container share memory (Open MPI's
 *   vader); every other pair is `tcp`, because containers do not share IPC or PID namespaces.
 * - network `freeflow`, different hosts: the plane of the pair of hosts (decideInterHost).
 * - otherwise (same host without usable shared memory) `tcp` over the overlay.
 */
export function decidePaths(ranks: readonly RankSlot[], hosts: readonly HostCapabilities[], network: NetworkMode, interHost: InterHostDecision): PathKind[][] {
  return ranks.map((from) => ranks.map((to) => decidePair(from, to, hosts, network, interHost)));
}

function decidePair(from: RankSlot, to: RankSlot, hosts: readonly HostCapabilities[], network: NetworkMode, interHost: InterHostDecision): PathKind {
  if (from.rank === to.rank) return 'self';
  const sameHost = from.host === to.host;
  const sameContainer = sameHost && from.containerIndex === to.containerIndex;
  if (network === 'overlay') return sameContainer ? 'shm' : 'tcp';
  if (sameHost) return canShareMemory(hosts[from.host]) ? 'shm' : 'tcp';
  return PATH_OF_PLANE[planeBetween(interHost, from.host, to.host)];
}

/** Filesystems whose files live in memory: segments there cost no disk I/O. */
const MEMORY_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

/** Whether co-located ranks can put their shared segments into this host's shared directory. */
export function canShareMemory(host: HostCapabilities | undefined): boolean {
  return host !== undefined && MEMORY_FILESYSTEMS.has(host.sharedDir.fs) && host.sharedDir.bytes > 0;
}
