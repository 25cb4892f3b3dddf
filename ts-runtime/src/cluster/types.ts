import type { AgentHandle } from './agents';
import type { HostAgentState } from '../orchestrator/decide-paths';
import type { ExecOptions, ExecResult } from '../util/exec';

/** What the caller asks for; validated by `resolveClusterRequest`. */
export interface ClusterRequest {
  /** `[a-z0-9]{6}`; names every namespace, mount and directory of the job. */
  jobId: string;
  hosts: number;
  containersPerHost: number;
  /** MTU of container and launcher interfaces (default 1450); the underlay gets this plus the VXLAN overhead. */
  containerMtu?: number;
  /** MTU of the hosts' network (underlay) when larger than containerMtu + 50 needs, e.g. 9000 under 1450 containers. */
  underlayMtu?: number;
  /** Size of each host's shared tmpfs; default: the kernel's tmpfs default (half of RAM, used only when touched). */
  sharedDirSizeMiB?: number;
  /** Size of each container's /dev/shm; default as for sharedDirSizeMiB. */
  shmSizeMiB?: number;
  /**
   * Absolute directories of the machine that every container sees at the same path, like a volume of a
   * pod: needed only for those under /tmp or /run, which containers otherwise replace with their own.
   * ffrun passes the repository, so its programs run in containers wherever it was cloned.
   */
  volumes?: readonly string[];
  /** Like volumes, but read-only; a read-write volume at or below one of them is read-only too. */
  readOnlyVolumes?: readonly string[];
  /** Who runs in the containers (their init, orted, ranks): default root, with Docker's default capabilities; any other user gets none. */
  user?: { readonly uid: number; readonly gid: number };
  /**
   * Start one ffagent per host in the host's network namespace (docs/agent.md), for jobs that plan host
   * network handoff (path `h`) between hosts; register the job on them with `registerJobWithAgents`.
   * Default false: no agent runs.
   */
  agents?: boolean;
  /**
   * Containers per host that join the host's own network namespace instead of getting one of their own
   * (Docker's and Kubernetes' host networking): they see the host's underlay link and address, and reach
   * other hosts over the underlay, not the overlay. They come after the `containersPerHost` others
   * (indices containersPerHost, containersPerHost+1, ...; named `ff-<job>-h<i>n<j>`), and only they get
   * it. Every host's bridge has an overlay address (10.244.<host+1>.1, like docker0's on a Docker host), so
   * that their orted (and a host's own orted in node-sharing launches) reaches mpirun over the overlay.
   * Default 0.
   */
  hostNetworkContainersPerHost?: number;
  /**
   * A job-wide scratch volume: one directory (a tmpfs of `sizeMiB`, default the kernel's) that every
   * container sees at /scratch, read-write, owned by `user`, removed with the job (scratch.ts). Default none.
   */
  scratch?: { readonly sizeMiB?: number };
}

export type ContainerNetwork = 'own' | 'host';

export interface HostHandle {
  readonly index: number;
  /** `h<index>`: the name the path table uses. */
  readonly name: string;
  readonly netns: string;
  readonly underlayIp: string;
  /** The host's shared tmpfs in the root mount namespace; containers of this host see it at /run/freeflow. */
  readonly sharedDir: string;
}

export interface ContainerHandle {
  /** `ff-<job>-h<i>c<j>` (`h<i>n<j>` with host networking): hostname; mpirun's hostfile uses it. */
  readonly name: string;
  readonly host: number;
  readonly index: number;
  /** `own`: its own network namespace on the host's bridge; `host`: the host's network namespace. */
  readonly network: ContainerNetwork;
  /** The container's own namespace, or its host's for host networking. */
  readonly netns: string;
  /** On eth0, or for host networking the host bridge's overlay address (its orted's address for mpirun). */
  readonly overlayIp: string;
  /** Pid (in the root pid namespace) of the container's init, pid 1 inside. */
  readonly initPid: number;
}

export interface LauncherHandle {
  readonly netns: string;
  readonly overlayIp: string;
}

export interface Cluster {
  readonly jobId: string;
  readonly hosts: readonly HostHandle[];
  readonly containers: readonly ContainerHandle[];
  readonly launcher: LauncherHandle;
  /** "10.244.0.0/16": for oob_tcp_if_include / btl_tcp_if_include. */
  readonly overlaySubnet: string;
  readonly containerMtu: number;
  readonly underlayMtu: number;
  /** /run/freeflow-jobs/<job> */
  readonly stateDir: string;
  /** The value for FFRUN_CONTAINER_MAP. */
  readonly containerMapFile: string;
  /** Who runs in the containers; owns the hosts' shared directories. */
  readonly user: { readonly uid: number; readonly gid: number };
  /** The scratch volume in the root mount namespace (containers see it at /scratch), if the request asked for one. */
  readonly scratchDir: string | undefined;
  /** Absolute path of ffrun-rsh, for `--mca plm_rsh_agent`. */
  readonly rshAgent: string;
  /**
   * Runs argv inside a container (all its namespaces, working directory `options.cwd` or /) through the
   * rsh agent, so it gets the agent's clean environment: PATH, HOME, LANG and the OMPI_*, PMIX_*,
   * FREEFLOW_*, UCX_*, LD_LIBRARY_PATH variables of `options.env` (default: this process's environment).
   */
  execInContainer(container: ContainerHandle, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Runs argv in a host's network namespace (`ip netns exec`, which also gives it that namespace's /sys). */
  execInHost(host: HostHandle, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Runs argv in the launcher's network namespace (root pid and mount namespaces, the machine's /sys), where mpirun belongs. */
  execInLauncher(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** The hosts' ffagents (empty unless the request asked for them). */
  readonly agents: readonly AgentHandle[];
  /**
   * Registers the job (its key, the hosts' shared directories, the containers' uid/gid, the host list)
   * on every agent with `lease=1`, over control connections held until destroy() (or this process's
   * death) ends them, and says per host (in host order) whether its agent accepted: the plan's
   * reachability probe. An agent that did not start or does not answer is a host state, not an error.
   * A job registered before on this cluster is removed from the agents first.
   */
  registerJobWithAgents(key: string): Promise<HostAgentState[]>;
  /** Idempotent; removes everything; safe to call after a partial set-up; never leaves processes. */
  destroy(): Promise<void>;
}

export type ProgressReporter = (step: string) => void;
