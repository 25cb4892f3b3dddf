import { FfError } from '../errors';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobPlan } from '../orchestrator/plan';
import { chooseLaunch } from '../orchestrator/launch-mode';
import { buildMpirunInvocation, simulateMapping, type InvocationInputs } from './mpirun-invocation';

function inputs(ranks: number, network: JobPlan['network'], cpus = 2): InvocationInputs {
  const plan: JobPlan = {
    jobId: 'abc123',
    key: '0'.repeat(32),
    network,
    launch: network === 'freeflow' ? 'host' : 'container',
    placement: 'fill',
    interHost: { requested: 'auto', agents: [{ reachable: false }], pairs: [] },
    hosts: [{ index: 0, name: 'h0' }],
    ranks: Array.from({ length: ranks }, (_, rank) => ({ rank, host: 0, containerIndex: rank >> 1, container: `ff-abc123-h0c${rank >> 1}` })),
    paths: [],
  };
  return {
    plan,
    spec: {
      program: { command: '/repo/build/bin/app', args: ['--size', '8'] },
      env: { GREETING: 'hi there' },
      mca: { btl_tcp_eager_limit: '65536' },
      cluster: { hosts: 1, containersPerHost: 2, slotsPerContainer: 2 },
    },
    cpus,
    overlaySubnet: '10.244.0.0/16',
    rshAgent: '/repo/ts-runtime/bin/ffrun-rsh',
    forkAgent: '/repo/build/bin/ffrun-fork-agent',
    containerMapFile: '/run/freeflow-jobs/abc123/containers',
    hostNames: ['ff-abc123-h0'],
    btlDir: '/repo/build/btl',
    stateDir: '/run/freeflow-jobs/abc123',
  };
}

/** `base` with a plan of two ranks whose one pair takes `kind` both ways. */
function withPairPath(base: InvocationInputs, kind: 'shm' | 'router' | 'tcp'): InvocationInputs {
  const paths: JobPlan['paths'] = [
    ['self', kind],
    [kind, 'self'],
  ];
  return { ...base, plan: { ...base.plan, paths } };
}

function mcaOf(argv: readonly string[]): Record<string, string> {
  const mca: Record<string, string> = {};
  argv.forEach((arg, i) => {
    if (arg === '--mca') mca[argv[i + 1]!] = argv[i + 2]!;
  });
  return mca;
}

test('overlay: ob1 with self,vader,tcp, rsh agent, interfaces pinned to the overlay, program last', () => {
  const invocation = buildMpirunInvocation(inputs(2, 'overlay'));
  const mca = mcaOf(invocation.argv);
  assert.is(mca.pml, 'ob1');
  assert.is(mca.btl, 'self,vader,tcp');
  assert.is(mca.plm_rsh_agent, '/repo/ts-runtime/bin/ffrun-rsh');
  assert.is(mca.plm_rsh_no_tree_spawn, '1');
  assert.is(mca.oob_tcp_if_include, '10.244.0.0/16');
  assert.is(mca.btl_tcp_if_include, '10.244.0.0/16');
  assert.is(mca.btl_tcp_eager_limit, '65536');
  assert.is(mca.mpi_yield_when_idle, undefined);
  assert.ok(invocation.argv.includes('--allow-run-as-root'));
  assert.ok(invocation.argv.includes('--tag-output'));
  assert.equal(invocation.argv.slice(-3), ['/repo/build/bin/app', '--size', '8']);
  assert.equal(invocation.env, { FFRUN_CONTAINER_MAP: '/run/freeflow-jobs/abc123/containers' });
  const xIndex = invocation.argv.indexOf('-x');
  assert.is(invocation.argv[xIndex + 1], 'GREETING=hi there');
});

function forkAgentWords(argv: readonly string[]): string[] {
  return mcaOf(argv).orte_fork_agent!.split(' ');
}

test('no rankfile (MPI_Comm_spawn finds no mapping in one): a hostfile of the used containers, --map-by, room to spawn', () => {
  const invocation = buildMpirunInvocation(inputs(2, 'overlay'));
  assert.equal(
    invocation.files.map((f) => f.path),
    ['/run/freeflow-jobs/abc123/hostfile'],
  );
  assert.not.ok(invocation.argv.includes('--rankfile'));
  assert.is(invocation.files[0]!.text, 'ff-abc123-h0c0 slots=2\n');
  assert.is(invocation.argv[invocation.argv.indexOf('--map-by') + 1], 'slot');
  assert.is(invocation.argv[invocation.argv.indexOf('--bind-to') + 1], 'none');
  assert.ok(invocation.argv.includes('--oversubscribe'), 'spawned processes need room beyond the planned slots');
});

