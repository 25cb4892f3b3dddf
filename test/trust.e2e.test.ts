import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { componentPathSetting } from '#runtime/launcher/mpirun-invocation';
import type { FfrunResult } from './support/ffrun';
import { ffrunArgs, type RunFlags } from './support/ffrun-args';
import { programMarker } from './support/manifest';
import { SharedClusters, type SharedCluster } from './support/shared-cluster';

/**
 * Issue 7 end to end.
 *
 * Item 2: a rank breaks a freeflow segment (its own or its peer's: corrupt header, truncate, unlink,
 * replace with a symlink or a fifo), before the pair's first message or after both attached, across two
 * containers under ffrun; then the pair exchanges 1 KiB, 70,000 B, 1 MiB and 16 MiB both ways
 * (ffcheck_sabotage). The job must finish with correct data, both directions on the same path, well
 * within its timeout: no hang, no crash. Before the fix, 0->1 fell back to tcp while 1->0 stayed on shm:
 * the 70,000 B rendezvous hung and 1 MiB crashed ob1.
 *
 * Item 1: a hostile local user (nobody) plants symlinks to a root-owned file under every report name a
 * root plain-mpirun job could use, and a path table of its own, in /dev/shm (the old default directory),
 * in the new default directory if it can, and in a sticky shared directory given with btl_freeflow_dir.
 * The file must be unchanged afterwards and the job must have run over freeflow alone (btl self,freeflow).
 */

const SABOTAGE = path.join('build', 'bin', 'ffcheck_sabotage');
/** This checkout's sabotage program (other sessions may run theirs meanwhile). */
const SABOTAGE_MARKER = programMarker('ffcheck_sabotage');
const NOBODY = 65534;

interface Case {
  how: string;
  target: 'own' | 'peer';
  by: 0 | 1;
  when: 'before' | 'after';
  first: 0 | 1;
}

const cases: Case[] = [
  { how: 'corrupt', target: 'own', by: 1, when: 'before', first: 0 },
  { how: 'truncate', target: 'peer', by: 0, when: 'before', first: 0 },
  { how: 'unlink', target: 'own', by: 0, when: 'before', first: 1 },
  { how: 'symlink', target: 'peer', by: 1, when: 'before', first: 1 },
  { how: 'fifo', target: 'own', by: 1, when: 'before', first: 0 },
  { how: 'corrupt', target: 'own', by: 1, when: 'after', first: 0 },
  { how: 'unlink', target: 'peer', by: 0, when: 'after', first: 1 },
];

// Every sabotage job runs on one cluster of 1 host x 2 containers (test/support/shared-cluster.ts), each with
// its own key, segments and path tables; a new cluster per job added only its boot.
const SHAPE = { hosts: 1, containersPerHost: 2, agents: false } as const;
const clusters = new SharedClusters();

/** ffcheck_sabotage breaking a segment as `c` says, on the shared cluster with network freeflow. */
async function runSabotage(c: Case, flags: Pick<RunFlags, 'launch' | 'json'> = {}): Promise<{ cluster: SharedCluster; result: FfrunResult }> {
  const cluster = await clusters.for(SHAPE);
  const program = [SABOTAGE, '--how', c.how, '--target', c.target, '--by', String(c.by), '--when', c.when, '--first', String(c.first)];
  const result = await cluster.run(ffrunArgs({ ranks: 2, hosts: 1, containersPerHost: 2, network: 'freeflow', timeout: 60, ...flags }, program));
  return { cluster, result };
}

if (!process.env.FF_TRUST_ONLY_HOSTILE)
  for (const c of cases) {
    const name = `${c.how} ${c.target} segment by rank ${c.by}, ${c.when} the first message (rank ${c.first} sends first)`;
    test(`sabotage: ${name}`, async () => {
      const started = Date.now();
      // One orted per container: the BTL then adds its peer on the first send, after the sabotage. (With
      // one orted per host the containers are one node and Open MPI adds local peers in MPI_Init.)
      const { cluster, result } = await runSabotage(c, { launch: 'container', json: true });
      const output = result.stderr;
      assert.not.match(output, /Segmentation fault|SIGSEGV|signal 11|Bus error|SIGBUS/, `crashed:\n${output}`);
      assert.is(result.code, 0, `expected success (correct data):\n${output}`);
      assert.match(output, /sabotage: ok/, output);
      assert.ok(Date.now() - started < 60_000, 'took too long');
      const report = JSON.parse(result.stdout) as { paths: { actual?: string[] | null } };
      const actual = report.paths.actual ?? [];
      // Both directions of the pair take the same path; before the first message a broken segment means tcp.
      assert.is(actual[0]?.[1], actual[1]?.[0], `asymmetric pair: ${JSON.stringify(report.paths)}`);
      assert.is(actual[0]?.[1], c.when === 'before' ? 't' : 'm', `path: ${JSON.stringify(report.paths)}\n${output}`);
      const problems = await cluster.jobLeftovers({ marker: SABOTAGE_MARKER });
      assert.equal(problems, [], problems.join('\n'));
    });
  }

