import * as path from 'node:path';
import { FfError } from '../../errors';
import { AGENT_PORT } from '../../cluster/agents';
import { componentPathSetting, CONTAINER_SHARED_DIR, jobMcaSettings, mpirunJobArgs } from '../../launcher/mpirun-invocation';
import { OSC_WITH_TCP_PAIRS } from '../../orchestrator/osc-selection';
import type { JobSpec } from '../../spec/schema';
import { REPO_ROOT } from '../../util/repo-root';
import { assertRenderableOnKubernetes, numericUser } from './support';

/**
 * The Kubernetes manifests of a job spec (docs/kubernetes.md): an MPIJob for the MPI operator
 * (kubeflow.org/v2beta1) whose worker pods are the job's containers, and a DaemonSet that owns the job's
 * shared directory on every node and runs the freeflow agent there. Pure data; write.ts prints it.
 */

/** Where the image holds the repository's build (build/btl, build/bin): relative program paths resolve here. */
export const IMAGE_REPO_ROOT = '/opt/freeflow';
/** The root of the per-job shared directories on every node (the agent's, as in deploy/k8s). */
export const NODE_SHARED_ROOT = '/run/freeflow';
/** The root of the agents' control directories on every node. */
export const NODE_CONTROL_ROOT = '/run/ffagent';
/** The environment variable that carries the pod's node name (downward API spec.nodeName). */
export const NODE_NAME_ENV = 'FREEFLOW_NODE_NAME';
/** Label of every object and pod of one job. */
export const JOB_LABEL = 'freeflow.dev/job';

export interface RenderOptions {
  /** The image of the job's pods and of the node DaemonSet; the spec's `image` when absent. */
  readonly image?: string | undefined;
  readonly namespace?: string | undefined;
  /** The node agents' TCP port (host network): jobs that run at once on one node need different ports. */
  readonly agentPort?: number | undefined;
}

export interface Manifest {
  /** File name under `-o DIR`; files apply in name order (kubectl apply -f DIR). */
  readonly file: string;
  readonly object: Record<string, unknown>;
}

type EnvVar = { name: string; value: string } | { name: string; valueFrom: { fieldRef: { fieldPath: string } } };

const nodeNameEnv: EnvVar = { name: NODE_NAME_ENV, valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };

/**
 * The program's path in the image, where the repository's files are at IMAGE_REPO_ROOT: a path in the
 * repository, or relative with a `/` (a spec's paths are relative to the repository), moves there; a bare
 * name stays a PATH lookup, any other absolute path stays as it is.
 */
export function commandInImage(command: string): string {
  if (!path.isAbsolute(command)) return command.includes('/') ? path.posix.join(IMAGE_REPO_ROOT, command) : command;
  const relative = path.relative(REPO_ROOT, command);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return command;
  return path.posix.join(IMAGE_REPO_ROOT, relative);
}

