import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exec } from '../util/exec';
import { createLocalCluster } from './local';
import { runtimeProgram } from './runtime-files';
import { testJobId } from '#test/support/cluster';
import type { Cluster } from './types';

/** The rsh agent, driven as mpirun drives it and as ffrun does, against real containers. */
const test = suite<{ cluster: Cluster }>('ffrun-rsh agent');

test.before(async (context) => {
  context.cluster = await createLocalCluster({ jobId: testJobId(), hosts: 2, containersPerHost: 1 });
});

test.after(async ({ cluster }) => {
  await cluster?.destroy();
});

function agent(cluster: Cluster, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  return exec(cluster.rshAgent, args, {
    env: { PATH: process.env.PATH, FFRUN_CONTAINER_MAP: cluster.containerMapFile, ...env },
    allowFailure: true,
  });
}

test('mpirun form: words are split with shell quoting, without a shell, inside the named container', async ({ cluster }) => {
  const target = cluster.containers[1];
  if (!target) throw new Error('expected 2 containers');
  // orted's command line arrives as words with quotes inside them.
  const result = await agent(cluster, [
    target.name,
    ' printf',
    "'%s\\n'",
    '"$(hostname)"',
    '-mca',
    'orte_hnp_uri',
    '"1.0;tcp://10.244.255.254:4000"',
    "'a  b'",
    '`id`',
  ]);
  assert.is(result.stderr, '');
  assert.is(result.stdout, `$(hostname)\n-mca\norte_hnp_uri\n1.0;tcp://10.244.255.254:4000\na  b\n\`id\`\n`);
});

test('mpirun form: shell operators are refused with exit 255 and nothing runs', async ({ cluster }) => {
  const target = cluster.containers[1];
  if (!target) throw new Error('expected 2 containers');
  for (const words of [
    ['true;', 'touch', '/run/freeflow/pwned'],
    ['true', '&&', 'touch', '/run/freeflow/pwned'],
    ['touch', '$(touch /run/freeflow/pwned)'],
  ]) {
    const result = await agent(cluster, [target.name, ...words]);
    assert.is(result.code, 255, words.join(' '));
    assert.match(result.stderr, /refusing an unquoted shell operator/);
  }
  const host = cluster.hosts[target.host];
  assert.not.ok(fs.existsSync(path.join(host!.sharedDir, 'pwned')), 'a refused command ran');
});

test('the agent refuses a container map that someone other than root could have written', async ({ cluster }) => {
  const target = cluster.containers[0];
  if (!target) throw new Error('expected 2 containers');
  const copy = path.join(cluster.stateDir, 'map-copy');
  fs.copyFileSync(cluster.containerMapFile, copy);
  try {
    fs.chmodSync(copy, 0o622);
    const writable = await agent(cluster, ['--argv', target.name, 'true'], { FFRUN_CONTAINER_MAP: copy });
    assert.is(writable.code, 255);
    assert.match(writable.stderr, /refusing container map/);
    fs.chmodSync(copy, 0o600);
    fs.chownSync(copy, 65534, 65534);
    const foreign = await agent(cluster, ['--argv', target.name, 'true'], { FFRUN_CONTAINER_MAP: copy });
    assert.is(foreign.code, 255);
    assert.match(foreign.stderr, /owned by root/);
  } finally {
    fs.rmSync(copy, { force: true });
  }
});

test('the command gets only PATH, HOME, LANG and the MPI/UCX/freeflow variables', async ({ cluster }) => {
  const target = cluster.containers[0];
  if (!target) throw new Error('expected 2 containers');
  const result = await agent(cluster, ['--argv', target.name, 'env'], {
    OMPI_MCA_test: '1',
    PMIX_TEST: '2',
    FREEFLOW_TEST: '3',
    UCX_TLS: 'tcp',
    LD_LIBRARY_PATH: '/opt/x',
    SECRET_TOKEN: 'no',
  });
  const names = result.stdout
    .trim()
    .split('\n')
    .map((line) => line.split('=')[0])
    .sort();
  assert.equal(names, ['FREEFLOW_TEST', 'HOME', 'LANG', 'LD_LIBRARY_PATH', 'OMPI_MCA_test', 'PATH', 'PMIX_TEST', 'UCX_TLS']);
});

