import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withSlurm } from '#runtime/backends/slurm/index';
import { runJobOnCluster, withProbedCluster } from '#runtime/job/run-job';
import type { Progress } from '#runtime/job/progress';
import { PATH_CHAR, type PathKind } from '#runtime/orchestrator/path-kind';
import { placeRanks } from '#runtime/orchestrator/placement';
import type { JobSpec } from '#runtime/spec/schema';
import { REPO_ROOT } from '#runtime/util/repo-root';
import type { Cluster } from '#runtime/cluster/index';
import { AGENT_PORT } from '#runtime/cluster/agents';
import { exec } from '#runtime/util/exec';
import { FFRUN_MAIN, FfrunProcess, jobIdOf, runFfrun, waitFor } from './support/ffrun';
import { ffrunArgs } from './support/ffrun-args';
import { leftoversOf, processesMatching } from './support/leftovers';

/**
 * The Slurm backend end to end (docs/slurm.md): one embedded Slurm (munged, slurmctld, a slurmd per
 * simulated host) on one 2 x 2 cluster runs the manifest's 4-rank programs through srun --mpi=pmix, every
 * rank in its own runc container, and each must pass with every pair on its planned path as the BTL
 * reports it (shm within a host, handoff across hosts); in the same cluster, the SPANK plugin refuses a
 * forged task file and srun without the plugin is SPANK_PLUGIN_NOT_LOADED, and the same Slurm serves as an
 * existing cluster (existingSlurmCases). Then `ffrun --backend slurm`
 * on the command line (the demo, plan/actual matrix), ffrun SIGKILLed mid-job then `ffrun clean`, and an
 * unreachable existing Slurm. Nothing may be
 * left. Needs root, Slurm and munge (scripts/setup.sh installs them).
 */
const quiet: Progress = { step: (_label, work) => work(), note: () => {} };
const CLUSTER = { hosts: 2, containersPerHost: 2 } as const;

function specOf(name: string, program: string, args: readonly string[], timeoutSeconds: number): JobSpec {
  return {
    name,
    cluster: { ...CLUSTER, slotsPerContainer: 1 },
    ranks: 4,
    placement: 'fill',
    network: 'freeflow',
    interHost: 'auto',
    launch: 'auto',
    backend: 'slurm',
    program: { command: path.join(REPO_ROOT, 'build', 'bin', program), args: [...args] },
    env: {},
    mca: {},
    timeoutSeconds,
  };
}

/**
 * The programs, as the manifest runs them on 2 x 2 containers (allpairs, names, nodeshare) or smaller where
 * the manifest's run takes minutes on a loaded machine (p2p up to 64 KiB: eager and rendezvous; rma's create
 * and allocate windows up to 64 KiB): the backends differ in how ranks start, not in what the programs
 * exchange once they run. Collectives run under the local backend only (btl.e2e): under srun they add no
 * launch path that p2p and rma do not take, and the test budget has no room for them.
 */
const RUNS: ReadonlyArray<{ name: string; program: string; args: string[]; expect: RegExp }> = [
  { name: 'allpairs', program: 'ffcheck_allpairs', args: ['--timeout', '60'], expect: /ffcheck_allpairs: all 1 subtests passed on 4 ranks/ },
  { name: 'names', program: 'ffcheck_names', args: ['--timeout', '60'], expect: /ffcheck_names: all 3 subtests passed on 4 ranks/ },
  { name: 'nodeshare', program: 'ffcheck_nodeshare', args: ['--ranks-per-host', '2'], expect: /PASS/ },
  { name: 'p2p', program: 'ffcheck_p2p', args: ['--max-size', '64K', '--timeout', '120'], expect: /ffcheck_p2p: all \d+ subtests passed on 4 ranks/ },
  { name: 'rma', program: 'ffcheck_rma', args: ['--flavours', 'create,allocate', '--big', '65536'], expect: /PASS/ },
];