/** Minimal privileges that root needs to create, chown and remove the job's directory, and the agent to chown job sockets. */
function rootWithFileCapabilities(): Record<string, unknown> {
  return {
    runAsUser: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function metadata(name: string, spec: JobSpec, options: RenderOptions, component: string): Record<string, unknown> {
  return {
    name,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    labels: labels(spec, component),
  };
}

function labels(spec: JobSpec, component: string): Record<string, string> {
  return { 'app.kubernetes.io/part-of': 'freeflow', 'app.kubernetes.io/component': component, [JOB_LABEL]: spec.name };
}

/** The mpirun command line the launcher pod runs: the MCA settings ffrun gives mpirun, minus those of its own cluster. */
export function launcherArgs(spec: JobSpec, root: boolean): string[] {
  const btlDir = path.posix.join(IMAGE_REPO_ROOT, 'build', 'btl');
  // The operator's hostfile lists the workers with slotsPerWorker slots each, in order: by slot fills
  // worker after worker (placement fill), by node deals ranks out one per worker (round-robin).
  const mapBy = spec.placement === 'fill' ? 'slot' : 'node';
  const launcherSpecific: Array<[string, string]> = spec.network === 'freeflow' ? [['btl_freeflow_dir', CONTAINER_SHARED_DIR]] : [];
  // Workers on other nodes are tcp pairs to the BTL: windows spanning them need osc ucx (docs/onesided.md).
  const mca = jobMcaSettings(spec.network, OSC_WITH_TCP_PAIRS, spec.mca, launcherSpecific);
  const program = { command: commandInImage(spec.program.command), args: spec.program.args };
  // (pods of one node share its cores: Open MPI's binding would pin every worker's first rank to core 0)
  const job = { mapBy, mca, ...(spec.network === 'freeflow' ? { btlDir } : {}) } as const;
  return [...(root ? ['--allow-run-as-root'] : []), '-np', String(spec.ranks), ...mpirunJobArgs({ env: spec.env, program }, job)];
}

function launcherTemplate(spec: JobSpec, image: string, user: { uid: number; gid: number }): Record<string, unknown> {
  const env: EnvVar[] = [nodeNameEnv];
  if (spec.network === 'freeflow') {
    const setting = componentPathSetting(path.posix.join(IMAGE_REPO_ROOT, 'build', 'btl'));
    env.push({ name: setting.name, value: setting.value });
  }
  return mpiPodTemplate(spec, 'launcher', user, {
    image,
    command: ['mpirun'],
    args: launcherArgs(spec, user.uid === 0),
    env,
    resources: { requests: { cpu: '100m', memory: '128Mi' } },
  });
}

function podUser(user: { uid: number; gid: number }): Record<string, unknown> {
  return { runAsUser: user.uid, runAsGroup: user.gid, allowPrivilegeEscalation: false };
}

/** A pod of the MPIJob: its role's labels, no service account token, one container (named for the role) running as the job's user. */
function mpiPodTemplate(
  spec: JobSpec,
  role: 'launcher' | 'worker',
  user: { uid: number; gid: number },
  container: Record<string, unknown>,
  podSpec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    metadata: { labels: labels(spec, role) },
    spec: { automountServiceAccountToken: false, containers: [{ name: role, ...container, securityContext: podUser(user) }], ...podSpec },
  };
}

function workerTemplate(spec: JobSpec, image: string, user: { uid: number; gid: number }): Record<string, unknown> {
  const slots = spec.cluster.slotsPerContainer;
  const freeflow = spec.network === 'freeflow';
  return mpiPodTemplate(
    spec,
    'worker',
    user,
    {
      image,
      // The operator's launcher reaches workers over ssh. sshd gives its sessions (orted and the ranks)
      // a fresh environment, so the node name reaches them through sshd's SetEnv (Kubernetes expands
      // $(VAR) from the container's env); node names are DNS names, nothing to quote.
      command: ['/usr/sbin/sshd'],
      args: ['-De', '-o', `SetEnv=${NODE_NAME_ENV}=$(${NODE_NAME_ENV})`],
      env: [nodeNameEnv],
      // Each slot is a rank that polls its queues: one CPU each.
      resources: { requests: { cpu: String(slots) }, limits: { cpu: String(slots) } },
      ...(freeflow ? { volumeMounts: [{ name: 'freeflow-shared', mountPath: CONTAINER_SHARED_DIR }] } : {}),
    },
    // The DaemonSet creates the directory (owner and mode as the BTL requires); until it has, the kubelet
    // retries the mount, so the order in which pods start does not matter.
    freeflow ? { volumes: [{ name: 'freeflow-shared', hostPath: { path: jobSharedDir(spec), type: 'Directory' } }] } : {},
  );
}

export function jobSharedDir(spec: Pick<JobSpec, 'name'>): string {
  return path.posix.join(NODE_SHARED_ROOT, spec.name);
}

function mpiJob(spec: JobSpec, image: string, options: RenderOptions, user: { uid: number; gid: number }): Record<string, unknown> {
  const workers = spec.cluster.hosts * spec.cluster.containersPerHost;
  return {
    apiVersion: 'kubeflow.org/v2beta1',
    kind: 'MPIJob',
    metadata: metadata(spec.name, spec, options, 'mpijob'),
    spec: {
      slotsPerWorker: spec.cluster.slotsPerContainer,
      mpiImplementation: 'OpenMPI',
      // mpirun starts only once every worker's sshd is up
      launcherCreationPolicy: 'WaitForWorkersReady',
      runLauncherAsWorker: false,
      runPolicy: {
        // Workers go when the job ends; the launcher stays for its log (kubectl logs) until the MPIJob is deleted.
        cleanPodPolicy: 'Running',
        // A failed MPI job is reported, not restarted (as ffrun does).
        backoffLimit: 0,
        activeDeadlineSeconds: spec.timeoutSeconds,
      },
      mpiReplicaSpecs: {
        Launcher: { replicas: 1, restartPolicy: 'Never', template: launcherTemplate(spec, image, user) },
        Worker: { replicas: workers, restartPolicy: 'Never', template: workerTemplate(spec, image, user) },
      },
    },
  };
}

/**
 * One pod per node: its init containers create the node's root of shared directories (root, 0711: jobs
 * can reach their own directory but not list the others) and the job's directory (the job's user, 0700,
 * as ffrun makes it and the BTL accepts: owned by the rank's user, not a symlink, nobody else can write);
 * its container runs ffagent on the node's network and removes the job's directory when the pod is
 * deleted (preStop). OnDelete: an update must not restart the pods, whose preStop would remove the
 * directory under running ranks.
 */
function nodeDaemonSet(spec: JobSpec, image: string, options: RenderOptions, user: { uid: number; gid: number }): Record<string, unknown> {
  const name = `${spec.name}-ffnode`;
  const port = options.agentPort ?? AGENT_PORT;
  const jobDir = jobSharedDir(spec);
  const bin = (program: string): string => path.posix.join(IMAGE_REPO_ROOT, 'build', 'bin', program);
  const sharedMount = { name: 'shared-root', mountPath: NODE_SHARED_ROOT };
  const controlSocket = path.posix.join(NODE_CONTROL_ROOT, 'control.sock');
  const podLabels = labels(spec, 'node');
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: metadata(name, spec, options, 'node'),
    spec: {
      selector: { matchLabels: podLabels },
      updateStrategy: { type: 'OnDelete' },
      template: {
        metadata: { labels: podLabels },
        spec: {
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 10,
          initContainers: [
            {
              name: 'shared-root',
              image,
              command: ['install', '-d', '-m', '0711', '-o', '0', '-g', '0', NODE_SHARED_ROOT],
              securityContext: rootWithFileCapabilities(),
              volumeMounts: [sharedMount],
            },
            {
              name: 'job-dir',
              image,
              command: ['install', '-d', '-m', '0700', '-o', String(user.uid), '-g', String(user.gid), jobDir],
              securityContext: rootWithFileCapabilities(),
              volumeMounts: [sharedMount],
            },
          ],
          containers: [
            {
              name: 'ffagent',
              image,
              command: [bin('ffagent'), '--control', controlSocket, '--listen', `$(NODE_IP):${port}`],
              env: [{ name: 'NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }, nodeNameEnv],
              ports: [{ name: 'ffagent', containerPort: port, hostPort: port, protocol: 'TCP' }],
              securityContext: rootWithFileCapabilities(),
              resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '200m', memory: '64Mi' } },
              livenessProbe: { exec: { command: [bin('ffagentctl'), controlSocket, 'ping'] }, periodSeconds: 10, timeoutSeconds: 2 },
              lifecycle: { preStop: { exec: { command: ['rm', '-rf', '--one-file-system', jobDir] } } },
              volumeMounts: [
                // per-job mounts made later on the node (a tmpfs per job) must show up inside the agent
                { ...sharedMount, mountPropagation: 'HostToContainer' },
                { name: 'control', mountPath: NODE_CONTROL_ROOT },
              ],
            },
          ],
          volumes: [
            { name: 'shared-root', hostPath: { path: NODE_SHARED_ROOT, type: 'DirectoryOrCreate' } },
            // one control directory per job's agent (root, 0755 as the kubelet creates it: the agent refuses one others can write)
            { name: 'control', hostPath: { path: path.posix.join(NODE_CONTROL_ROOT, spec.name), type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  };
}

/** The manifests of a validated spec, in apply order; throws SPEC_INVALID / USAGE / TOO_MANY_RANKS naming the fix. */
export function renderKubernetes(spec: JobSpec, options: RenderOptions, specLabel: string): Manifest[] {
  assertRenderableOnKubernetes(spec, specLabel);
  const image = options.image ?? spec.image;
  if (image === undefined) {
    throw new FfError('USAGE', `no container image for job ${spec.name}: Kubernetes runs every pod from an image`, {
      hint: 'give --image REGISTRY/NAME:TAG or `image:` in the job spec; docs/kubernetes.md says what the image must hold',
    });
  }
  const { hosts, containersPerHost, slotsPerContainer } = spec.cluster;
  const capacity = hosts * containersPerHost * slotsPerContainer;
  if (spec.ranks > capacity) {
    throw new FfError('TOO_MANY_RANKS', `${spec.ranks} ranks do not fit ${hosts * containersPerHost} workers x ${slotsPerContainer} slots (${capacity})`, {
      hint: 'raise cluster.hosts, cluster.containersPerHost or cluster.slotsPerContainer, or lower ranks',
    });
  }
  const user = numericUser(spec.user)!;
  const manifests: Manifest[] = [];
  if (spec.network === 'freeflow') manifests.push({ file: `10-${spec.name}-ffnode.daemonset.yaml`, object: nodeDaemonSet(spec, image, options, user) });
  manifests.push({ file: `20-${spec.name}.mpijob.yaml`, object: mpiJob(spec, image, options, user) });
  return manifests;
}
