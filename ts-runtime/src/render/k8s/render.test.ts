import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { FfError } from '../../errors';
import { BTLS_OF_NETWORK } from '../../launcher/mpirun-invocation';
import { IO_MCA_SETTINGS } from '../../launcher/io-selection';
import { loadJobSpecFile } from '../../spec/load';
import type { JobSpec } from '../../spec/schema';
import { validateJobSpec } from '../../spec/validate';
import { REPO_ROOT } from '../../util/repo-root';
import { parseRenderArgs } from '../args';
import { commandInImage, IMAGE_REPO_ROOT, renderKubernetes, type Manifest } from './manifests';
import { manifestProblems } from './schema-check';

const IMAGE = 'registry.example.org/freeflow:0.1';
const MAIN = path.join(REPO_ROOT, 'dist', 'ts-runtime', 'src', 'cli', 'main.js');
const JOBS = path.join(REPO_ROOT, 'jobs');

function spec(overrides: Record<string, unknown> = {}): JobSpec {
  return validateJobSpec(
    { name: 'k8s-test', cluster: { hosts: 2, containersPerHost: 2 }, ranks: 4, program: { command: 'build/bin/ffcheck_allpairs' }, ...overrides },
    { kind: 'file', path: 'k8s-test.yaml' },
  );
}

// The tests walk manifests as plain JSON, field by field: any keeps those walks readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const byKind = (manifests: readonly Manifest[], kind: string): Obj => manifests.find((m) => m.object.kind === kind)!.object as Obj;

function errorOf(work: () => unknown): FfError {
  try {
    work();
  } catch (error) {
    assert.instance(error, FfError);
    return error as FfError;
  }
  throw new Error('expected an FfError');
}

/** mpirun's `--mca NAME VALUE` triples as [name, value] pairs, in order. */
function mcaPairs(args: readonly string[]): Array<[string, string]> {
  return args.flatMap((arg, i) => (arg === '--mca' ? [[args[i + 1]!, args[i + 2]!] as [string, string]] : []));
}

test('every shipped job spec renders to manifests that the Kubernetes API schemas accept', () => {
  const files = readdirSync(JOBS).filter((file) => file.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const file of files) {
    const manifests = renderKubernetes(loadJobSpecFile(path.join(JOBS, file)), { image: IMAGE }, file);
    assert.equal(
      manifests.map((m) => m.object.kind),
      ['DaemonSet', 'MPIJob'],
      file,
    );
    for (const manifest of manifests) assert.equal(manifestProblems(manifest.object), [], `${file}: ${manifest.file}`);
  }
});

test('variants validate too: overlay, round-robin, several slots, a uid, a namespace, mca and env', () => {
  const variants: Array<[Record<string, unknown>, { namespace?: string; agentPort?: number }]> = [
    [{ network: 'overlay' }, {}],
    [{ placement: 'round-robin', cluster: { hosts: 3, containersPerHost: 2, slotsPerContainer: 4 }, ranks: 20 }, { namespace: 'hpc-jobs' }],
    [{ user: '1000:1001', env: { OMP_NUM_THREADS: '1' }, mca: { btl_tcp_eager_limit: '65536' } }, { agentPort: 7471 }],
    [{ interHost: 'tcp', timeoutSeconds: 86_400, launch: 'container' }, {}],
  ];
  for (const [overrides, options] of variants) {
    for (const manifest of renderKubernetes(spec(overrides), { image: IMAGE, ...options }, 'variant')) {
      assert.equal(manifestProblems(manifest.object), [], `${JSON.stringify(overrides)}: ${manifest.file}`);
    }
  }
});