/** What nobody plants in `dir`: symlinks to `victim` under report names and the temporary names the old
 * BTL used (report.<rank>.tmp.<pid> for the pids about to be handed out), and a path table of its own. */
function plant(dir: string, victim: string): void {
  const lastPid = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
  const table = [
    'freeflow-path-table 1',
    'job evil',
    'key 0123456789abcdef0123456789abcdef',
    'hosts 1',
    'host 0 h0',
    'ranks 2',
    'rank 0 0 c0',
    'rank 1 0 c1',
    'paths',
    'sm',
    'ms',
    'end',
    '',
  ].join('\n');
  // one python process rather than thousands of ln processes
  const script = [
    'import os, sys',
    'd, victim, table, last = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])',
    'if not os.access(d, os.W_OK | os.X_OK): sys.exit(0)',
    'try:',
    '    open(os.path.join(d, "paths"), "w").write(table)',
    'except OSError: pass',
    'for r in (0, 1):',
    '    for n in ["report.%d" % r] + ["report.%d.tmp.%d" % (r, p) for p in list(range(2, 65)) + list(range(last + 1, last + 3000))]:',
    '        try: os.symlink(victim, os.path.join(d, n))',
    '        except OSError: pass',
  ].join('\n');
  const r = spawnSync(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/usr/bin/python3', '-c', script, dir, victim, table, String(lastPid)],
    { encoding: 'utf8' },
  );
  assert.is(r.status, 0, `planting as nobody failed: ${r.stderr}`);
}

test('sabotage: the ring a peer sends through is overwritten after attach: its owner stops the job naming the corrupt ring', async () => {
  const started = Date.now();
  const { cluster, result } = await runSabotage({ how: 'ring', target: 'own', by: 1, when: 'after', first: 0 });
  const output = `${result.stdout}${result.stderr}`;
  assert.not.match(output, /Segmentation fault|SIGSEGV|signal 11|Bus error|SIGBUS/, `crashed:\n${output}`);
  assert.not.match(output, /JOB_TIMEOUT/, `hung:\n${output}`);
  assert.ok(result.code !== 0, `expected a failure:\n${output}`);
  assert.match(output, /freeflow: .*the ring from [0-9a-f]+:0 in our segment .* is corrupt/, output);
  assert.ok(Date.now() - started < 60_000, 'took too long');
  const problems = await cluster.jobLeftovers({ marker: SABOTAGE_MARKER });
  assert.equal(problems, [], problems.join('\n'));
});

test('the sabotage cluster is torn down and leaves nothing', async () => {
  const problems = await clusters.close(SHAPE, { marker: SABOTAGE_MARKER });
  assert.equal(problems, [], problems.join('\n'));
});

function unplant(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if (/^report\.\d+(\.tmp\.\d+)?$/.test(entry) || entry === 'paths') rmSync(path.join(dir, entry), { force: true });
  }
}

/** The BTL under test: this checkout's build, or FF_TEST_BTL_DIR. */
const BTL_DIR = process.env.FF_TEST_BTL_DIR ?? path.join(REPO_ROOT, 'build', 'btl');

function plainMpirun(extra: string[], options: { btl?: string; btlDir?: string } = {}): { code: number | null; output: string } {
  const r = spawnSync(
    'mpirun',
    [
      '--oversubscribe',
      '--allow-run-as-root',
      '--bind-to',
      'none',
      '--mca',
      'mpi_yield_when_idle',
      '1',
      '--mca',
      'pml',
      'ob1',
      '--mca',
      'btl',
      options.btl ?? 'self,freeflow',
      ...extra,
      '-n',
      '2',
      SABOTAGE,
      '--how',
      'none',
      '--dir',
      '/nonexistent',
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...process.env,
        OMPI_MCA_mca_base_component_path: componentPathSetting(options.btlDir ?? BTL_DIR).value,
      },
    },
  );
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/**
 * Open MPI 4.1.4's relay of ranks' help messages to mpirun now and then drops one ("ORTE_ERROR_LOG: Data unpack
 * ... show_help.c", open-mpi/ompi#8356; its own help-mca-var.txt messages too). Such a run is repeated, 8 times at
 * most; `relayLost` says whether the last one still lost a message, so a case checks the text only when it arrived.
 */
