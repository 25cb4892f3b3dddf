import { FfError } from '../errors';
import { IMAGE_PATTERN } from '../spec/schema';

export const RENDER_USAGE = `ffrun render k8s <job.yaml> [--image IMAGE] [-o DIR] [--namespace NS] [--agent-port PORT]
                       the Kubernetes manifests of a job (MPI operator MPIJob + node DaemonSet): docs/kubernetes.md`;

export interface RenderArgs {
  readonly target: 'k8s';
  readonly specPath: string;
  readonly outDir: string | undefined;
  readonly image: string | undefined;
  readonly namespace: string | undefined;
  readonly agentPort: number | undefined;
}

/** A Kubernetes namespace name: an RFC 1123 label. */
const NAMESPACE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VALUE_FLAGS = ['-o', '--image', '--namespace', '--agent-port'] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];

function usage(message: string, hint = `usage: ${RENDER_USAGE.split('\n')[0]}`): FfError {
  return new FfError('USAGE', message, { hint });
}

/** Parses `render`'s arguments (after the word `render`); anything unknown, repeated or malformed is a usage error. */
export function parseRenderArgs(args: readonly string[]): RenderArgs {
  const [target, ...rest] = args;
  if (target !== 'k8s') throw usage(target === undefined ? 'ffrun render needs a target: k8s' : `ffrun render: unknown target ${target} (the only one is k8s)`);
  const values = new Map<ValueFlag, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if ((VALUE_FLAGS as readonly string[]).includes(arg)) {
      const flag = arg as ValueFlag;
      const value = rest[i + 1];
      if (value === undefined || value === '') throw usage(`ffrun render k8s: ${flag} needs a value`);
      if (values.has(flag)) throw usage(`ffrun render k8s: ${flag} given twice`);
      values.set(flag, value);
      i++;
    } else if (arg.startsWith('-')) {
      throw usage(`ffrun render k8s: unknown option ${arg}`);
    } else positional.push(arg);
  }
  if (positional.length !== 1) {
    throw usage(positional.length === 0 ? 'ffrun render k8s needs a job spec file' : `ffrun render k8s takes one job spec file, got ${positional.join(' ')}`);
  }
  const image = values.get('--image');
  if (image !== undefined && !IMAGE_PATTERN.test(image)) {
    throw usage(`--image ${image} is not a container image reference`, 'give REGISTRY/NAME[:TAG][@sha256:DIGEST], e.g. registry.example.org/freeflow:1.0');
  }
  const namespace = values.get('--namespace');
  if (namespace !== undefined && !NAMESPACE_PATTERN.test(namespace)) {
    throw usage(
      `--namespace ${namespace} is not a Kubernetes namespace name`,
      'use 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit',
    );
  }
  const portText = values.get('--agent-port');
  const agentPort = portText === undefined ? undefined : Number(portText);
  if (agentPort !== undefined && !(/^[0-9]{1,5}$/.test(portText!) && agentPort >= 1 && agentPort <= 65535)) {
    throw usage(`--agent-port ${portText} is not a TCP port`, 'use a whole number from 1 to 65535 (default 7470)');
  }
  return { target, specPath: positional[0]!, outDir: values.get('-o'), image, namespace, agentPort };
}
