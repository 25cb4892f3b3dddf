import { z } from 'zod';
import { FfError } from '../errors';
import { ROOT_USER, type ContainerUser, type Volume } from './oci';
import type { ClusterRequest } from './types';

/** Overlay addresses are 10.244.<host+1>.<container+2> and underlay ones 10.200.0.<host+1>: these bound the sizes. */
export const MAX_HOSTS = 254;
export const MAX_CONTAINERS_PER_HOST = 253;
/** VXLAN over IPv4 adds 50 bytes; the underlay MTU is the container MTU plus this (at least 1500). */
export const VXLAN_OVERHEAD = 50;
const MAX_UNDERLAY_MTU = 65535;
const MIN_CONTAINER_MTU = 1280;
export const DEFAULT_CONTAINER_MTU = 1450;
/** Host-network containers are few by nature (a benchmark's host-mode ranks, a per-host daemon). */
export const MAX_HOST_NETWORK_CONTAINERS_PER_HOST = 8;

const sizeMiB = z.number().int().positive();
const id = z.number().int().min(0).max(0xfffffffe);
const volumeList = z
  .array(z.string().regex(/^\/[^\0\n]*$/, 'must be an absolute path'))
  .refine((paths) => paths.every((p) => !/^\/dev\/shm(\/|$)/.test(p)), 'cannot be under /dev/shm, which is private to each container')
  .refine((paths) => paths.every((p) => !/^\/run\/freeflow(-jobs)?(\/|$)/.test(p)), 'cannot be /run/freeflow or under /run/freeflow-jobs');

const clusterRequestSchema = z
  .object({
    jobId: z.string().regex(/^[a-z0-9]{6}$/, 'must be 6 characters from [a-z0-9]'),
    hosts: z.number().int().min(1).max(MAX_HOSTS),
    containersPerHost: z.number().int().min(1).max(MAX_CONTAINERS_PER_HOST),
    containerMtu: z
      .number()
      .int()
      .min(MIN_CONTAINER_MTU)
      .max(MAX_UNDERLAY_MTU - VXLAN_OVERHEAD)
      .optional(),
    underlayMtu: z.number().int().min(1500).max(MAX_UNDERLAY_MTU).optional(),
    sharedDirSizeMiB: sizeMiB.optional(),
    shmSizeMiB: sizeMiB.optional(),
    volumes: volumeList.optional(),
    readOnlyVolumes: volumeList.optional(),
    user: z.strictObject({ uid: id, gid: id }).optional(),
    agents: z.boolean().optional(),
    hostNetworkContainersPerHost: z.number().int().min(0).max(MAX_HOST_NETWORK_CONTAINERS_PER_HOST).optional(),
    scratch: z.strictObject({ sizeMiB: sizeMiB.optional() }).optional(),
  })
  .strict()
  .refine((r) => r.underlayMtu === undefined || r.underlayMtu >= (r.containerMtu ?? DEFAULT_CONTAINER_MTU) + VXLAN_OVERHEAD, {
    path: ['underlayMtu'],
    message: `must be at least containerMtu + ${VXLAN_OVERHEAD} (the VXLAN header)`,
  });

export interface ResolvedClusterRequest {
  readonly jobId: string;
  readonly hosts: number;
  readonly containersPerHost: number;
  readonly containerMtu: number;
  readonly underlayMtu: number;
  /** undefined: the kernel's tmpfs default (half of RAM; pages are only used when touched). */
  readonly sharedDirSizeMiB: number | undefined;
  readonly shmSizeMiB: number | undefined;
  /** Mounted in the order they must be (parents before children), each read-write or read-only. */
  readonly volumes: readonly Volume[];
  readonly user: ContainerUser;
  /** Start one ffagent per host (for host-network handoff). */
  readonly agents: boolean;
  /** Containers per host that share the host's network namespace (after the `containersPerHost` others). */
  readonly hostNetworkContainersPerHost: number;
  /** The job-wide scratch volume (scratch.ts), or none. */
  readonly scratch: { readonly sizeMiB: number | undefined } | undefined;
}

/** Validates a request once, at the module boundary, and fills in the defaults. */
export function resolveClusterRequest(request: ClusterRequest): ResolvedClusterRequest {
  const parsed = clusterRequestSchema.safeParse(request);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`);
    throw new FfError('CLUSTER_REQUEST_INVALID', `invalid local cluster request: ${problems.join('; ')}`, {
      hint:
        `give jobId as 6 characters [a-z0-9], 1-${MAX_HOSTS} hosts, 1-${MAX_CONTAINERS_PER_HOST} containers per host, ` +
        `containerMtu ${MIN_CONTAINER_MTU}-${MAX_UNDERLAY_MTU - VXLAN_OVERHEAD}, underlayMtu from containerMtu + ${VXLAN_OVERHEAD} (at least 1500) to ${MAX_UNDERLAY_MTU}, hostNetworkContainersPerHost 0-${MAX_HOST_NETWORK_CONTAINERS_PER_HOST}, sizes as positive whole MiB, volumes as absolute paths outside /dev/shm, ` +
        'user as {uid, gid} numbers',
      notes: problems,
    });
  }
  const containerMtu = parsed.data.containerMtu ?? DEFAULT_CONTAINER_MTU;
  return {
    jobId: parsed.data.jobId,
    hosts: parsed.data.hosts,
    containersPerHost: parsed.data.containersPerHost,
    containerMtu,
    underlayMtu: parsed.data.underlayMtu ?? Math.max(1500, containerMtu + VXLAN_OVERHEAD),
    sharedDirSizeMiB: parsed.data.sharedDirSizeMiB,
    shmSizeMiB: parsed.data.shmSizeMiB,
    volumes: orderVolumes(parsed.data.volumes ?? [], parsed.data.readOnlyVolumes ?? []),
    user: parsed.data.user ?? ROOT_USER,
    agents: parsed.data.agents ?? false,
    hostNetworkContainersPerHost: parsed.data.hostNetworkContainersPerHost ?? 0,
    scratch: parsed.data.scratch === undefined ? undefined : { sizeMiB: parsed.data.scratch.sizeMiB },
  };
}

/**
 * One mount per directory, parents before children. A read-write directory at or below a read-only one
 * is dropped (it stays read-only: a job must not be able to write below what is protected), and a
 * directory given both ways is read-only.
 */
export function orderVolumes(readWrite: readonly string[], readOnly: readonly string[]): Volume[] {
  const clean = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);
  const protectedDirs = [...new Set(readOnly.map(clean))];
  const below = (dir: string, parent: string) => dir === parent || dir.startsWith(parent === '/' ? '/' : parent + '/');
  const writable = [...new Set(readWrite.map(clean))].filter((dir) => !protectedDirs.some((parent) => below(dir, parent)));
  const volumes = [...writable.map((p) => ({ path: p, readOnly: false })), ...protectedDirs.map((p) => ({ path: p, readOnly: true }))];
  return volumes.sort((a, b) => a.path.split('/').length - b.path.split('/').length);
}
