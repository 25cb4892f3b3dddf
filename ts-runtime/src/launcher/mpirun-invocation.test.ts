import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobPlan } from '../orchestrator/plan';
import { buildMpirunInvocation, type InvocationInputs } from './mpirun-invocation';

function inputs(ranks: number, network: JobPlan['network'], cpus = 2): InvocationInputs {
  const plan: JobPlan = {
    jobId: 'abc123',
    key: '0'.repeat(32),
    network,
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
  assert.not.ok(invocation.argv.includes('--oversubscribe'));
  assert.equal(invocation.argv.slice(-3), ['/repo/build/bin/app', '--size', '8']);
  assert.equal(invocation.env, { FFRUN_CONTAINER_MAP: '/run/freeflow-jobs/abc123/containers' });
  const xIndex = invocation.argv.indexOf('-x');
  assert.is(invocation.argv[xIndex + 1], 'GREETING=hi there');
});

test('ranks that fit the cores are pinned to distinct cores, in their planned containers', () => {
  const invocation = buildMpirunInvocation(inputs(2, 'overlay'));
  const rankfile = invocation.files.find((f) => f.path.endsWith('/rankfile'))!;
  assert.is(rankfile.text, 'rank 0=ff-abc123-h0c0 slot=0\nrank 1=ff-abc123-h0c0 slot=1\n');
  const hostfile = invocation.files.find((f) => f.path.endsWith('/hostfile'))!;
  // every container offers its slots (room for MPI_Comm_spawn), though the ranks fill only the first
  assert.is(hostfile.text, 'ff-abc123-h0c0 slots=2\nff-abc123-h0c1 slots=2\n');
});

test('more ranks than cores: unbound (all cores), oversubscribe, yield when idle', () => {
  const invocation = buildMpirunInvocation(inputs(4, 'overlay'));
  assert.ok(invocation.oversubscribed);
  assert.ok(invocation.argv.includes('--oversubscribe'));
  assert.is(mcaOf(invocation.argv).mpi_yield_when_idle, '1');
  const rankfile = invocation.files.find((f) => f.path.endsWith('/rankfile'))!;
  assert.is(rankfile.text.split('\n')[3], 'rank 3=ff-abc123-h0c1 slot=0-1');
  assert.is(invocation.files.find((f) => f.path.endsWith('/hostfile'))!.text, 'ff-abc123-h0c0 slots=2\nff-abc123-h0c1 slots=2\n');
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

test('one-sided: osc pt2pt is let back in (Debian excludes it) and ucx stays out, for both networks', () => {
  for (const network of ['overlay', 'freeflow'] as const) {
    const invocation = buildMpirunInvocation(inputs(2, network));
    assert.is(mcaOf(invocation.argv).osc, '^ucx');
    assert.is(invocation.oneSided.components, '^ucx');
  }
});

test('one-sided: the plan says which component serves windows across which pairs', () => {
  const twoContainers = inputs(4, 'freeflow');
  const shmOnly = { ...twoContainers.plan, paths: [['self', 'shm'], ['shm', 'self']] as JobPlan['paths'] };
  assert.match(buildMpirunInvocation({ ...twoContainers, plan: shmOnly }).oneSided.summary, /^osc rdma over the freeflow BTL .* for every window$/);
  const withTcp = { ...twoContainers.plan, paths: [['self', 'tcp'], ['tcp', 'self']] as JobPlan['paths'] };
  assert.match(buildMpirunInvocation({ ...twoContainers, plan: withTcp }).oneSided.summary, /osc pt2pt for windows spanning tcp or router pairs.*--inter-host handoff/);
  assert.match(buildMpirunInvocation(inputs(4, 'overlay')).oneSided.summary, /^osc pt2pt for windows across containers/);
  const oneContainer = inputs(2, 'freeflow');
  const packed = { ...oneContainer.plan, ranks: oneContainer.plan.ranks.map((rank) => ({ ...rank, container: 'ff-abc123-h0c0' })) };
  assert.match(buildMpirunInvocation({ ...oneContainer, plan: packed }).oneSided.summary, /one container/);
});

test("one-sided: the spec's own osc replaces ffrun's", () => {
  const base = inputs(2, 'freeflow');
  const invocation = buildMpirunInvocation({ ...base, spec: { ...base.spec, mca: { osc: 'pt2pt' } } });
  assert.is(mcaOf(invocation.argv).osc, 'pt2pt');
});

test.run();