test('ranks that fit the cores are pinned to distinct cores by the fork agent, not by mpirun', () => {
  const words = forkAgentWords(buildMpirunInvocation(inputs(2, 'overlay')).argv);
  assert.equal(words, ['/repo/build/bin/ffrun-fork-agent', '--cpus', '0,1', '--']);
});

test('more ranks than cores: unbound, yield when idle', () => {
  const invocation = buildMpirunInvocation(inputs(4, 'overlay'));
  assert.ok(invocation.oversubscribed);
  assert.is(mcaOf(invocation.argv).mpi_yield_when_idle, '1');
  assert.not.ok(forkAgentWords(invocation.argv).includes('--cpus'));
  assert.is(invocation.files[0]!.text, 'ff-abc123-h0c0 slots=2\nff-abc123-h0c1 slots=2\n');
});

test('round-robin placement maps by node, fill by slot: mpirun reproduces the plan exactly', () => {
  const base = inputs(4, 'overlay', 8);
  const names = ['ff-abc123-h0c0', 'ff-abc123-h1c0', 'ff-abc123-h0c0', 'ff-abc123-h1c0'];
  const plan = { ...base.plan, ranks: base.plan.ranks.map((rank, i) => ({ ...rank, host: i % 2, containerIndex: 0, container: names[i]! })) };
  const invocation = buildMpirunInvocation({ ...base, plan });
  assert.is(invocation.argv[invocation.argv.indexOf('--map-by') + 1], 'node');
  assert.is(invocation.files[0]!.text, 'ff-abc123-h0c0 slots=2\nff-abc123-h1c0 slots=2\n');
  const unevenSlots = [
    { name: 'a', slots: 2 },
    { name: 'b', slots: 1 },
  ];
  assert.equal(simulateMapping(unevenSlots, 'node'), ['a', 'b', 'a']);
  assert.equal(simulateMapping(unevenSlots, 'slot'), ['a', 'a', 'b']);
  const scattered = { ...base.plan, ranks: base.plan.ranks.map((rank, i) => ({ ...rank, container: ['c0', 'c0', 'c1', 'c0'][i]! })) };
  assert.throws(() => buildMpirunInvocation({ ...base, plan: scattered }), /no mpirun mapping reproduces the planned placement/);
});

test('overlay launches per container; freeflow per host, with every rank sent into its container', () => {
  assert.is(buildMpirunInvocation(inputs(2, 'overlay')).launch, 'container');
  const invocation = buildMpirunInvocation(inputs(4, 'freeflow'));
  assert.is(invocation.launch, 'host');
  assert.is(invocation.files[0]!.text, 'ff-abc123-h0 slots=4\n');
  assert.equal(forkAgentWords(invocation.argv), [
    '/repo/build/bin/ffrun-fork-agent',
    '--enter',
    '/repo/ts-runtime/bin/ffrun-rsh',
    '/run/freeflow-jobs/abc123/containers',
    '--containers',
    'ff-abc123-h0c0,ff-abc123-h0c0,ff-abc123-h0c1,ff-abc123-h0c1',
    '--host',
    'ff-abc123-h0=ff-abc123-h0c0+ff-abc123-h0c1',
    '--',
  ]);
  const mca = mcaOf(invocation.argv);
  // Open MPI's shared memory where a node spans containers: the shared directory, no CMA
  assert.is(mca.btl_vader_backing_directory, '/run/freeflow');
  assert.is(mca.btl_vader_single_copy_mechanism, 'none');
  assert.is(mca.osc_sm_backing_directory, '/run/freeflow');
  assert.is(mca.osc_rdma_backing_directory, '/run/freeflow');
  // PMIx (TCP only in PMIx 4) must accept the ranks from their containers' namespaces
  assert.is(invocation.env.PMIX_MCA_ptl_tcp_remote_connections, '1');
  assert.is(invocation.env.PMIX_MCA_ptl_tcp_if_include, '10.244.0.0/16');
  assert.is(mcaOf(buildMpirunInvocation(inputs(2, 'overlay')).argv).btl_vader_backing_directory, undefined);
});

