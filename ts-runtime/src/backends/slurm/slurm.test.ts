import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildMpirunInvocation } from '../../launcher/mpirun-invocation';
import type { OutputLine } from '../../launcher/rank-output';
import type { JobPlan } from '../../orchestrator/plan';
import { slurmConf, plugstackConf } from './conf';
import { parseAgentsFile, parseSlurmConfig, pluginArguments } from './existing';
import { srunFailure } from './failures';
import { assertRuncInstalled } from './preflight';
import { SrunOutputParser } from './srun-output';
import { buildSrunInvocation } from './srun-invocation';
import { validateJobSpec } from '../../spec/validate';
import { parseBenchArgs } from '#bench/args';
import { slurmModeRefusal } from '.';

/** Unit tests of the Slurm backend's pure parts; test/slurm.e2e.test.ts runs it for real. */
function plan(): JobPlan {
  return {
    jobId: 'abc123',
    key: '0'.repeat(32),
    network: 'freeflow',
    launch: 'host',
    placement: 'fill',
    interHost: { requested: 'auto', agents: [{ reachable: true }, { reachable: true }], pairs: [] },
    hosts: [
      { index: 0, name: 'h0' },
      { index: 1, name: 'h1' },
    ],
    ranks: [0, 1, 2, 3].map((rank) => ({ rank, host: rank >> 1, containerIndex: rank & 1, container: `ff-abc123-h${rank >> 1}c${rank & 1}` })),
    paths: [],
  };
}

function mpirun() {
  return buildMpirunInvocation({
    plan: plan(),
    spec: {
      program: { command: '/repo/build/bin/app', args: ['--size', '8 M'] },
      env: { GREETING: 'hi there' },
      mca: { btl_tcp_eager_limit: '65536' },
      cluster: { hosts: 2, containersPerHost: 2, slotsPerContainer: 1 },
    },
    cpus: 2,
    overlaySubnet: '10.244.0.0/16',
    rshAgent: '/repo/build/bin/ffrun-rsh',
    forkAgent: '/repo/build/bin/ffrun-fork-agent',
    containerMapFile: '/run/freeflow-jobs/abc123/containers',
    hostNames: ['ff-abc123-h0', 'ff-abc123-h1'],
    btlDir: '/repo/build/btl',
    stateDir: '/run/freeflow-jobs/abc123',
  });
}

test('srun gets the plan: pmix, the plugin option, one node per task, the fork agent in Slurm mode, the program with its arguments', () => {
  const srun = buildSrunInvocation({
    mpirun: mpirun(),
    jobId: 'abc123',
    nodeOfRank: ['ff-abc123-h0', 'ff-abc123-h0', 'ff-abc123-h1', 'ff-abc123-h1'],
    timeoutSeconds: 300,
  });
  const { argv } = srun;
  assert.is(argv[0], 'srun');
  for (const option of [
    '--mpi=pmix',
    '--freeflow=abc123',
    '--ntasks=4',
    '--nodes=2',
    '--distribution=arbitrary',
    '--nodelist=ff-abc123-h0,ff-abc123-h0,ff-abc123-h1,ff-abc123-h1',
    '--label',
  ])
    assert.ok(argv.includes(option), option);
  const agent = argv.indexOf('/repo/build/bin/ffrun-fork-agent');
  assert.is(argv[agent + 1], '--slurm');
  const words = argv.slice(agent);
  assert.equal(words.slice(words.indexOf('--containers'), words.indexOf('--containers') + 2), [
    '--containers',
    'ff-abc123-h0c0,ff-abc123-h0c1,ff-abc123-h1c0,ff-abc123-h1c1',
  ]);
  assert.equal(argv.slice(-4), ['--', '/repo/build/bin/app', '--size', '8 M']);
  assert.is(srun.env.GREETING, 'hi there');
});