test('the validator refuses manifests with wrong fields (so the checks above can fail)', () => {
  const [daemonSet, mpiJob] = renderKubernetes(spec(), { image: IMAGE }, 'x').map((m) => structuredClone(m.object) as Obj);
  const misspelt = structuredClone(mpiJob!);
  misspelt.spec.slotPerWorker = 1;
  assert.match(manifestProblems(misspelt).join('\n'), /additional properties \(slotPerWorker\)/);
  const wrongType = structuredClone(mpiJob!);
  wrongType.spec.runPolicy.backoffLimit = 'none';
  assert.match(manifestProblems(wrongType).join('\n'), /backoffLimit: must be integer/);
  const noReplicaSpecs = structuredClone(mpiJob!);
  delete noReplicaSpecs.spec.mpiReplicaSpecs;
  assert.match(manifestProblems(noReplicaSpecs).join('\n'), /mpiReplicaSpecs/);
  const podField = structuredClone(mpiJob!);
  podField.spec.mpiReplicaSpecs.Worker.template.spec.containers[0].volumeMount = [];
  assert.match(manifestProblems(podField).join('\n'), /volumeMount\)/);
  const noImageName = structuredClone(mpiJob!);
  delete noImageName.spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].name;
  assert.match(manifestProblems(noImageName).join('\n'), /Launcher template \(core\/v1 PodTemplateSpec\).*required property name/);
  const badQuantity = structuredClone(daemonSet!);
  badQuantity.spec.template.spec.containers[0].resources.limits.cpu = '2 cores';
  assert.match(manifestProblems(badQuantity).join('\n'), /DaemonSet \(apps\/v1\).*quantity/);
  const badHostPath = structuredClone(daemonSet!);
  badHostPath.spec.template.spec.volumes[0].hostPath.paht = '/run/freeflow';
  assert.match(manifestProblems(badHostPath).join('\n'), /additional properties \(paht\)/);
  assert.match(manifestProblems({ apiVersion: 'v1', kind: 'Pod' }).join(), /no schema/);
});

