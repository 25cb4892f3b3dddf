import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FFRUN_MAIN, FfrunProcess, waitFor } from '#test/support/ffrun';
import { leftoversOf } from '#test/support/leftovers';
import type { Progress } from '#runtime/job/progress';
import { runJobOnCluster, withProbedCluster, type ProbedCluster } from '#runtime/job/run-job';
import { fallbacks } from '#runtime/orchestrator/actual-paths';
import { placeRanks } from '#runtime/orchestrator/placement';
import type { JobSpec } from '#runtime/spec/schema';
import { PATH_CHAR } from '#runtime/orchestrator/path-kind';
import { parseLinkMtus } from './machine';
import { BENCH_CLUSTER, clusterMtusOf, jobForMode, modeById, modeRefusal, MODES, type ModeId, type MtuClass } from './modes';
import { parseMpiResult } from './mpi-result';
import type { MpiPass } from './profiles';
import { loadRawReport, type RunRecord } from './raw';
import { resultPathInContainer, takeResultFile } from './result-file';
import { executeRun, FFBENCH_MPI, type RunContext } from './run-one';

/**
 * ffbench end to end on the real embedded cluster with the real Open MPI and the freeflow BTL: every
 * ffbench_mpi subcommand in --validate mode (every received byte checked) through the harness's own
 * runner, a corrupted byte and a bad option failing, then `ffrun bench` itself and its interruption.
 * Needs root. Leftover checks look at the whole machine.
 */
/** The harness's benchmark processes (others may run ffbench_mpi on the machine at the same time). */
const HARNESS_PROGRAMS = /(ffbench_mpi|NPopenmpi) .*\/run\/freeflow\/(ffbench\.json|netpipe\.out)/;
const quiet: Progress = { step: (_label, work) => work(), note: () => {} };
const SIZES = [1, 3, 8, 1024, 9000, 65536];

async function onBenchCluster<T>(work: (probed: ProbedCluster) => Promise<T>, mtu: MtuClass = 'default'): Promise<T> {
  let jobId = '';
  const shape = { ...BENCH_CLUSTER, agents: true, ...clusterMtusOf(mtu) };
  const { result } = await withProbedCluster(shape, { progress: quiet, interrupt: new AbortController().signal }, (probed) => {
    jobId = probed.cluster.jobId;
    return work(probed);
  });
  assert.equal(leftoversOf(jobId), [], `the benchmark cluster ${jobId} left something`);
  return result;
}

function contextFor(probed: ProbedCluster, passes: readonly MpiPass[]): RunContext {
  return { probed, profile: { passes, netpipe: null }, validate: true, timeoutSeconds: 120, progress: quiet, interrupt: new AbortController().signal };
}

/** Modes the launcher accepts; a refused one must be refused for its inter-host plane, by the spec validation. */
function runnable(modes: readonly ModeId[]): ModeId[] {
  return modes.filter((id) => {
    const refusal = modeRefusal(modeById(id));
    if (refusal !== null) assert.match(refusal, /^the launcher refuses it: interHost: /, id);
    return refusal === null;
  });
}

function assertCheckedOnItsPath(records: readonly RunRecord[], sizes: readonly number[]): void {
  for (const record of records) {
    const mode = modeById(record.mode);
    const what = `${record.mode} ${record.mpi?.benchmark ?? '?'}`;
    assert.is(record.status, 'ok', `${what}: ${record.problem ?? ''}\n${record.output.join('\n')}`);
    assert.is(record.mpi!.validation.passed, true, what);
    assert.ok(record.mpi!.validation.checked_bytes > 0, what);
    assert.equal(
      record.mpi!.results.map((r) => r.size),
      sizes,
      what,
    );
    const letter = PATH_CHAR[mode.expectedPath];
    if (mode.network === 'freeflow') assert.equal(record.paths.actual, [`s${letter}`, `${letter}s`], what);
  }
}

test('every mode carries checked bytes; freeflow runs latency, bw and bibw over shared memory and across hosts, as its reports say', async () => {
  const passes: MpiPass[] = (['latency', 'bw', 'bibw'] as const).map((benchmark) => ({ benchmark, sizes: SIZES, iterations: null, warmup: null }));
  const modes = runnable(MODES.filter((mode) => mode.mtu === 'default').map((mode) => mode.id));
  const freeflow = modes.filter((mode) => modeById(mode).network === 'freeflow');
  const plan: Array<{ mode: ModeId; pass: number }> = [
    ...modes.map((mode) => ({ mode, pass: 0 })),
    ...freeflow.flatMap((mode) => [
      { mode, pass: 1 },
      { mode, pass: 2 },
    ]),
  ];
  const records = await onBenchCluster(async (probed) => {
    const done = [];
    for (const [index, { mode, pass }] of plan.entries())
      done.push(await executeRun({ index, repetition: 1, mode, work: { kind: 'mpi', pass } }, contextFor(probed, passes)));
    return done;
  });
  assertCheckedOnItsPath(records, SIZES);
});