test("the tasks' environment file: the same MCA settings as mpirun's, minus mpirun's launch machinery, plus direct launch", () => {
  const srun = buildSrunInvocation({ mpirun: mpirun(), jobId: 'abc123', nodeOfRank: ['a', 'a', 'b', 'b'], timeoutSeconds: 60 });
  const lines = srun.taskEnv.trim().split('\n');
  for (const expected of [
    'OMPI_MCA_pml=ob1',
    'OMPI_MCA_btl=self,vader,freeflow,tcp',
    'OMPI_MCA_btl_tcp_eager_limit=65536',
    'OMPI_MCA_btl_vader_backing_directory=/run/freeflow',
    'OMPI_MCA_ess=pmi',
    'OMPI_MCA_schizo=^orte',
    'FFRUN_CONTAINER_MAP=/run/freeflow-jobs/abc123/containers',
  ])
    assert.ok(lines.includes(expected), `${expected} in\n${srun.taskEnv}`);
  for (const line of lines) {
    assert.match(line, /^(OMPI_MCA_|FFRUN_|FREEFLOW_|PMIX_MCA_|UCX_)[A-Za-z0-9_]+=/, 'only names the SPANK plugin accepts');
    assert.not.match(line, /plm_rsh|orte_fork_agent|oob_tcp/);
  }
});

