import { z } from 'zod';

/**
 * The job spec: what to run, on how big a local cluster, over which network. Every field has a `fix`
 * text so that a validation error can say how to correct it (see validate.ts).
 */
export const NETWORK_MODES = ['overlay', 'freeflow'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/**
 * `freeflow`: the freeflow BTL for co-located containers, TCP over the overlay across hosts. `overlay` is
 * today's status quo, for comparison. A spec or flag that asks for `freeflow` gets it or a
 * NETWORK_UNAVAILABLE error (BTL not built), never a silent fallback.
 */
export const DEFAULT_NETWORK: NetworkMode = 'freeflow';

/**
 * How traffic between ranks on different hosts travels when the network is `freeflow` (issue 8):
 * - `tcp`: the tcp BTL over the overlay (TCP over VXLAN), as before the inter-host planes existed;
 * - `handoff`: host-network handoff, path letter `h`: each host's ffagent hands the rank a TCP socket
 *   connected over the underlay (docs/agent.md);
 * - `router`: the FreeFlow router, path letter `r`: ranks hand fragments to their host's ffagent through
 *   shared memory and the agents forward them to each other with UCX (docs/agent.md, "The `r` plane");
 * - `auto`: the orchestrator chooses; today that is `tcp` (see orchestrator/decide-paths.ts for why).
 */
export const INTER_HOST_MODES = ['auto', 'handoff', 'router', 'tcp'] as const;
/** How mpirun starts the ranks (docs/node-sharing.md): auto = host where it can, else container. */
export const LAUNCH_MODES = ['auto', 'host', 'container'] as const;
export type InterHostMode = (typeof INTER_HOST_MODES)[number];

/** Where the ranks are started: ffrun's own mpirun (local) or srun of a real Slurm (docs/slurm.md). */
export const BACKENDS = ['local', 'slurm'] as const;

/** fill: container after container, host after host. round-robin: one rank per container, hosts interleaved. */
export const PLACEMENT_STRATEGIES = ['fill', 'round-robin'] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

export const LIMITS = {
  hosts: 8,
  containersPerHost: 16,
  slotsPerContainer: 64,
  /** The most ranks any cluster can hold: hosts x containersPerHost x slotsPerContainer at their limits. */
  ranks: 8 * 16 * 64,
  timeoutSeconds: 86_400,
} as const;

/**
 * The hosts' network (underlay) MTU of the local cluster, in bytes: 1500 by default, 9000 for jumbo
 * frames. Containers (their overlay) get 50 bytes less (VXLAN over IPv4) unless `cluster.containerMtu`
 * asks for less: Docker's overlay driver keeps 1450 whatever the host network, so "underlay 9000,
 * containers 1450" is a real configuration.
 */
export const MTU = { min: 1500, max: 65535, default: 1500, vxlanOverhead: 50, containerMin: 1280 } as const;

/** The containers' (overlay) MTU of a validated spec. */
export function containerMtuOf(cluster: { readonly mtu?: number | undefined; readonly containerMtu?: number | undefined }): number {
  return cluster.containerMtu ?? (cluster.mtu ?? MTU.default) - MTU.vxlanOverhead;
}

/**
 * The job-wide scratch volume (`scratch:` in a spec, `--scratch [SIZE]` on the command line): `true` for
 * the default size (the kernel's tmpfs default, half of RAM, used only when written) or a size with a unit
 * (powers of 1024), from 1M to 1T.
 */
export const SCRATCH_SIZE_PATTERN = /^([1-9][0-9]{0,12})([KMGT])(iB|B)?$/;
const SCRATCH_UNIT_KIB: Readonly<Record<string, number>> = { K: 1, M: 1024, G: 1024 ** 2, T: 1024 ** 3 };
const SCRATCH_KIB = { min: 1024, max: 1024 ** 3 } as const;

/** The scratch size in MiB (rounded up); null when `text` is not a size from 1M to 1T. */
export function parseScratchSize(text: string): number | null {
  const match = SCRATCH_SIZE_PATTERN.exec(text);
  if (!match) return null;
  const kib = Number(match[1]) * SCRATCH_UNIT_KIB[match[2]!]!;
  return kib >= SCRATCH_KIB.min && kib <= SCRATCH_KIB.max ? Math.ceil(kib / 1024) : null;
}

/** What the cluster is asked for: no scratch volume, or one of `sizeMiB` (undefined: the default size). */
export function scratchRequest(scratch: JobSpec['scratch']): { sizeMiB?: number } | undefined {
  if (scratch === undefined || scratch === false) return undefined;
  if (scratch === true) return {};
  // Validated by the schema: a size here always parses.
  const sizeMiB = parseScratchSize(String(scratch));
  return sizeMiB === null ? {} : { sizeMiB };
}

const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MCA_NAME_PATTERN = /^[a-z0-9_]+$/;
/** A user name as Debian's adduser allows it, a uid, or uid:gid. */
export const USER_PATTERN = /^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}(:[0-9]{1,10})?)$/;
/** A container image reference (registry/name[:tag][@sha256:digest]), as Docker's reference grammar has it. */
export const IMAGE_PATTERN =
  /^(?=.{1,255}$)([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?\/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(\/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

/**
 * What each field must be, by dotted path (`*` stands for any key or index), worded for both YAML specs
 * and command-line flags: a validation error quotes it as the fix.
 */
export const FIELD_FIXES: Readonly<Record<string, string>> = {
  '': 'a job spec is a mapping with name, cluster, ranks and program (see jobs/demo.yaml)',
  name: 'use 1-40 lower-case letters, digits and dashes, e.g. my-job',
  cluster: 'give hosts and containersPerHost (and optionally slotsPerContainer)',
  'cluster.hosts': `use a whole number of simulated hosts from 1 to ${LIMITS.hosts}`,
  'cluster.containersPerHost': `use a whole number of containers per host from 1 to ${LIMITS.containersPerHost}`,
  'cluster.slotsPerContainer': `use a whole number of rank slots per container from 1 to ${LIMITS.slotsPerContainer} (default 1)`,
  'cluster.mtu': `use the hosts' network MTU in bytes, a whole number from ${MTU.min} to ${MTU.max} (default ${MTU.default}; 9000 for jumbo frames); containers get ${MTU.vxlanOverhead} less unless containerMtu says otherwise`,
  'cluster.containerMtu': `use the containers' (overlay) MTU in bytes, a whole number from ${MTU.containerMin} to the hosts' network MTU minus ${MTU.vxlanOverhead} (the VXLAN header), e.g. 1450 on a 9000-byte host network (default: the hosts' MTU minus ${MTU.vxlanOverhead})`,
  ranks: `use a whole number of MPI ranks from 1 to ${LIMITS.ranks} (at most hosts x containersPerHost x slotsPerContainer)`,
  placement: `use one of: ${PLACEMENT_STRATEGIES.join(', ')} (default fill)`,
  network: `use one of: ${NETWORK_MODES.join(', ')} (default ${DEFAULT_NETWORK})`,
  interHost: `use one of: ${INTER_HOST_MODES.join(', ')} (default auto); handoff and router need network freeflow`,
  launch: `use one of: ${LAUNCH_MODES.join(', ')} (default auto: one orted per host for root jobs on network freeflow, one per container otherwise); host needs network freeflow and a root job`,
  backend: `use one of: ${BACKENDS.join(', ')} (default local); slurm runs the ranks through srun (docs/slurm.md)`,
  slurmConf: 'give the slurm.conf of a running Slurm (only with backend slurm; without it ffrun boots an embedded Slurm)',
  program: 'give command (and optionally args), e.g. {command: build/bin/ffcheck_allpairs, args: []}',
  'program.command': 'give the program to run: a path or a command on PATH',
  'program.args': 'give a list of strings',
  'program.args.*': 'quote the argument so that it is read as a string, e.g. "10"',
  env: 'give a mapping of environment variable names to string values',
  'env.*': 'use a name of letters, digits and _ (not starting with a digit) and a quoted string value',
  mca: 'give a mapping of extra Open MPI MCA parameter names to string values',
  'mca.*': 'use an MCA parameter name (lower-case letters, digits, _) and a quoted string value',
  timeoutSeconds: `use a whole number of seconds from 1 to ${LIMITS.timeoutSeconds} (default 300)`,
  scratch:
    'use true for a job-wide scratch volume at /scratch (FFRUN_SCRATCH; default size half of RAM, used only when written), or its size with a unit, e.g. 512M or 2G (K, M, G, T; from 1M to 1T)',
  image:
    "give the container image of the job for backends that run images (Kubernetes: ffrun render k8s), e.g. registry.example.org/freeflow:1.0 (docs/kubernetes.md); the local backend uses the machine's files and ignores it",
  user: 'give the user the ranks run as: a name from the machine\'s /etc/passwd, a uid, or uid:gid, e.g. "65534:65534" (default root)',
};

/**
 * A whole number in 1..max. A value out of range stops at the range check (`abort`), so that it gets one
 * problem naming the field's own limit, not a second one from zod's safe-integer bound on int().
 */
const wholeNumber = (max: number) => z.number().min(1, { abort: true }).max(max, { abort: true }).int();
const stringMap = (keyPattern: RegExp) => z.record(z.string().regex(keyPattern, { error: `is not a valid name (pattern ${keyPattern.source})` }), z.string());

export const jobSpecSchema = z
  .strictObject({
    name: z.string().regex(NAME_PATTERN, { error: 'is not a valid job name' }),
    cluster: z.strictObject({
      hosts: wholeNumber(LIMITS.hosts),
      containersPerHost: wholeNumber(LIMITS.containersPerHost),
      slotsPerContainer: wholeNumber(LIMITS.slotsPerContainer).default(1),
      mtu: z.number().min(MTU.min, { abort: true }).max(MTU.max, { abort: true }).int().optional(),
      containerMtu: z
        .number()
        .min(MTU.containerMin, { abort: true })
        .max(MTU.max - MTU.vxlanOverhead, { abort: true })
        .int()
        .optional(),
    }),
    ranks: wholeNumber(LIMITS.ranks),
    placement: z.enum(PLACEMENT_STRATEGIES).default('fill'),
    network: z.enum(NETWORK_MODES).default(DEFAULT_NETWORK),
    interHost: z.enum(INTER_HOST_MODES).default('auto'),
    launch: z.enum(LAUNCH_MODES).default('auto'),
    backend: z.enum(BACKENDS).optional(),
    slurmConf: z.string().min(1).optional(),
    program: z.strictObject({
      command: z.string().min(1),
      args: z.array(z.string()).default([]),
    }),
    env: stringMap(ENV_NAME_PATTERN).default({}),
    mca: stringMap(MCA_NAME_PATTERN).default({}),
    timeoutSeconds: wholeNumber(LIMITS.timeoutSeconds).default(300),
    user: z.string().regex(USER_PATTERN, { error: 'is not a user name, uid or uid:gid' }).optional(),
    image: z.string().regex(IMAGE_PATTERN, { error: 'is not a container image reference' }).optional(),
    scratch: z.union([z.boolean(), z.string(), z.number()]).optional(),
  })
  .superRefine((spec, context) => {
    // Forcing a freeflow plane on a job that does not use freeflow would be silently ignored: refuse it.
    if (spec.network === 'overlay' && (spec.interHost === 'handoff' || spec.interHost === 'router'))
      context.addIssue({
        code: 'custom',
        path: ['interHost'],
        input: spec.interHost,
        message: 'needs network freeflow (network overlay sends everything over the overlay)',
      });
    // On the overlay a host-wide node would let vader reach across containers: the comparison must not.
    if (spec.network === 'overlay' && spec.launch === 'host')
      context.addIssue({
        code: 'custom',
        path: ['launch'],
        input: spec.launch,
        message: 'needs network freeflow (network overlay keeps every container its own node)',
      });
    if (spec.slurmConf !== undefined && spec.backend !== 'slurm')
      context.addIssue({ code: 'custom', path: ['slurmConf'], input: spec.slurmConf, message: 'needs backend slurm' });
    if (spec.backend === 'slurm' && (spec.launch === 'container' || spec.network === 'overlay'))
      context.addIssue({
        code: 'custom',
        path: ['backend'],
        input: spec.backend,
        message: 'runs one slurmd per host and needs network freeflow with launch auto or host',
      });
    // The overlay's packets carry a VXLAN header inside the hosts' network: they must fit in its MTU.
    const { mtu = MTU.default, containerMtu } = spec.cluster;
    if (containerMtu !== undefined && containerMtu > mtu - MTU.vxlanOverhead)
      context.addIssue({
        code: 'custom',
        path: ['cluster', 'containerMtu'],
        input: containerMtu,
        message: `must be at most the hosts' network MTU ${mtu} minus ${MTU.vxlanOverhead} (${mtu - MTU.vxlanOverhead})`,
      });
    // One check for every form (a number, a word, a size out of range): the message says what a size is.
    if ((typeof spec.scratch === 'string' || typeof spec.scratch === 'number') && parseScratchSize(String(spec.scratch)) === null)
      context.addIssue({ code: 'custom', path: ['scratch'], input: spec.scratch, message: 'is not a scratch size' });
  });

/** A validated job spec; `program.command` is still as written (see resolveProgram). */
export type JobSpec = z.output<typeof jobSpecSchema>;