test('one embedded Slurm on 2 hosts x 2 containers runs the 4-rank programs through srun, on their planned paths', async () => {
  let jobId = '';
  await withProbedCluster(
    { ...CLUSTER, agents: true, readOnlyVolumes: [REPO_ROOT] },
    { progress: quiet, interrupt: new AbortController().signal },
    async (probed) => {
      jobId = probed.cluster.jobId;
      await withSlurm(probed.cluster, { progress: quiet, nodePiecesAgentPort: AGENT_PORT + 1 }, async (launcher) => {
        for (const run of RUNS) {
          const spec = specOf(`slurm-${run.name}`, run.program, run.args, 180);
          const output: string[] = [];
          const outcome = await runJobOnCluster(
            probed,
            spec,
            placeRanks(spec.cluster, spec.ranks, spec.placement),
            { progress: quiet, interrupt: new AbortController().signal, onPlan: () => {}, onLine: (line) => output.push(`[${line.rank ?? '-'}] ${line.text}`) },
            launcher,
          );
          const text = output.join('\n');
          assert.is(outcome.mpirun.exitCode, 0, `${run.name}:\n${text}`);
          assert.match(text, run.expect, `${run.name}:\n${text}`);
          assert.not.match(text, /FAIL/, `${run.name}:\n${text}`);
          const letters = (row: readonly string[]) => row.map((kind) => PATH_CHAR[kind as PathKind] ?? '?').join('');
          const planned = outcome.plan.paths.map(letters);
          assert.equal(planned, ['smhh', 'mshh', 'hhsm', 'hhms'], run.name);
          const actual = outcome.outcomes!.map((row) => letters(row.map((pair) => pair.actual)));
          assert.equal(actual, planned, `${run.name}: the BTL reported ${JSON.stringify(outcome.outcomes)}`);
          // every rank ran in its own container (hostname = container name), started by slurmstepd
          if (run.program === 'ffcheck_allpairs') {
            for (const rank of outcome.plan.ranks) assert.match(text, new RegExp(`\\[${rank.rank}\\] rank ${rank.rank} on ${rank.container}: all 3 peers OK`));
          }
        }

        await existingSlurmCases(probed.cluster);

        // A forged task file (a symlink planted where the plugin reads): every task refuses to start.
        const slurmDir = path.join(probed.cluster.stateDir, 'slurm');
        const srun = (args: string[]) =>
          probed.cluster.execInLauncher(['srun', '--mpi=pmix', '-N', '2', '-n', '2', ...args, '/bin/true'], {
            env: { PATH: process.env.PATH, SLURM_CONF: path.join(slurmDir, 'slurm.conf') },
            allowFailure: true,
            timeoutMs: 60_000,
          });
        const taskEnv = path.join(slurmDir, 'task.env');
        fs.rmSync(taskEnv, { force: true });
        fs.writeFileSync(path.join(slurmDir, 'elsewhere'), 'FREEFLOW_X=1\n', { mode: 0o600 });
        fs.symlinkSync(path.join(slurmDir, 'elsewhere'), taskEnv);
        const forged = await srun([`--freeflow=${jobId}`]);
        assert.is.not(forged.code, 0, 'a symlinked task file is refused');
        assert.match(forged.stderr + forged.stdout, /spank|task_init|freeflow/i);
        // A task file writable by others: refused too.
        fs.rmSync(taskEnv);
        fs.writeFileSync(taskEnv, 'FREEFLOW_X=1\n', { mode: 0o600 });
        fs.chmodSync(taskEnv, 0o622);
        assert.is.not((await srun([`--freeflow=${jobId}`])).code, 0, 'a task file writable by others is refused');
        // A well-formed file: the same step starts (so the refusals above were the plugin's checks).
        fs.chmodSync(taskEnv, 0o600);
        const fine = await srun([`--freeflow=${jobId}`]);
        assert.is(fine.code, 0, fine.stderr);

        // Without the plugin in plugstack.conf srun does not know --freeflow: the launcher says which fix.
        fs.writeFileSync(path.join(slurmDir, 'plugstack.conf'), '\n');
        const spec = specOf('no-plugin', 'ffcheck_allpairs', [], 60);
        const error = await runJobOnCluster(
          probed,
          spec,
          placeRanks(spec.cluster, spec.ranks, spec.placement),
          { progress: quiet, interrupt: new AbortController().signal, onPlan: () => {}, onLine: () => {} },
          launcher,
        ).then(
          () => undefined,
          (thrown: { code?: string; hint?: string }) => thrown,
        );
        assert.is(error?.code, 'SPANK_PLUGIN_NOT_LOADED');
        assert.match(error?.hint ?? '', /plugstack\.conf/);
      });
    },
  );
  assert.equal(leftoversOf(jobId), [], `the Slurm cluster ${jobId} left something`);
});