test('jumbo frames: the cross-host modes carry checked bytes on their paths; host-mode ranks are in the host namespace', async () => {
  const sizes = [8, 9000, 65536];
  const passes: MpiPass[] = [{ benchmark: 'bw', sizes, iterations: 2, warmup: 1 }];
  const modes = runnable(MODES.filter((mode) => mode.mtu === 'jumbo').map((mode) => mode.id));
  const { records, links } = await onBenchCluster(async (probed) => {
    const hostContainer = probed.cluster.containers.find((c) => c.network === 'host' && c.host === 0)!;
    const [inHostContainer, inOwnContainer] = await Promise.all([
      probed.cluster.execInContainer(hostContainer, ['ip', '-o', 'link', 'show']),
      probed.cluster.execInContainer(probed.cluster.containers[0]!, ['ip', '-o', 'link', 'show']),
    ]);
    const done = [];
    for (const [index, mode] of modes.entries())
      done.push(await executeRun({ index, repetition: 1, mode, work: { kind: 'mpi', pass: 0 } }, contextFor(probed, passes)));
    return { records: done, links: { host: parseLinkMtus(inHostContainer.stdout), own: parseLinkMtus(inOwnContainer.stdout) } };
  }, 'jumbo');
  assertCheckedOnItsPath(records, sizes);
  assert.is(links.host.ul0, 9000, "a host-network container sees its host's underlay link, at MTU 9000");
  assert.is(links.own.eth0, 8950);
  assert.is(links.own.ul0, undefined, 'a container of its own sees no underlay');
});

test('mr, allreduce and alltoall with 4 ranks in 2 x 2 containers through freeflow (shm within, tcp across hosts)', async () => {
  await onBenchCluster(async (probed) => {
    for (const [benchmark, sizes] of [
      ['mr', '1,8,9000,65536'],
      ['allreduce', '4,8,12000,65536'],
      ['alltoall', '1,8,9000,65536'],
    ] as const) {
      const spec: JobSpec = {
        name: `smoke-${benchmark}`,
        cluster: { hosts: BENCH_CLUSTER.hosts, containersPerHost: BENCH_CLUSTER.containersPerHost, slotsPerContainer: 1 },
        ranks: 4,
        placement: 'fill',
        network: 'freeflow',
        interHost: 'auto',
        launch: 'auto',
        program: { command: FFBENCH_MPI, args: [benchmark, '--validate', '--sizes', sizes, '--json', resultPathInContainer('mpi')] },
        env: {},
        mca: {},
        timeoutSeconds: 120,
      };
      const output: string[] = [];
      const outcome = await runJobOnCluster(probed, spec, placeRanks(spec.cluster, spec.ranks, spec.placement), {
        progress: quiet,
        interrupt: new AbortController().signal,
        onPlan: () => {},
        onLine: (line) => output.push(line.text),
      });
      assert.is(outcome.mpirun.exitCode, 0, `${benchmark}:\n${output.join('\n')}`);
      const result = parseMpiResult(takeResultFile(probed.cluster.hosts[0]!.sharedDir, 'mpi', benchmark), benchmark);
      assert.is(result.validation.passed, true, benchmark);
      assert.is(result.job.ranks, 4);
      assert.equal(fallbacks(outcome.outcomes!), [], `${benchmark}: a planned shm pair fell back`);
      // Ranks 0 and 1 share host 0: the all-to-all traffic between them went through freeflow's shared memory.
      if (benchmark !== 'mr') assert.is(outcome.outcomes![0]![1]!.actual, 'shm', benchmark);
    }
  });
});