test('--argv runs argv as given, in a working directory resolved inside the container', async ({ cluster }) => {
  const target = cluster.containers[0];
  if (!target) throw new Error('expected 2 containers');
  // /run/freeflow exists only inside containers.
  const result = await agent(cluster, ['--argv', '--cwd', '/run/freeflow', target.name, 'bash', '-c', 'pwd; echo "$1"', 'ignored', 'one ; word']);
  assert.is(result.stdout, '/run/freeflow\none ; word\n');
});

test('exit status, stdin and default signal handling pass through the agent', async ({ cluster }) => {
  const target = cluster.containers[0];
  if (!target) throw new Error('expected 2 containers');
  assert.is((await agent(cluster, [target.name, 'bash -c "exit 7"'])).code, 7);
  const echoed = await exec(cluster.rshAgent, ['--argv', target.name, 'cat'], {
    env: { PATH: process.env.PATH, FFRUN_CONTAINER_MAP: cluster.containerMapFile },
    input: 'through stdin\n',
  });
  assert.is(echoed.stdout, 'through stdin\n');
  const ignored = await agent(cluster, ['--argv', target.name, 'grep', 'SigIgn', '/proc/self/status']);
  assert.is(ignored.stdout, 'SigIgn:\t0000000000000000\n');
});

for (const [signal, number] of [
  ['SIGTERM', 15],
  ['SIGHUP', 1],
  ['SIGINT', 2],
] as const) {
  test(`${signal} to the agent reaches the command (runc exec forwards it) and leaves no zombie in the container`, async ({ cluster }) => {
    const target = cluster.containers[0];
    if (!target) throw new Error('expected 2 containers');
    const marker = `sleep 3${number}`;
    const running = spawn(cluster.rshAgent, [target.name, marker], {
      env: { PATH: process.env.PATH, FFRUN_CONTAINER_MAP: cluster.containerMapFile },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => running.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    const inside = (script: string) => cluster.execInContainer(target, ['bash', '-c', script]).then((result) => result.stdout);
    for (let tries = 0; (await inside(`pgrep -fxc "${marker}" || true`)).trim() !== '1'; tries++) {
      if (tries > 200) throw new Error('the command never started');
      await sleep(10);
    }
    running.kill(signal);
    assert.is(await exited, 128 + number, `the agent reports the command killed by ${signal}`);
    assert.is(await inside(`ps -eo stat=,args= | grep -E "^Z|${marker}" | grep -v grep || true`), '');
  });
}

test("a host name of the map runs the command as that host: its network namespace and host name, the shared directory at /run/freeflow, the machine's other files (a program under /tmp)", async ({
  cluster,
}) => {
  const host = cluster.hosts[1];
  if (!host) throw new Error('expected 2 hosts');
  const marker = `host-form-${process.pid}`;
  const program = fs.mkdtempSync(path.join(os.tmpdir(), 'ffrun-rsh-program-'));
  fs.writeFileSync(path.join(program, 'present'), '');
  try {
    const result = await agent(cluster, [
      host.netns,
      'bash',
      '-c',
      `"hostname; ip -o -4 addr show dev br0 | grep -o '10[.]244[.][0-9.]*/16'; echo $OMPI_MCA_orte_tmpdir_base; touch /run/freeflow/${marker}; test -e ${program}/present && echo program visible"`,
    ]);
    assert.is(result.stderr, '');
    assert.is(result.stdout, `${host.netns}\n10.244.2.1/16\n/run/freeflow\nprogram visible\n`);
    assert.ok(fs.existsSync(path.join(host.sharedDir, marker)), 'the host shared directory is /run/freeflow');
    assert.not.ok(fs.existsSync('/run/freeflow'), 'nothing is created on the machine');
    assert.equal(
      fs.readdirSync('/tmp').filter((name) => name.includes('machine-run')),
      [],
      'no staging directory in /tmp',
    );
  } finally {
    fs.rmSync(path.join(host.sharedDir, marker), { force: true });
    fs.rmSync(program, { recursive: true, force: true });
  }
});

test('the fork agent (orte_fork_agent) started in a host enters the planned container, pins the rank and names the node for PMIx', async ({ cluster }) => {
  const host = cluster.hosts[0]!;
  const container = cluster.containers.find((c) => c.host === 0)!;
  const forkAgent = runtimeProgram('ffrun-fork-agent');
  const result = await agent(
    cluster,
    [
      host.netns,
      forkAgent,
      '--cpus',
      '0',
      '--enter',
      cluster.rshAgent,
      cluster.containerMapFile,
      '--containers',
      container.name,
      '--host',
      `${host.netns}=${container.name}`,
      '--',
      'bash',
      '-c',
      '"hostname; grep Cpus_allowed_list /proc/self/status; echo $PMIX_HOSTNAME"',
    ],
    { OMPI_MCA_ess_base_jobid: String(0x10001), OMPI_COMM_WORLD_RANK: '0' },
  );
  assert.is(result.stderr, '');
  assert.is(result.stdout, `${container.name}\nCpus_allowed_list:\t0\n${host.netns}\n`);
  const elsewhere = await agent(
    cluster,
    [
      host.netns,
      forkAgent,
      '--enter',
      cluster.rshAgent,
      cluster.containerMapFile,
      '--containers',
      cluster.containers.find((c) => c.host === 1)!.name,
      '--host',
      `${host.netns}=${container.name}`,
      '--',
      'true',
    ],
    { OMPI_MCA_ess_base_jobid: String(0x10001), OMPI_COMM_WORLD_RANK: '0' },
  );
  assert.is(elsewhere.code, 255);
  assert.match(elsewhere.stderr, /is not on this host/);
});

test('an unknown host name fails with exit 255 and names the known containers', async ({ cluster }) => {
  const result = await agent(cluster, ['ff-nosuch-h9c9', 'true']);
  assert.is(result.code, 255);
  assert.match(result.stderr, /unknown container 'ff-nosuch-h9c9'/);
  assert.ok(result.stderr.includes(cluster.containers[0]?.name ?? '?'), result.stderr);
});

test('a missing container map fails with exit 255 and says what to set', async ({ cluster }) => {
  const unset = await exec(cluster.rshAgent, [cluster.containers[0]?.name ?? '', 'true'], { env: { PATH: process.env.PATH }, allowFailure: true });
  assert.is(unset.code, 255);
  assert.match(unset.stderr, /FFRUN_CONTAINER_MAP is not set/);
  const gone = await agent(cluster, [cluster.containers[0]?.name ?? '', 'true'], { FFRUN_CONTAINER_MAP: '/nonexistent/containers' });
  assert.is(gone.code, 255);
  assert.match(gone.stderr, /does not exist/);
});

test('the stock mpirun starts ranks in containers on both hosts through the agent', async ({ cluster }) => {
  const hosts = cluster.containers.map((container) => container.name);
  const result = await cluster.execInLauncher(
    [
      'mpirun',
      '--allow-run-as-root',
      '--mca',
      'plm_rsh_agent',
      cluster.rshAgent,
      '--mca',
      'plm_rsh_no_tree_spawn',
      '1',
      '--mca',
      'oob_tcp_if_include',
      cluster.overlaySubnet,
      '--bind-to',
      'none',
      '--wdir',
      '/',
      '--host',
      hosts.join(','),
      '-np',
      String(hosts.length),
      'bash',
      '-c',
      'echo "$OMPI_COMM_WORLD_RANK $(hostname)"',
    ],
    { env: { ...process.env, FFRUN_CONTAINER_MAP: cluster.containerMapFile }, timeoutMs: 60000 },
  );
  assert.equal(
    result.stdout.trim().split('\n').sort(),
    hosts.map((name, rank) => `${rank} ${name}`),
  );
});

test.run();