test('freeflow: self,vader,freeflow,tcp and the component path, for mpirun and the ranks', () => {
  const invocation = buildMpirunInvocation(inputs(2, 'freeflow'));
  assert.is(mcaOf(invocation.argv).btl, 'self,vader,freeflow,tcp');
  const value = '/repo/build/btl:/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3';
  assert.is(invocation.env.OMPI_MCA_mca_base_component_path, value);
  assert.ok(invocation.argv.includes(`OMPI_MCA_mca_base_component_path=${value}`));
});

test("the spec's MCA parameters replace ffrun's own of the same name: Open MPI refuses a parameter given twice", () => {
  const base = inputs(2, 'overlay');
  const invocation = buildMpirunInvocation({ ...base, spec: { ...base.spec, mca: { btl: 'self,tcp', btl_tcp_if_include: 'lo' } } });
  const names = invocation.argv.flatMap((arg, i) => (arg === '--mca' ? [invocation.argv[i + 1]!] : []));
  assert.equal(names, [...new Set(names)]);
  const mca = mcaOf(invocation.argv);
  assert.is(mca.btl, 'self,tcp');
  assert.is(mca.btl_tcp_if_include, 'lo');
  assert.is(mca.oob_tcp_if_include, '10.244.0.0/16');
});

test('one-sided: ucx is let in only for jobs with tcp pairs (pt2pt refuses MPI_THREAD_MULTIPLE), kept out otherwise', () => {
  const overlay = buildMpirunInvocation(inputs(4, 'overlay'));
  assert.is(mcaOf(overlay.argv).osc, 'sm,rdma,ucx,pt2pt');
  const twoContainers = inputs(4, 'freeflow');
  const withShm = buildMpirunInvocation(withPairPath(twoContainers, 'shm'));
  assert.is(mcaOf(withShm.argv).osc, '^ucx');
  assert.is(withShm.oneSided.components, '^ucx');
  assert.is(mcaOf(buildMpirunInvocation(withPairPath(twoContainers, 'router')).argv).osc, '^ucx');
  assert.is(mcaOf(buildMpirunInvocation(withPairPath(twoContainers, 'tcp')).argv).osc, 'sm,rdma,ucx,pt2pt');
});

test('one-sided: the plan says which component serves windows across which pairs', () => {
  const twoContainers = inputs(4, 'freeflow');
  const summaryWith = (kind: 'shm' | 'router' | 'tcp') => buildMpirunInvocation(withPairPath(twoContainers, kind)).oneSided.summary;
  assert.match(summaryWith('shm'), /^osc rdma over the freeflow BTL .* for every window$/);
  assert.match(summaryWith('router'), /router routes\) for every window$/);
  assert.match(summaryWith('tcp'), /osc ucx \(UCX over tcp\) for windows spanning tcp pairs/);
  assert.match(buildMpirunInvocation(inputs(4, 'overlay')).oneSided.summary, /^osc ucx \(UCX over tcp\) for windows across containers/);
  const oneContainer = inputs(2, 'freeflow');
  const packed = { ...oneContainer.plan, ranks: oneContainer.plan.ranks.map((rank) => ({ ...rank, container: 'ff-abc123-h0c0' })) };
  const packedInvocation = buildMpirunInvocation({ ...oneContainer, plan: packed });
  assert.match(packedInvocation.oneSided.summary, /one container/);
  assert.is(packedInvocation.oneSided.components, '^ucx');
});

test("one-sided: the spec's own osc replaces ffrun's", () => {
  const base = inputs(2, 'freeflow');
  const invocation = buildMpirunInvocation({ ...base, spec: { ...base.spec, mca: { osc: 'pt2pt' } } });
  assert.is(mcaOf(invocation.argv).osc, 'pt2pt');
});

test('host launches for root freeflow jobs only: overlay and non-root jobs keep one orted per container', () => {
  assert.is(chooseLaunch('freeflow', { uid: 0 }), 'host');
  assert.is(chooseLaunch('overlay', { uid: 0 }), 'container');
  assert.is(chooseLaunch('freeflow', { uid: 1000 }), 'container');
  assert.is(chooseLaunch('freeflow', { uid: 0 }, 'container'), 'container');
  assert.is(chooseLaunch('freeflow', { uid: 0 }, 'host'), 'host');
  assert.throws(
    () => chooseLaunch('freeflow', { uid: 1000 }, 'host'),
    (error: unknown) => error instanceof FfError && error.code === 'SPEC_INVALID' && /root job/.test(error.message),
  );
});

test.run();