/**
 * The same Slurm as "someone's existing cluster" (its nodes run an ffagent each and list the plugin with
 * node_root= and agents=): `ffrun --backend slurm --slurm-conf` from a login node (the launcher's network
 * namespace, a separate ffrun process) creates nothing itself. Each rank prints its BTL report from its
 * node's job directory: shm within a node, handoff across; then the nodes hold nothing of the job, after
 * success, after a failing program, after a job cancelled mid-run and after one node's slurmstepd was
 * SIGKILLed (the job epilog); a node without an agent is refused before anything is submitted.
 */
async function existingSlurmCases(cluster: Cluster): Promise<void> {
  const slurmDir = path.join(cluster.stateDir, 'slurm');
  const ffrunArgs = (program: string) => [
    ...['-n', '4', '--hosts', '2', '--containers-per-host', '2', '--backend', 'slurm'],
    ...['--slurm-conf', path.join(slurmDir, 'slurm.conf'), '--timeout', '120', '--', '/bin/sh', '-c', program],
  ];
  const ffrun = (program: string) =>
    exec('nsenter', [`--net=/run/netns/${cluster.launcher.netns}`, '--', process.execPath, FFRUN_MAIN, ...ffrunArgs(program)], {
      allowFailure: true,
      timeoutMs: 180_000,
      cwd: REPO_ROOT,
    });
  const nodeLeftovers = (jobId: string) =>
    cluster.hosts.flatMap((host) =>
      fs
        .readdirSync(host.sharedDir)
        .filter((name) => name === jobId || name.startsWith('.slurm-'))
        .map((name) => `${host.netns}: ${name}`),
    );
  const agentJobs = async () => {
    const lists = await Promise.all(
      cluster.hosts.map((host) => exec(path.join(REPO_ROOT, 'build', 'bin', 'ffagentctl'), [path.join(host.sharedDir, '.agent', 'control.sock'), 'list'])),
    );
    return lists.map((list) => list.stdout.trim());
  };
  const allpairs = path.join(REPO_ROOT, 'build', 'bin', 'ffcheck_allpairs');
  const good = await ffrun(`${allpairs} --timeout 60 && cat "$FREEFLOW_DIR/report.$SLURM_PROCID"`);
  assert.is(good.code, 0, good.stderr + good.stdout);
  const jobId = /hosts of job ([a-z0-9]+):/.exec(good.stdout)![1]!;
  assert.not.match(good.stderr, /setting up cluster/, 'no local cluster for an existing Slurm');
  for (const row of ['s m h h', 'm s h h', 'h h s m', 'h h m s']) assert.ok(good.stdout.includes(row), good.stdout);
  for (let rank = 0; rank < 4; rank++) {
    const host = Math.floor(rank / 2);
    const node = `${cluster.hosts[host]!.netns}`;
    // its own container: the planned name as hostname
    assert.match(good.stdout, new RegExp(`\\[rank ${rank}\\] rank ${rank} on ${node}-c${rank % 2}: all 3 peers OK`), good.stdout);
    for (let peer = 0; peer < 4; peer++) {
      if (peer === rank) continue;
      const kind = Math.floor(peer / 2) === host ? 'shm' : 'handoff';
      assert.match(good.stdout, new RegExp(`\\[rank ${rank}\\] peer ${peer} ${kind} [1-9]\\d* `), `rank ${rank} -> ${peer} is ${kind}:\n${good.stdout}`);
    }
  }
  await waitFor('the nodes to remove the job', () => nodeLeftovers(jobId).length === 0, 10_000).catch(() => {});
  assert.equal(nodeLeftovers(jobId), []);
  assert.equal(await agentJobs(), ['ok', 'ok'], "no job left on the nodes' agents");

  const failing = await ffrun('exit 3');
  assert.is(failing.code, 3, failing.stderr);
  const failedJob = /hosts of job ([a-z0-9]+):/.exec(failing.stdout)![1]!;
  await waitFor('the nodes to remove the failed job', () => nodeLeftovers(failedJob).length === 0, 10_000).catch(() => {});
  assert.equal(nodeLeftovers(failedJob), []);
  assert.equal(await agentJobs(), ['ok', 'ok']);

  // a job cancelled while its ranks run (scancel, as a user or a time limit would): the step's end cleans up too
  const inLauncher = ['nsenter', `--net=/run/netns/${cluster.launcher.netns}`, '--'];
  const scancel = (jobId: string) =>
    exec(inLauncher[0]!, [...inLauncher.slice(1), 'scancel', `--name=ff-${jobId}`], { env: { ...process.env, SLURM_CONF: path.join(slurmDir, 'slurm.conf') } });
  const startRanks = async (seconds: number) => {
    const child = spawn(inLauncher[0]!, [...inLauncher.slice(1), process.execPath, FFRUN_MAIN, ...ffrunArgs(`exec /bin/sleep ${seconds}`)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.resume();
    const ended = new Promise((resolve) => child.once('exit', resolve));
    await waitFor('the ranks to start', () => processesMatching(new RegExp(`^/bin/sleep ${seconds}$`)).length === 4, 60_000);
    return { ended, jobId: /hosts of job ([a-z0-9]+):/.exec(output)![1]! };
  };
  const cancelled = await startRanks(4719);
  await scancel(cancelled.jobId);
  await cancelled.ended;
  await waitFor(
    'the nodes to remove the cancelled job',
    () => nodeLeftovers(cancelled.jobId).length === 0 && processesMatching(/^\/bin\/sleep 4719$/).length === 0,
    15_000,
  ).catch(() => {});
  assert.equal(nodeLeftovers(cancelled.jobId), []);
  assert.equal(processesMatching(/^\/bin\/sleep 4719$/), []);
  assert.equal(await agentJobs(), ['ok', 'ok']);

  // one node's slurmstepd SIGKILLed mid-run, so its step-end clean-up never runs: the agent drops the job
  // with the lease at once, and the job epilog removes the directory and record once the job ends
  // a cancelled step's slurmstepd may still be exiting: only the new job's count
  const earlierStepds = new Set(processesMatching(/^slurmstepd: \[\d+\.0\]/).map((stepd) => stepd.pid));
  const killed = await startRanks(4721);
  const hostNet = `net:[${fs.statSync(`/run/netns/${cluster.hosts[0]!.netns}`).ino}]`;
  const inHost = (pid: number) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/net`) === hostNet;
    } catch {
      return false;
    }
  };
  const stepds = processesMatching(/^slurmstepd: \[\d+\.0\]/).filter((stepd) => inHost(stepd.pid) && !earlierStepds.has(stepd.pid));
  assert.is(stepds.length, 1, JSON.stringify(stepds));
  process.kill(stepds[0]!.pid, 'SIGKILL');
  for (let tries = 0; tries < 50 && (await agentJobs())[0] !== 'ok'; tries++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.is((await agentJobs())[0], 'ok', "the killed slurmstepd's lease ended the agent's registration");
  await scancel(killed.jobId);
  await killed.ended;
  await waitFor('the epilog to remove the job', () => nodeLeftovers(killed.jobId).length === 0, 20_000).catch(() => {});
  assert.equal(nodeLeftovers(killed.jobId), []);
  // (with proctrack/linuxproc, Slurm itself loses the tasks of a killed slurmstepd: ours to end here)
  for (const orphan of processesMatching(/^\/bin\/sleep 4721$/)) process.kill(orphan.pid, 'SIGKILL');
  assert.equal(await agentJobs(), ['ok', 'ok']);

  // one node without an agent: refused before anything is submitted
  const agentsFile = path.join(slurmDir, 'agents');
  const agents = fs.readFileSync(agentsFile, 'utf8');
  fs.writeFileSync(
    agentsFile,
    agents
      .split('\n')
      .filter((line) => !line.includes(`${cluster.hosts[1]!.netns} `))
      .join('\n'),
  );
  const lacking = await ffrun('true');
  fs.writeFileSync(agentsFile, agents);
  assert.is(lacking.code, 1, lacking.stderr);
  assert.match(lacking.stderr, new RegExp(`error\\[SLURM_MISCONFIGURED\\].*no agent: ${cluster.hosts[1]!.netns}`));
  assert.not.match(lacking.stdout, /hosts of job/);
}

test('ffrun --backend slurm: the demo through srun, plan and actual matrix shown, nothing left', async () => {
  const result = await runFfrun(['run', path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--backend', 'slurm']);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stderr, /booting an embedded Slurm: slurmctld and 2 slurmd: done/);
  assert.match(result.stdout, /planned\/actual as reported by the BTL/);
  for (const row of ['s/s m/m h/h h/h', 'm/m s/s h/h h/h', 'h/h h/h s/s m/m', 'h/h h/h m/m s/s']) assert.ok(result.stdout.includes(row), result.stdout);
  assert.match(result.stdout, /^\[rank 0\] PASS allpairs /m);
  assert.equal(leftoversOf(jobIdOf(result.stderr)), []);
});

test('ffrun --backend slurm SIGKILLed while its ranks run: `ffrun clean` removes daemons, containers, namespaces, munge key and spool', async () => {
  const ffrun = new FfrunProcess(ffrunArgs({ ranks: 4, hosts: 2, containersPerHost: 2, backend: 'slurm', timeout: 120 }, ['/bin/sleep', '4718']));
  try {
    await waitFor('the ranks to start', () => processesMatching(/^\/bin\/sleep 4718$/).length === 4, 90_000);
  } catch (error) {
    await ffrun.stop();
    throw error;
  }
  const jobId = ffrun.jobId!;
  assert.ok(processesMatching(new RegExp(`slurmd .*ff-${jobId}-h1`)).length > 0, 'a slurmd of the job runs');
  ffrun.child.kill('SIGKILL');
  await ffrun.finished();
  const clean = await runFfrun(['clean']);
  assert.is(clean.code, 0, clean.stderr);
  // (on a shared machine another engineer's ffrun may have reaped it first: what counts is that nothing is left)
  await waitFor(
    'killed processes to be reaped',
    () => leftoversOf(jobId, { marker: /sleep 4718|munged .*freeflow-jobs|slurmctld .*freeflow-jobs/ }).length === 0,
    10_000,
  ).catch(() => {});
  assert.equal(leftoversOf(jobId, { marker: /sleep 4718/ }), []);
});

test('an existing Slurm that does not answer is SLURM_UNREACHABLE, before any cluster is built', async () => {
  const dir = fs.mkdtempSync('/tmp/ff-slurm-test-');
  try {
    const conf = path.join(dir, 'slurm.conf');
    fs.writeFileSync(
      conf,
      'ClusterName=nowhere\nSlurmctldHost=nowhere(127.0.0.1)\nSlurmctldPort=9\nAuthType=auth/none\nCredType=cred/none\nMessageTimeout=2\nNodeName=n1 CPUs=1\nPartitionName=p Nodes=n1\n',
    );
    const result = await runFfrun(['-n', '2', '--backend', 'slurm', '--slurm-conf', conf, '--', '/bin/true']);
    assert.is(result.code, 1, result.stderr);
    assert.match(result.stderr, /error\[SLURM_UNREACHABLE\]/);
    assert.match(result.stderr, /hint: .*scontrol ping/);
    assert.not.match(result.stderr, /setting up cluster/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
