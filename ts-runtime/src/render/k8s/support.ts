import { FfError } from '../../errors';
import type { JobSpec } from '../../spec/schema';

/**
 * The fields of a job spec that describe ffrun's embedded cluster and have no meaning on Kubernetes, or
 * that need machinery the Kubernetes backend does not have yet. A spec that sets one is refused, every
 * problem listed at once, rather than rendered without it: a setting silently dropped is a wrong job.
 */
export function kubernetesProblems(spec: JobSpec): string[] {
  const problems: string[] = [];
  if (spec.cluster.mtu !== undefined || spec.cluster.containerMtu !== undefined)
    problems.push("cluster.mtu / cluster.containerMtu: the cluster's network (its CNI) decides the pods' MTU; remove them");
  if (spec.network === 'freeflow' && (spec.interHost === 'handoff' || spec.interHost === 'router'))
    problems.push(
      `interHost: ${spec.interHost} needs a launcher that registers the job on every node's ffagent and writes the path table, which the MPI operator does not do; use interHost auto or tcp (pairs on different nodes use tcp)`,
    );
  if (spec.launch === 'host')
    problems.push('launch: host starts one orted per host for several containers; the MPI operator starts one per worker pod: use launch auto or container');
  if (spec.scratch !== undefined && spec.scratch !== false)
    problems.push(
      'scratch: a job-wide volume needs a shared file system on the cluster (a ReadWriteMany PersistentVolumeClaim), which render does not create; remove it and add the claim to the worker template yourself',
    );
  if (spec.user !== undefined && numericUser(spec.user) === undefined)
    problems.push(`user: ${spec.user}: Kubernetes runs pods as numeric ids (runAsUser/runAsGroup); give a uid or uid:gid, e.g. "1000:1000"`);
  return problems;
}

export function assertRenderableOnKubernetes(spec: JobSpec, specLabel: string): void {
  const problems = kubernetesProblems(spec);
  if (problems.length === 0) return;
  throw new FfError('SPEC_INVALID', `job spec ${specLabel} cannot run on Kubernetes as written:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
    hint: "change the fields listed above (they are for ffrun's embedded cluster); docs/kubernetes.md says what the Kubernetes backend supports",
    notes: problems,
  });
}

/** uid and gid of `root`, `<uid>` or `<uid>:<gid>` (gid = uid when absent); undefined for any other name. */
export function numericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  if (user === undefined || user === 'root') return { uid: 0, gid: 0 };
  const match = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(user);
  if (!match) return undefined;
  const uid = Number(match[1]);
  const gid = match[2] === undefined ? uid : Number(match[2]);
  // Kubernetes' runAsUser is an int64, but Linux ids stop below 2^32 - 1 (the "no id" value)
  return uid < 2 ** 32 - 1 && gid < 2 ** 32 - 1 ? { uid, gid } : undefined;
}
