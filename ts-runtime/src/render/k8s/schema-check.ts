import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { ObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import { REPO_ROOT } from '../../util/repo-root';

/**
 * Checks manifests against the Kubernetes API's own schemas, for the tests (a dev dependency; ffrun does
 * not load this file): core and apps kinds with `kubernetes-models` (its validate(), generated from the
 * API's OpenAPI definitions), the MPIJob with the MPI operator's published CRD schema (vendored in
 * mpijob-crd-v2beta1.json, with its source) through ajv.
 *
 * The OpenAPI definitions allow unknown fields; the API server refuses them (kubectl's default
 * --validate=strict). So the CRD's structural schema is checked strictly: every object that lists its
 * properties and does not say x-kubernetes-preserve-unknown-fields gets additionalProperties: false, which
 * is what the API server's strict field validation does with a structural schema. The DaemonSet's pod
 * template is checked against the CRD's embedded core/v1 PodTemplateSpec the same way, so a misspelt pod
 * field is caught there too.
 */

export const CRD_SCHEMA_FILE = path.join(REPO_ROOT, 'ts-runtime', 'src', 'render', 'k8s', 'mpijob-crd-v2beta1.json');

type Schema = Record<string, unknown>;

/** Structural schema -> JSON schema with unknown fields refused (see above). */
export function strictSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const result: Schema = {};
  for (const [key, value] of Object.entries(schema as Schema))
    result[key] = key === 'enum' || key === 'default' || key === 'example' ? value : strictSchema(value);
  if (result.properties !== undefined && result.additionalProperties === undefined && result['x-kubernetes-preserve-unknown-fields'] !== true) {
    result.additionalProperties = false;
  }
  return result;
}

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, logger: false });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  return ajv;
}

let compiled: { mpiJob: ValidateFunction; podTemplate: ValidateFunction } | undefined;

function validators(): { mpiJob: ValidateFunction; podTemplate: ValidateFunction } {
  if (compiled) return compiled;
  const crd = JSON.parse(fs.readFileSync(CRD_SCHEMA_FILE, 'utf8')) as { openAPIV3Schema: Schema };
  const schema = strictSchema(crd.openAPIV3Schema) as Schema;
  const replicaSpec = (
    (schema.properties as Schema).spec as { properties: { mpiReplicaSpecs: { additionalProperties: { properties: { template: Schema } } } } }
  ).properties.mpiReplicaSpecs.additionalProperties;
  const ajv = newAjv();
  compiled = { mpiJob: ajv.compile(schema), podTemplate: ajv.compile(replicaSpec.properties.template) };
  return compiled;
}

function ajvProblems(errors: readonly ErrorObject[] | null | undefined, at: string): string[] {
  return (errors ?? []).map((error) => {
    const extra = error.keyword === 'additionalProperties' ? ` (${String((error.params as { additionalProperty: string }).additionalProperty)})` : '';
    return `${at}${error.instancePath}: ${error.message ?? error.keyword}${extra}`;
  });
}

function modelProblems(check: () => void, at: string): string[] {
  try {
    check();
    return [];
  } catch (error) {
    return [`${at}: ${(error as Error).message}`];
  }
}

/** Problems of an MPIJob: the CRD schema (strict), its metadata as ObjectMeta, each pod template as core/v1 PodTemplateSpec. */
export function mpiJobProblems(object: Record<string, unknown>): string[] {
  const { mpiJob } = validators();
  const problems = mpiJob(object) ? [] : ajvProblems(mpiJob.errors, 'MPIJob');
  problems.push(...modelProblems(() => new ObjectMeta(object.metadata as never).validate(), 'MPIJob metadata'));
  const replicaSpecs = ((object.spec as Schema | undefined)?.mpiReplicaSpecs ?? {}) as Record<string, { template?: unknown }>;
  for (const [role, replicaSpec] of Object.entries(replicaSpecs)) {
    problems.push(...modelProblems(() => new PodTemplateSpec(replicaSpec.template as never).validate(), `MPIJob ${role} template (core/v1 PodTemplateSpec)`));
  }
  return problems;
}

/** Problems of a DaemonSet: apps/v1 DaemonSet, and its pod template strictly against the structural PodTemplateSpec. */
export function daemonSetProblems(object: Record<string, unknown>): string[] {
  const problems = modelProblems(() => new DaemonSet(object as never).validate(), 'DaemonSet (apps/v1)');
  const { podTemplate } = validators();
  const template = (object.spec as Schema | undefined)?.template;
  if (!podTemplate(template)) problems.push(...ajvProblems(podTemplate.errors, 'DaemonSet template (strict)'));
  return problems;
}

/** Problems of any manifest that render writes, by kind. */
export function manifestProblems(object: Record<string, unknown>): string[] {
  if (object.apiVersion === 'kubeflow.org/v2beta1' && object.kind === 'MPIJob') return mpiJobProblems(object);
  if (object.apiVersion === 'apps/v1' && object.kind === 'DaemonSet') return daemonSetProblems(object);
  return [`no schema for ${String(object.apiVersion)} ${String(object.kind)}`];
}