test('the MPIJob: workers are the containers, the launcher runs mpirun with the MCA settings ffrun gives mpirun', () => {
  const job = byKind(
    renderKubernetes(spec({ cluster: { hosts: 3, containersPerHost: 2, slotsPerContainer: 2 }, ranks: 12, timeoutSeconds: 600 }), { image: IMAGE }, 'x'),
    'MPIJob',
  );
  assert.is(job.apiVersion, 'kubeflow.org/v2beta1');
  assert.is(job.spec.slotsPerWorker, 2);
  assert.is(job.spec.mpiImplementation, 'OpenMPI');
  assert.equal(job.spec.runPolicy, { cleanPodPolicy: 'Running', backoffLimit: 0, activeDeadlineSeconds: 600 });
  assert.is(job.spec.mpiReplicaSpecs.Worker.replicas, 6);
  assert.is(job.spec.mpiReplicaSpecs.Launcher.replicas, 1);
  const launcher = job.spec.mpiReplicaSpecs.Launcher.template.spec.containers[0];
  assert.is(launcher.image, IMAGE);
  assert.equal(launcher.command, ['mpirun']);
  const args: string[] = launcher.args;
  assert.equal(args.slice(args.indexOf('-np'), args.indexOf('-np') + 2), ['-np', '12']);
  assert.equal(args.slice(args.indexOf('--map-by'), args.indexOf('--map-by') + 2), ['--map-by', 'slot']);
  const mca = mcaPairs(args);
  assert.equal(mca.slice(0, 3), [
    ['pml', 'ob1'],
    ['btl', BTLS_OF_NETWORK.freeflow],
    // workers on other nodes are tcp pairs: windows spanning them need osc ucx
    ['osc', 'sm,rdma,ucx,pt2pt'],
  ]);
  assert.ok(mca.some(([name, value]) => name === 'btl_freeflow_dir' && value === '/run/freeflow'));
  for (const setting of IO_MCA_SETTINGS)
    assert.ok(
      mca.some(([name, value]) => name === setting[0] && value === setting[1]),
      setting[0],
    );
  // nothing of the local cluster's own launch machinery
  assert.not.ok(mca.some(([name]) => ['plm_rsh_agent', 'orte_fork_agent', 'oob_tcp_if_include', 'btl_tcp_if_include'].includes(name)));
  assert.ok(args.includes(`OMPI_MCA_mca_base_component_path=${IMAGE_REPO_ROOT}/build/btl:/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3`));
  assert.is(args.at(-1), `${IMAGE_REPO_ROOT}/build/bin/ffcheck_allpairs`);
  const worker = job.spec.mpiReplicaSpecs.Worker.template.spec;
  assert.equal(worker.containers[0].env, [{ name: 'FREEFLOW_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
  assert.ok(worker.containers[0].args.includes('SetEnv=FREEFLOW_NODE_NAME=$(FREEFLOW_NODE_NAME)'));
  assert.equal(worker.containers[0].resources, { requests: { cpu: '2' }, limits: { cpu: '2' } });
  assert.equal(worker.containers[0].volumeMounts, [{ name: 'freeflow-shared', mountPath: '/run/freeflow' }]);
  assert.equal(worker.volumes, [{ name: 'freeflow-shared', hostPath: { path: '/run/freeflow/k8s-test', type: 'Directory' } }]);
});

test("the spec's mca and env reach mpirun; round-robin maps by node; overlay has no BTL, directory or DaemonSet", () => {
  const manifests = renderKubernetes(
    spec({ network: 'overlay', placement: 'round-robin', mca: { btl: 'self,tcp' }, env: { A_B: 'x y' } }),
    { image: IMAGE },
    'x',
  );
  assert.equal(
    manifests.map((m) => m.object.kind),
    ['MPIJob'],
  );
  const job = byKind(manifests, 'MPIJob');
  const args: string[] = job.spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].args;
  const mca = mcaPairs(args);
  assert.equal(
    mca.filter(([name]) => name === 'btl'),
    [['btl', 'self,tcp']],
  );
  assert.not.ok(mca.some(([name]) => name === 'btl_freeflow_dir'));
  assert.ok(args.includes('A_B=x y'));
  assert.equal(args.slice(args.indexOf('--map-by'), args.indexOf('--map-by') + 2), ['--map-by', 'node']);
  assert.is(job.spec.mpiReplicaSpecs.Worker.template.spec.volumes, undefined);
});

test('the DaemonSet owns the per-node directory (mode and owner for the BTL) and runs the agent on the node network', () => {
  const ds = byKind(renderKubernetes(spec({ user: '1000:1001' }), { image: IMAGE, namespace: 'hpc', agentPort: 7471 }, 'x'), 'DaemonSet');
  assert.is(ds.metadata.namespace, 'hpc');
  const pod = ds.spec.template.spec;
  assert.is(pod.hostNetwork, true);
  assert.equal(pod.volumes[0], { name: 'shared-root', hostPath: { path: '/run/freeflow', type: 'DirectoryOrCreate' } });
  assert.equal(
    pod.initContainers.map((c: Obj) => c.command),
    [
      ['install', '-d', '-m', '0711', '-o', '0', '-g', '0', '/run/freeflow'],
      ['install', '-d', '-m', '0700', '-o', '1000', '-g', '1001', '/run/freeflow/k8s-test'],
    ],
  );
  const agent = pod.containers[0];
  assert.equal(agent.command, [`${IMAGE_REPO_ROOT}/build/bin/ffagent`, '--control', '/run/ffagent/control.sock', '--listen', '$(NODE_IP):7471']);
  assert.equal(agent.ports[0].hostPort, 7471);
  assert.equal(agent.securityContext.capabilities, { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'] });
  assert.equal(agent.lifecycle.preStop.exec.command, ['rm', '-rf', '--one-file-system', '/run/freeflow/k8s-test']);
  assert.is(ds.spec.updateStrategy.type, 'OnDelete');
  const job = byKind(renderKubernetes(spec({ user: '1000:1001' }), { image: IMAGE }, 'x'), 'MPIJob');
  const launcher = job.spec.mpiReplicaSpecs.Launcher.template.spec.containers[0];
  assert.not.ok(launcher.args.includes('--allow-run-as-root'));
  assert.equal(launcher.securityContext, { runAsUser: 1000, runAsGroup: 1001, allowPrivilegeEscalation: false });
});

test('what Kubernetes cannot do is refused, every problem at once, naming the fix', () => {
  const error = errorOf(() =>
    renderKubernetes(
      spec({ interHost: 'handoff', scratch: '1G', cluster: { hosts: 2, containersPerHost: 2, mtu: 9000 }, launch: 'host', user: 'nobody' }),
      { image: IMAGE },
      'x.yaml',
    ),
  );
  assert.is(error.code, 'SPEC_INVALID');
  assert.is(error.notes.length, 5);
  for (const field of ['interHost: handoff', 'scratch', 'cluster.mtu', 'launch: host', 'user: nobody']) assert.ok(error.message.includes(field), field);
  const noImage = errorOf(() => renderKubernetes(spec(), {}, 'x'));
  assert.is(noImage.code, 'USAGE');
  assert.match(noImage.hint!, /--image/);
  assert.is(
    byKind(renderKubernetes(spec({ image: 'ghcr.io/me/ff:2' }), {}, 'x'), 'MPIJob').spec.mpiReplicaSpecs.Worker.template.spec.containers[0].image,
    'ghcr.io/me/ff:2',
  );
  assert.is(
    byKind(renderKubernetes(spec({ image: 'ghcr.io/me/ff:2' }), { image: IMAGE }, 'x'), 'MPIJob').spec.mpiReplicaSpecs.Worker.template.spec.containers[0].image,
    IMAGE,
  );
  assert.is(errorOf(() => renderKubernetes(spec({ ranks: 5 }), { image: IMAGE }, 'x')).code, 'TOO_MANY_RANKS');
});

test('the spec field image is validated', () => {
  const error = errorOf(() => spec({ image: 'Not An/Image' }));
  assert.is(error.code, 'SPEC_INVALID');
  assert.match(error.message, /image.*is not a container image reference/);
  for (const good of ['freeflow', 'localhost:5000/ff/ffrun:0.1', `ghcr.io/a/b@sha256:${'a'.repeat(64)}`]) assert.is(spec({ image: good }).image, good);
});

test('program paths in the repository map to the image; bare names stay PATH lookups', () => {
  assert.is(commandInImage(path.join(REPO_ROOT, 'build/bin/x')), `${IMAGE_REPO_ROOT}/build/bin/x`);
  assert.is(commandInImage('build/bin/x'), `${IMAGE_REPO_ROOT}/build/bin/x`);
  assert.is(commandInImage('hostname'), 'hostname');
  assert.is(commandInImage('/usr/bin/env'), '/usr/bin/env');
});

test('render arguments: unknown, repeated, missing or malformed ones are usage errors', () => {
  assert.equal(parseRenderArgs(['k8s', 'j.yaml', '-o', 'out', '--image', IMAGE, '--namespace', 'ns', '--agent-port', '7471']), {
    target: 'k8s',
    specPath: 'j.yaml',
    outDir: 'out',
    image: IMAGE,
    namespace: 'ns',
    agentPort: 7471,
  });
  const bad: string[][] = [
    [],
    ['helm', 'j.yaml'],
    ['k8s'],
    ['k8s', 'a.yaml', 'b.yaml'],
    ['k8s', 'j.yaml', '--json'],
    ['k8s', 'j.yaml', '-o'],
    ['k8s', 'j.yaml', '-o', 'a', '-o', 'b'],
    ['k8s', 'j.yaml', '--image', 'UPPER'],
    ['k8s', 'j.yaml', '--namespace', 'Bad_NS'],
    ['k8s', 'j.yaml', '--agent-port', '0'],
    ['k8s', 'j.yaml', '--agent-port', '70000'],
    ['k8s', 'j.yaml', '--agent-port', '1e3'],
  ];
  for (const args of bad) assert.is(errorOf(() => parseRenderArgs(args)).code, 'USAGE', args.join(' '));
});

test('ffrun render k8s: stdout and -o DIR give the same validated manifests; bad arguments exit 2', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [MAIN, 'render', 'k8s', ...args], { encoding: 'utf8', timeout: 30_000 });
  const printed = run([path.join(JOBS, 'demo.yaml'), '--image', IMAGE]);
  assert.is(printed.status, 0, printed.stderr);
  const documents = parseAllDocuments(printed.stdout);
  const objects = (Array.isArray(documents) ? documents : []).map((d) => d.toJS() as Obj).filter((o) => o !== null);
  assert.equal(
    objects.map((o) => o.kind),
    ['DaemonSet', 'MPIJob'],
  );
  for (const object of objects) assert.equal(manifestProblems(object), []);
  const dir = mkdtempSync(path.join(tmpdir(), 'ff-render-'));
  try {
    const written = run([path.join(JOBS, 'demo.yaml'), '--image', IMAGE, '-o', path.join(dir, 'out')]);
    assert.is(written.status, 0, written.stderr);
    const files = readdirSync(path.join(dir, 'out')).sort();
    assert.equal(files, ['10-demo-ffnode.daemonset.yaml', '20-demo.mpijob.yaml']);
    assert.equal(
      files.map((f) => parseAllDocuments(readFileSync(path.join(dir, 'out', f), 'utf8')) as unknown as Array<{ toJS(): Obj }>).map((d) => d[0]!.toJS()),
      objects,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const unknown = run([path.join(JOBS, 'demo.yaml'), '--image', IMAGE, '--dry-run']);
  assert.is(unknown.status, 2);
  assert.match(unknown.stderr, /error\[USAGE\]: ffrun render k8s: unknown option --dry-run/);
  const noImage = run([path.join(JOBS, 'demo.yaml')]);
  assert.is(noImage.status, 2);
  assert.match(noImage.stderr, /hint: give --image/);
});

test.run();