test('slurm.conf: no cgroups, pmix directories in the shared directory, munge socket, one node line per host', () => {
  const text = slurmConf({
    jobId: 'abc123',
    controllerName: 'vm',
    controllerAddress: '10.244.255.254',
    nodes: [
      { name: 'ff-abc123-h0', address: '10.244.1.1' },
      { name: 'ff-abc123-h1', address: '10.244.2.1' },
    ],
    cpusPerNode: 64,
    slurmDir: '/run/freeflow-jobs/abc123/slurm',
    mungeSocket: '/run/freeflow-jobs/abc123/slurm/munge/munge.socket',
    plugstackConf: '/run/freeflow-jobs/abc123/slurm/plugstack.conf',
    tmpFs: '/run/freeflow',
  });
  for (const line of [
    'SlurmctldHost=vm(10.244.255.254)',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SlurmdParameters=config_overrides',
    'TmpFS=/run/freeflow',
    'SlurmdSpoolDir=/run/freeflow/slurmd',
    'AuthInfo=socket=/run/freeflow-jobs/abc123/slurm/munge/munge.socket',
    'PlugStackConfig=/run/freeflow-jobs/abc123/slurm/plugstack.conf',
    'NodeName=ff-abc123-h1 NodeAddr=10.244.2.1 CPUs=64 State=UNKNOWN',
  ])
    assert.ok(text.split('\n').includes(line), line);
  // every path ffrun writes lies under the job's state directory or the nodes' shared directories
  for (const match of text.matchAll(/=(\/[^\s(]*)/g)) assert.match(match[1]!, /^\/run\/freeflow(-jobs\/abc123\/|\/|$)|^\/bin\/true$/);
  assert.is(
    plugstackConf('/repo/build/lib/spank_freeflow.so', '/run/freeflow-jobs'),
    'required /repo/build/lib/spank_freeflow.so state_root=/run/freeflow-jobs shared_dir=/run/freeflow\n',
  );
});

test("srun's labelled output becomes rank lines; srun's own lines have no rank; a line cut in two chunks is one line", () => {
  const lines: OutputLine[] = [];
  const parser = new SrunOutputParser('stdout', (line) => lines.push(line));
  parser.push('0: hello\n 12: wor');
  parser.push('ld: x\nsrun: error: node: task 1: Exited with exit code 2\n3: last');
  parser.end();
  assert.equal(lines, [
    { rank: 0, stream: 'stdout', text: 'hello' },
    { rank: 12, stream: 'stdout', text: 'world: x' },
    { rank: undefined, stream: 'stdout', text: 'srun: error: node: task 1: Exited with exit code 2' },
    { rank: 3, stream: 'stdout', text: 'last' },
  ]);
});

test("srun's own failures are typed: the plugin missing, the controller unreachable; a rank's failure is the job's", () => {
  const outcome = { exitCode: 1, signal: null, timedOut: false, interruptedBy: null, durationMs: 1 };
  assert.is(srunFailure(outcome, ["srun: unrecognized option '--freeflow=abc123'"])?.code, 'SPANK_PLUGIN_NOT_LOADED');
  assert.is(
    srunFailure(outcome, ['srun: error: Unable to allocate resources: Unable to contact slurm controller (connect failure)'])?.code,
    'SLURM_UNREACHABLE',
  );
  assert.is(srunFailure(outcome, ['srun: error: node: task 1: Exited with exit code 1']), undefined);
  assert.is(srunFailure({ ...outcome, exitCode: 0 }, ["srun: unrecognized option '--freeflow'"]), undefined);
});

test('scontrol show config is read as settings; a missing runc is RUNC_MISSING naming the package', () => {
  const settings = parseSlurmConfig('Configuration data as of x\nPlugStackConfig         = /etc/slurm/plugstack.conf\nMpiDefault              = none\n');
  assert.is(settings.get('PlugStackConfig'), '/etc/slurm/plugstack.conf');
  try {
    assertRuncInstalled('/nonexistent/runc');
    assert.unreachable('no error');
  } catch (error) {
    assert.is((error as { code: string }).code, 'RUNC_MISSING');
    assert.match((error as { hint: string }).hint, /apt-get install runc/);
  }
});

test('specs: backend slurm is one field of the one spec format; it refuses the overlay, a per-container launch, and slurmConf without it', () => {
  const base = { name: 'x', cluster: { hosts: 2, containersPerHost: 2 }, ranks: 4, program: { command: '/bin/true' } };
  assert.is(validateJobSpec({ ...base, backend: 'slurm' }, { kind: 'file', path: 'x.yaml' }).backend, 'slurm');
  assert.is(validateJobSpec(base, { kind: 'file', path: 'x.yaml' }).backend, undefined);
  for (const [bad, field] of [
    [{ backend: 'slurm', network: 'overlay' }, 'backend'],
    [{ backend: 'slurm', launch: 'container' }, 'backend'],
    [{ slurmConf: '/etc/slurm/slurm.conf' }, 'slurmConf'],
    [{ backend: 'pbs' }, 'backend'],
  ] as const) {
    try {
      validateJobSpec({ ...base, ...bad }, { kind: 'file', path: 'x.yaml' });
      assert.unreachable(JSON.stringify(bad));
    } catch (error) {
      assert.is((error as { code: string }).code, 'SPEC_INVALID', JSON.stringify(bad));
      assert.match((error as Error).message, field);
    }
  }
});

test("an existing cluster's node pieces: the plugin line's arguments, the agents file, the generated plugstack line", () => {
  const line = plugstackConf('/p/spank_freeflow.so', '/run/freeflow-jobs', {
    nodeRoot: '/run/freeflow',
    agentsFile: '/etc/freeflow/agents',
    agentControl: '/run/x.sock',
  });
  assert.is(
    line,
    'required /p/spank_freeflow.so state_root=/run/freeflow-jobs shared_dir=/run/freeflow node_root=/run/freeflow agents=/etc/freeflow/agents agent_control=/run/x.sock\n',
  );
  const args = pluginArguments(`# site\noptional /other.so x=1\n${line}`)!;
  assert.is(args.get('node_root'), '/run/freeflow');
  assert.is(args.get('agents'), '/etc/freeflow/agents');
  assert.is(pluginArguments('required /other.so\n'), undefined);
  assert.is(pluginArguments(plugstackConf('/p/spank_freeflow.so', '/r'))!.get('agents'), undefined, 'the embedded line has no node pieces');
  const agents = parseAgentsFile('# node address\nn0 10.0.0.1:7470\n  n1 10.0.0.2:7471  \nbad line\nn2 example.org:7470\n');
  assert.equal(
    [...agents],
    [
      ['n0', '10.0.0.1:7470'],
      ['n1', '10.0.0.2:7471'],
    ],
  );
});

test('ffrun bench --backend slurm: parsed, and only modes Slurm can launch run through it', () => {
  assert.is(parseBenchArgs(['--quick', '--backend', 'slurm']).backend, 'slurm');
  assert.is(parseBenchArgs(['--quick']).backend, 'local');
  assert.throws(() => parseBenchArgs(['--backend', 'pbs']), /--backend must be local or slurm/);
  assert.is(slurmModeRefusal({ network: 'freeflow' }), null);
  assert.match(slurmModeRefusal({ network: 'overlay' }) ?? '', /network freeflow jobs only/);
  assert.match(slurmModeRefusal({ network: 'freeflow', hostNetwork: true }) ?? '', /host-network/);
});

test.run();
