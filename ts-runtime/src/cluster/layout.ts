import * as path from 'node:path';
import type { ResolvedClusterRequest } from './request';
import type { ContainerHandle, HostHandle, LauncherHandle } from './types';

/** Every job's state lives below this directory, one subdirectory per job id. */
export const JOBS_ROOT = '/run/freeflow-jobs';
export const OVERLAY_SUBNET = '10.244.0.0/16';
const OVERLAY_PREFIX_LENGTH = 16;
const UNDERLAY_PREFIX_LENGTH = 24;
const LAUNCHER_OVERLAY_IP = '10.244.255.254';

/**
 * Everything a job names: pure data computed from the request, shared by set-up, teardown and tests. A
 * host and a container are what the cluster hands out (types.ts) plus the addresses set-up assigns.
 */
export interface HostLayout extends HostHandle {
  readonly underlayCidr: string;
  /** The bridge's overlay address (10.244.<host+1>.1/16): host-network containers and a host's own orted use it. */
  readonly bridgeOverlayCidr: string;
  readonly containers: readonly ContainerLayout[];
}

/** A container before it runs: its handle has an init pid besides. */
export interface ContainerLayout extends Omit<ContainerHandle, 'initPid'> {
  readonly overlayCidr: string;
}

export interface ClusterLayout {
  readonly jobId: string;
  readonly stateDir: string;
  readonly containerMapFile: string;
  /** OCI bundles, one directory per container. */
  readonly bundlesDir: string;
  /** runc's --root for the job's containers. */
  readonly runcRoot: string;
  readonly fabricNetns: string;
  readonly launcher: LauncherHandle & { readonly overlayCidr: string };
  readonly hosts: readonly HostLayout[];
  /** Every network namespace of the job, in creation order. */
  readonly allNetns: readonly string[];
}

export function jobNetnsPrefix(jobId: string): string {
  return `ff-${jobId}-`;
}

export function jobStateDir(jobId: string): string {
  return path.join(JOBS_ROOT, jobId);
}

export function containerMapFile(stateDir: string): string {
  return path.join(stateDir, 'containers');
}

/** The hosts' ffagents: control sockets and logs (`<host name>.sock`, `<host name>.log`), root-only. */
export function agentsDirOf(stateDir: string): string {
  return path.join(stateDir, 'agents');
}

/** `<host name> <pid> <start time>` of every ffagent the job started (the container map's format). */
export function agentsFileOf(stateDir: string): string {
  return path.join(stateDir, 'agents.pids');
}

export function runcRootOf(stateDir: string): string {
  return path.join(stateDir, 'runc');
}

export function planLayout(request: ResolvedClusterRequest): ClusterLayout {
  const prefix = jobNetnsPrefix(request.jobId);
  const stateDir = jobStateDir(request.jobId);
  const hosts: HostLayout[] = [];
  for (let h = 0; h < request.hosts; h++) {
    const containers: ContainerLayout[] = [];
    for (let c = 0; c < request.containersPerHost; c++) {
      const name = `${prefix}h${h}c${c}`;
      const overlayIp = `10.244.${h + 1}.${c + 2}`;
      containers.push({ name, host: h, index: c, network: 'own', netns: name, overlayIp, overlayCidr: `${overlayIp}/${OVERLAY_PREFIX_LENGTH}` });
    }
    // .1 is free: own containers start at .2. Host-network containers answer on the bridge's address.
    const bridgeOverlayIp = `10.244.${h + 1}.1`;
    const bridgeOverlayCidr = `${bridgeOverlayIp}/${OVERLAY_PREFIX_LENGTH}`;
    for (let n = 0; n < request.hostNetworkContainersPerHost; n++) {
      containers.push({
        name: `${prefix}h${h}n${n}`,
        host: h,
        index: request.containersPerHost + n,
        network: 'host',
        netns: `${prefix}h${h}`,
        overlayIp: bridgeOverlayIp,
        overlayCidr: bridgeOverlayCidr,
      });
    }
    const underlayIp = `10.200.0.${h + 1}`;
    hosts.push({
      index: h,
      name: `h${h}`,
      netns: `${prefix}h${h}`,
      underlayIp,
      underlayCidr: `${underlayIp}/${UNDERLAY_PREFIX_LENGTH}`,
      sharedDir: path.join(stateDir, 'hosts', `h${h}`, 'shared'),
      // Every host answers on the overlay, like docker0: its host-network containers' orted, and in
      // node-sharing launches (docs/node-sharing.md) the host's one orted, reach mpirun from here.
      bridgeOverlayCidr,
      containers,
    });
  }
  const fabricNetns = `${prefix}fabric`;
  const launcher = {
    netns: `${prefix}launcher`,
    overlayIp: LAUNCHER_OVERLAY_IP,
    overlayCidr: `${LAUNCHER_OVERLAY_IP}/${OVERLAY_PREFIX_LENGTH}`,
  };
  const allNetns = [
    fabricNetns,
    launcher.netns,
    ...hosts.flatMap((host) => [host.netns, ...host.containers.filter((container) => container.network === 'own').map((container) => container.netns)]),
  ];
  return {
    jobId: request.jobId,
    stateDir,
    containerMapFile: containerMapFile(stateDir),
    bundlesDir: path.join(stateDir, 'bundles'),
    runcRoot: runcRootOf(stateDir),
    fabricNetns,
    launcher,
    hosts,
    allNetns,
  };
}
