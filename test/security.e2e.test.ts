import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { FfrunProcess, runFfrun, waitFor } from './support/ffrun';
import { leftoversOf, processesMatching } from './support/leftovers';

/**
 * Issue 7 items 4 and 5 end to end, through ffrun with the stock mpirun and real runc containers:
 * `--mca` and spec `mca:` values reach orted as argv and are never run by a shell; ranks run as a
 * non-root user from the spec with no capabilities and the freeflow BTL still uses shared memory; the
 * job's files on the machine have the narrowest modes. Needs root.
 */
const BIN = path.join(REPO_ROOT, 'build', 'bin');
const test = suite<{ dir: string }>('ffrun security');

test.before.each((context) => {
  // The job's working directory: a read-write volume of every container, so a payload that ran inside a
  // container would leave its file here, on the machine.
  context.dir = mkdtempSync('/tmp/ff-security-');
  chmodSync(context.dir, 0o755);
});

test.after.each(({ dir }) => {
  rmSync(dir, { recursive: true, force: true });
});

function jobIdOf(stderr: string): string {
  const id = /setting up cluster ([a-z0-9]{6})/.exec(stderr)?.[1];
  if (id === undefined) throw new Error(`no job id in ffrun's output:\n${stderr}`);
  return id;
}

function assertClean(jobId: string, marker?: RegExp): void {
  const problems = leftoversOf(jobId, marker === undefined ? {} : { marker });
  assert.equal(problems, [], `job ${jobId} left: ${problems.join('\n')}`);
}

/** The job ran, or failed with Open MPI's own complaint about the value: either way no shell ran it. */
function assertRanOrRefusedByOpenMpi(result: { code: number | null; stdout: string; stderr: string }): void {
  if (result.code === 0) return;
  assert.match(result.stdout + result.stderr, /MCA|parameter|invalid/i, `neither success nor an Open MPI error:\n${result.stderr}`);
}

test('an --mca value with $(...) and backticks reaches orted as a string: no shell runs it', async ({ dir }) => {
  const payload = `65536 $(touch ${dir}/pwned-dollar) \`touch ${dir}/pwned-backtick\``;
  const result = await runFfrun(['-n', '2', '--hosts', '2', '--mca', 'btl_tcp_eager_limit', payload, '--', path.join(BIN, 'ffcheck_allpairs')], undefined, {
    cwd: dir,
  });
  assert.equal(readdirSync(dir), [], 'the payload ran');
  assertRanOrRefusedByOpenMpi(result);
  assertClean(jobIdOf(result.stderr));
});

test('a job spec mca: value with $(...) and backticks is not run either', async ({ dir }) => {
  const spec = path.join(dir, 'job.yaml');
  writeFileSync(
    spec,
    [
      'name: injection',
      'cluster: {hosts: 2, containersPerHost: 1}',
      'ranks: 2',
      `program: {command: ${path.join(BIN, 'ffcheck_allpairs')}}`,
      'mca:',
      `  btl_tcp_eager_limit: '65536 $(touch ${dir}/pwned-spec) \`touch ${dir}/pwned-spec-tick\`'`,
      `  btl_tcp_rndv_eager_limit: '"; touch ${dir}/pwned-quote; "'`,
      '',
    ].join('\n'),
  );
  const result = await runFfrun(['run', spec], undefined, { cwd: dir });
  assert.equal(readdirSync(dir), ['job.yaml'], 'the payload ran');
  assertRanOrRefusedByOpenMpi(result);
  assertClean(jobIdOf(result.stderr));
});