const RELAY_LOST = /ORTE_ERROR_LOG: .*\/show_help\.c /;
function plainMpirunRelayed(extra: string[], options: { btl?: string; btlDir?: string } = {}): { code: number | null; output: string; relayLost: boolean } {
  let run = plainMpirun(extra, options);
  for (let attempt = 1; attempt < 8 && RELAY_LOST.test(run.output); attempt++) run = plainMpirun(extra, options);
  const relayLost = RELAY_LOST.test(run.output);
  if (relayLost) console.log('  (Open MPI 4.1.4 dropped the help relay in 8 attempts: its text not checked this time)');
  return { ...run, relayLost };
}

test('hostile local user: planted report symlinks and path tables cannot make a root plain-mpirun job write through them', () => {
  const scratch = mkdtempSync('/tmp/ff-trust-');
  const victim = path.join(scratch, 'precious');
  writeFileSync(victim, 'precious\n', { mode: 0o644 });
  chmodSync(scratch, 0o755);
  // a directory like /dev/shm that everyone may write to, passed with btl_freeflow_dir
  const shared = path.join(scratch, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  // The default directory is private to the job (/dev/shm/freeflow-<euid>-<job family>, mode 0700): nobody
  // cannot plant inside it, so the plants go where nobody can write.
  const privateDirs = () => readdirSync('/dev/shm').filter((name) => name.startsWith(`freeflow-${process.geteuid!()}-`));
  const before = privateDirs();
  try {
    for (const dir of ['/dev/shm', shared]) plant(dir, victim);

    // plain mpirun, default directory
    const run = plainMpirun([]);
    assert.is(run.code, 0, `job failed:\n${run.output}`);
    assert.match(run.output, /sabotage: ok/);
    assert.is(readFileSync(victim, 'utf8'), 'precious\n', 'the root-owned file was overwritten');
    assert.equal(privateDirs(), before, 'the job left its private directory under /dev/shm');

    // plain mpirun, a shared sticky directory with nobody's path table: refused with the reason, job on shm
    const refused = plainMpirunRelayed(['--mca', 'btl_freeflow_dir', shared, '--mca', 'btl_freeflow_report', '1']);
    assert.is(refused.code, 0, `job failed:\n${refused.output}`);
    if (!refused.relayLost) assert.match(refused.output, /ignoring the path table .*FF_ERR_UNTRUSTED.*owned by uid 65534/);
    assert.is(readFileSync(victim, 'utf8'), 'precious\n', 'the root-owned file was overwritten');
  } finally {
    unplant('/dev/shm');
    rmSync(scratch, { recursive: true, force: true });
  }
});

// Issue 12: the BTL's user-facing messages go through opal_show_help and btl/help-btl-freeflow.txt.
test('a bad BTL parameter is explained from the help file, and still named without it', () => {
  // Both ranks refuse btl_freeflow_copy=bogus (their pair then takes vader): mpirun prints the topic once.
  const bogus = ['--mca', 'btl_freeflow_copy', 'bogus'];
  const relayed = plainMpirunRelayed(bogus, { btl: 'self,vader,freeflow' });
  assert.is(relayed.code, 0, `job failed:\n${relayed.output}`);
  assert.match(relayed.output, /sabotage: ok/);
  if (!relayed.relayLost) {
    // Rendered from the help file, once per rank at most; mpirun folds the second rank's copy into "1 more
    // process has sent help message" unless its relay dropped that copy (seen in CI), so that line is not required.
    const shown = relayed.output.match(/btl_freeflow_copy=bogus is not a copy routine/g)?.length ?? 0;
    assert.ok(shown >= 1 && shown <= 2, relayed.output);
    assert.match(relayed.output, /Fix: use one of auto, libc, blocks, movsb, avx2, avx512, nt/);
  }

  // The component alone, without its help file: each rank still names the problem and the missing file.
  const bare = mkdtempSync('/tmp/ff-nohelp-');
  try {
    copyFileSync(path.join(BTL_DIR, 'mca_btl_freeflow.so'), path.join(bare, 'mca_btl_freeflow.so'));
    const run = plainMpirun(bogus, { btl: 'self,vader,freeflow', btlDir: bare });
    assert.is(run.code, 0, `job failed:\n${run.output}`);
    const missing = /error 'bad-copy-routine', explained in help-btl-freeflow\.txt, which is missing from \/tmp\/ff-nohelp-/g;
    assert.is(run.output.match(missing)?.length, 2, run.output);
    assert.not.match(run.output, /Sorry!/);
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test.run();