test('a corrupted byte through freeflow fails the run; a bad option is a failed run with its output', async () => {
  await onBenchCluster(async (probed) => {
    const job = jobForMode(modeById('freeflow-same-host'), { command: FFBENCH_MPI, args: ['bw', '--validate', '--inject-fault', '--sizes', '65536'] }, 120);
    const output: string[] = [];
    const corrupted = await runJobOnCluster(probed, job.spec, job.slots, {
      progress: quiet,
      interrupt: new AbortController().signal,
      onPlan: () => {},
      onLine: (line) => output.push(line.text),
    });
    assert.is(corrupted.mpirun.exitCode, 1, output.join('\n'));
    assert.match(output.join('\n'), /VALIDATION FAILED: bw: 1 of \d+ checked bytes were wrong/);

    const badPass: MpiPass = { benchmark: 'latency', sizes: [8], iterations: 0, warmup: null };
    const record = await executeRun({ index: 0, repetition: 1, mode: 'freeflow-same-host', work: { kind: 'mpi', pass: 0 } }, contextFor(probed, [badPass]));
    assert.is(record.status, 'failed');
    assert.is(record.problem, 'mpirun exited with code 2');
    assert.ok(
      record.output.some((line) => line.includes("option '--iterations' wants a whole number from 1 to 1000000000, not '0'")),
      record.output.join('\n'),
    );
  });
});

test('ffrun bench --quick --repetitions 1 --json to a slow reader: the whole document, the three reports, every mode measured, nothing left', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-e2e-'));
  const [out, readNow, saved] = ['report', 'read-now', 'stdout.json'].map((name) => path.join(dir, name)) as [string, string, string];
  // The reader starts reading only once ffrun has removed its cluster, so the pipe is full when ffrun ends:
  // ffrun must wait for the reader rather than exit with half its document.
  const script = 'set -o pipefail; "$1" "$2" bench --quick --repetitions 1 --out "$3" --json | { while [ ! -e "$4" ]; do sleep 0.1; done; cat > "$5"; }';
  const child = spawn('bash', ['-c', script, 'bash', process.execPath, FFRUN_MAIN, out, readNow, saved], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = once(child, 'close');
  try {
    await waitFor('the cluster to be removed', () => /tearing down cluster [a-z0-9]+: done/.test(stderr), 240_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    writeFileSync(readNow, '');
    const [code] = (await closed) as [number | null];
    assert.is(code, 0, stderr);
    const stdout = readFileSync(saved, 'utf8');
    assert.ok(stdout.length > 100_000, `stdout has only ${stdout.length} characters: a document cut short, or one too small to fill a pipe`);
    const { reports, ...fromStdout } = JSON.parse(stdout) as { reports: { raw: string; summary: string; html: string } };
    assert.is(reports.raw, path.join(out, 'raw.json'));
    assert.equal(fromStdout, JSON.parse(readFileSync(reports.raw, 'utf8')), 'stdout holds raw.json');
    assert.match(stderr, /\[ffbench +1\/\d+\] vader latency 1 B-4 KiB, repetition 1\/1: ok/);
    const raw = loadRawReport(reports.raw);
    assert.ok(
      raw.runs.every((run) => run.status === 'ok'),
      JSON.stringify(raw.runs.filter((run) => run.status !== 'ok')),
    );
    assert.is(new Set(raw.runs.map((run) => run.mode)).size, raw.modes.filter((mode) => mode.refused === null).length);
    assert.ok(
      raw.runs.some((run) => run.mode === 'freeflow-handoff'),
      'quick measures freeflow across hosts over h',
    );
    assert.match(readFileSync(reports.summary, 'utf8'), /^## Fig\. 7: overlay TCP vs freeflow, within and across hosts$/m);
    assert.match(readFileSync(reports.html, 'utf8'), /<svg /);
    for (const cluster of raw.clusters) assert.equal(leftoversOf(cluster.jobId, { marker: HARNESS_PROGRAMS }), []);
  } finally {
    writeFileSync(readNow, '');
    if (child.exitCode === null && child.signalCode === null) {
      // A failed check must not leave ffrun running: SIGINT to the pipeline makes it remove its cluster.
      spawnSync('pkill', ['-INT', '-P', String(child.pid)]);
      await closed;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGINT during a benchmark: exit 130, the cluster is removed, no report is written', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffbench-int-'));
  const out = path.join(dir, 'report');
  const ffrun = new FfrunProcess(['bench', '--quick', '--out', out]);
  try {
    await waitFor('the first benchmark runs to finish', () => /\[ffbench +2\//.test(ffrun.stderr), 60_000);
    const jobId = ffrun.jobId!;
    ffrun.child.kill('SIGINT');
    const result = await ffrun.finished(60_000);
    assert.is(result.code, 130, result.stderr);
    assert.match(result.stderr, /error\[INTERRUPTED\]/);
    assert.not.ok(existsSync(out), 'no report from an interrupted run');
    assert.equal(leftoversOf(jobId, { marker: HARNESS_PROGRAMS }), []);
  } finally {
    await ffrun.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
