import { z } from 'zod';
import { FfError } from '../errors';
import type { ClusterRequest } from './types';

/** Overlay addresses are 10.244.<host+1>.<container+2> and underlay ones 10.200.0.<host+1>: these bound the sizes. */
export const MAX_HOSTS = 254;
export const MAX_CONTAINERS_PER_HOST = 253;
/** VXLAN over IPv4 adds 50 bytes; the underlay MTU is the container MTU plus this (at least 1500). */
export const VXLAN_OVERHEAD = 50;
const MAX_UNDERLAY_MTU = 65535;
const MIN_CONTAINER_MTU = 1280;
export const DEFAULT_CONTAINER_MTU = 1450;

const sizeMiB = z.number().int().positive();

const clusterRequestSchema = z
  .object({
    jobId: z.string().regex(/^[a-z0-9]{6}$/, 'must be 6 characters from [a-z0-9]'),
    hosts: z.number().int().min(1).max(MAX_HOSTS),
    containersPerHost: z.number().int().min(1).max(MAX_CONTAINERS_PER_HOST),
    containerMtu: z.number().int().min(MIN_CONTAINER_MTU).max(MAX_UNDERLAY_MTU - VXLAN_OVERHEAD).optional(),
    sharedDirSizeMiB: sizeMiB.optional(),
    shmSizeMiB: sizeMiB.optional(),
    volumes: z
      .array(z.string().regex(/^\/[^\0\n]*$/, 'must be an absolute path'))
      .refine((paths) => paths.every((p) => !/^\/dev\/shm(\/|$)/.test(p)), 'cannot be under /dev/shm, which is private to each container')
      .optional(),
  })
  .strict();

export interface ResolvedClusterRequest {
  readonly jobId: string;
  readonly hosts: number;
  readonly containersPerHost: number;
  readonly containerMtu: number;
  readonly underlayMtu: number;
  /** undefined: the kernel's tmpfs default (half of RAM; pages are only used when touched). */
  readonly sharedDirSizeMiB: number | undefined;
  readonly shmSizeMiB: number | undefined;
  readonly volumes: readonly string[];
}

/** Validates a request once, at the module boundary, and fills in the defaults. */
export function resolveClusterRequest(request: ClusterRequest): ResolvedClusterRequest {
  const parsed = clusterRequestSchema.safeParse(request);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`);
    throw new FfError('CLUSTER_REQUEST_INVALID', `invalid local cluster request: ${problems.join('; ')}`, {
      hint: `give jobId as 6 characters [a-z0-9], 1-${MAX_HOSTS} hosts, 1-${MAX_CONTAINERS_PER_HOST} containers per host, ` +
        `containerMtu ${MIN_CONTAINER_MTU}-${MAX_UNDERLAY_MTU - VXLAN_OVERHEAD}, sizes as positive whole MiB, volumes as absolute paths outside /dev/shm`,
      notes: problems,
    });
  }
  const containerMtu = parsed.data.containerMtu ?? DEFAULT_CONTAINER_MTU;
  return {
    jobId: parsed.data.jobId,
    hosts: parsed.data.hosts,
    containersPerHost: parsed.data.containersPerHost,
    containerMtu,
    underlayMtu: Math.max(1500, containerMtu + VXLAN_OVERHEAD),
    sharedDirSizeMiB: parsed.data.sharedDirSizeMiB,
    shmSizeMiB: parsed.data.shmSizeMiB,
    volumes: parsed.data.volumes ?? [],
  };
}