test('--user 65534: ranks run as that user with no capabilities, and the freeflow BTL still uses shared memory', async ({ dir }) => {
  const identity = await runFfrun(
    ['-n', '2', '--containers-per-host', '2', '--user', '65534:65534', '--', '/bin/grep', '-E', '^(Uid|Gid|CapEff|CapBnd):', '/proc/self/status'],
    undefined,
    { cwd: dir },
  );
  assert.is(identity.code, 0, identity.stderr);
  for (const rank of [0, 1]) {
    assert.match(identity.stdout, new RegExp(`\\[rank ${rank}\\] Uid:\\s+65534\\s+65534\\s+65534\\s+65534`));
    assert.match(identity.stdout, new RegExp(`\\[rank ${rank}\\] Gid:\\s+65534\\s+65534\\s+65534\\s+65534`));
    assert.match(identity.stdout, new RegExp(`\\[rank ${rank}\\] CapEff:\\s+0{16}`));
    assert.match(identity.stdout, new RegExp(`\\[rank ${rank}\\] CapBnd:\\s+0{16}`));
  }
  assertClean(jobIdOf(identity.stderr));

  const result = await runFfrun(
    ['-n', '2', '--containers-per-host', '2', '--user', 'nobody', '--network', 'freeflow', '--json', '--', path.join(BIN, 'ffcheck_allpairs')],
    undefined,
    { cwd: dir },
  );
  assert.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout) as { paths: { planned: string[]; actual: string[] | null; fallbacks: unknown[] } };
  assert.equal(report.paths.planned, ['sm', 'ms']);
  assert.equal(report.paths.actual, ['sm', 'ms'], 'the BTL reported shared memory between the two containers');
  assert.equal(report.paths.fallbacks, []);
});

test('a running job as user 65534: state dir 0700 and container map 0600 (root), shared dir 0700 and path table 0600 (the user)', async ({ dir }) => {
  const job = new FfrunProcess(['-n', '1', '--user', '65534:65534', '--', '/bin/sleep', '4721'], { cwd: dir });
  let jobId: string;
  try {
    await waitFor('the rank to run', () => processesMatching(/^\/bin\/sleep 4721$/).length === 1).catch((error: Error) => {
      const related = processesMatching(/mpirun|orted|runc|ffrun-rsh|sleep 4721/).map((p) => `${p.pid} ${p.command}`);
      throw new Error(`${error.message}; ffrun printed:\n${job.stderr}\n${job.stdout}\nprocesses:\n${related.join('\n')}`);
    });
    jobId = jobIdOf(job.stderr);
    const stateDir = `/run/freeflow-jobs/${jobId}`;
    const facts = (file: string) => {
      const stat = lstatSync(file);
      return { uid: stat.uid, gid: stat.gid, mode: (stat.mode & 0o7777).toString(8), file: stat.isFile() };
    };
    assert.equal(facts(stateDir), { uid: 0, gid: 0, mode: '700', file: false });
    assert.equal(facts(path.join(stateDir, 'containers')), { uid: 0, gid: 0, mode: '600', file: true });
    assert.equal(facts(path.join(stateDir, 'owner.pid')), { uid: 0, gid: 0, mode: '600', file: true });
    assert.is(facts(path.join(stateDir, 'hostfile')).mode, '600', 'hostfile'); // no rankfile any more (docs/node-sharing.md)
    const shared = path.join(stateDir, 'hosts', 'h0', 'shared');
    assert.equal(facts(shared), { uid: 65534, gid: 65534, mode: '700', file: false });
    assert.equal(facts(path.join(shared, 'paths')), { uid: 65534, gid: 65534, mode: '600', file: true });
    assert.ok(statSync(path.join(stateDir, 'runc')).isDirectory(), 'runc keeps its state in the job');
  } finally {
    await job.stop();
  }
  assertClean(jobId, /^\/bin\/sleep 4721$/);
});

test('an unknown user name is refused before anything is built, with the fix', async ({ dir }) => {
  const result = await runFfrun(['-n', '1', '--user', 'no-such-user-here', '--', '/bin/true'], undefined, { cwd: dir });
  assert.is.not(result.code, 0);
  assert.match(result.stderr, /no-such-user-here is not in this machine's \/etc\/passwd/);
  assert.match(result.stderr, /uid:gid/);
  assert.not.ok(/setting up cluster/.test(result.stderr), 'a cluster was built');
  assert.not.ok(existsSync(path.join(dir, 'pwned')));
});

test.run();
