import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PairOutcome } from '#runtime/orchestrator/actual-paths';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { idlePeersSection, idlePeersTable, idlePeersVerdict, parseIdlePeers, type IdlePeersRecord } from './idle-peers';
import { jobForMode, modeById } from './modes';
import { parseMpiResult, ranksOnDistinctCores } from './mpi-result';
import { loadRawReport } from './raw';
import { reportBlocks, stdoutBlocks } from './report-content';
import { renderText } from './render-text';
import { pathProblem } from './run-one';
import { SHM_TARGETS, evaluateTargets, statOf } from './summary';
import { ffErrorOf } from '#test/support/ff-error';

/** A recorded run of `ffbench_poll --rounds 15 --json` (2026-11-29, AMD EPYC, loaded machine). */
const RECORDED = readFileSync(path.join(REPO_ROOT, 'bench', 'fixtures', 'idle-peers.json'), 'utf8');

test('idle peers: the recorded run parses, and its verdict is the schedule at 63 idle peers over none', () => {
  const record = parseIdlePeers(RECORDED);
  const { ratio, met } = idlePeersVerdict(record);
  assert.ok(ratio !== null && ratio.n === record.rounds);
  assert.is(met, ratio!.median <= 1.2);
  const table = idlePeersTable(record);
  assert.is(table.rows.length, 8, 'scan and schedule at 0, 7, 31, 63 idle peers');
  const blocks = idlePeersSection(record);
  assert.match(JSON.stringify(blocks[1]), /required at most 1\.20x: (met|NOT met)/);
  assert.ok(blocks.some((block) => block.kind === 'chart' && block.svg.startsWith('<svg')));
  assert.equal(idlePeersSection(undefined), []);
});

test('idle peers: a schedule that grows with idle peers is NOT met; one that did not run is not measured', () => {
  const record = parseIdlePeers(RECORDED);
  const slow: IdlePeersRecord = {
    ...record,
    results: record.results.map((r) => (r.poll === 'schedule' && r.idle === 63 ? { ...r, vs_no_idle: r.half_round_trip_us.map(() => 1.5) } : r)),
  };
  assert.equal(idlePeersVerdict(slow).met, false);
  assert.match(JSON.stringify(idlePeersSection(slow)[1]), /NOT met/);
  const scanOnly: IdlePeersRecord = { ...record, results: record.results.filter((r) => r.poll === 'scan') };
  assert.equal(idlePeersVerdict(scanOnly), { ratio: null, met: null });
});

test('idle peers: output that is not ffbench_poll JSON is BENCH_RESULT_INVALID naming the problem', () => {
  assert.is(ffErrorOf(() => parseIdlePeers('round 1 idle 0 scan: 300 ns')).code, 'BENCH_RESULT_INVALID');
  const wrong = ffErrorOf(() => parseIdlePeers(JSON.stringify({ ...JSON.parse(RECORDED), version: 2 })));
  assert.is(wrong.code, 'BENCH_RESULT_INVALID');
  assert.match(wrong.message, /version/);
});

const outcome = (planned: PairOutcome['planned'], actual: PairOutcome['actual'], reason?: string): PairOutcome =>
  reason === undefined ? { planned, actual } : { planned, actual, reason };

test('4-rank runs: every pair must be on the path; ranks spread evenly over the 2 cores; 4 containers of one host', () => {
  const freeflow = modeById('freeflow-same-host');
  const all = (actual: PairOutcome['actual']): PairOutcome[][] =>
    [0, 1, 2, 3].map((from) => [0, 1, 2, 3].map((to) => (from === to ? outcome('self', 'self') : outcome('shm', actual))));
  assert.is(pathProblem(freeflow, all('shm')), null);
  const mrPairs = all('unknown');
  mrPairs[0]![2] = outcome('shm', 'shm');
  assert.is(pathProblem(freeflow, mrPairs), null, 'pairs that never talked are unreported');
  assert.is(pathProblem(freeflow, all('unknown')), 'the BTL reports: no pair of the 4 ranks used shm');
  const one = all('shm');
  one[2]![3] = outcome('shm', 'tcp', 'segment-not-found');
  assert.is(pathProblem(freeflow, one), 'the BTL reports: rank 2 -> rank 3 used tcp (segment-not-found), not shm');

  const base = parseMpiResult(
    JSON.stringify({
      schema: 'freeflow-bench-mpi',
      schema_version: 1,
      benchmark: 'allreduce',
      metric: 'collective',
      complete: true,
      timing_meaningful: true,
      job: { ranks: 4, hostnames: ['a', 'b', 'c', 'd'], cpus: ['0', '1', '0', '1'], mpi_library_version: 'Open MPI v4.1.4' },
      results: [],
      validation: { enabled: false, checked_bytes: 0, bad_bytes: 0, passed: null },
    }),
    'test',
  );
  assert.not.ok(ranksOnDistinctCores(base), '4 ranks on 2 cores: ffrun leaves them all unbound');
  assert.ok(ranksOnDistinctCores({ ...base, job: { ...base.job, cpus: ['0-1', '0-1', '0-1', '0-1'] } }));
  assert.not.ok(ranksOnDistinctCores({ ...base, job: { ...base.job, cpus: ['0-1', '0-1', '0', '1'] } }));

  const job = jobForMode(freeflow, { command: 'ffbench_mpi', args: [] }, 60, { ranks: 4, containersPerHost: 4 });
  assert.equal(
    job.slots.map((slot) => [slot.host, slot.containerIndex]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
    ],
  );
  const vader = jobForMode(modeById('vader'), { command: 'ffbench_mpi', args: [] }, 60, { ranks: 4, containersPerHost: 4 });
  assert.equal(
    vader.slots.map((slot) => [slot.host, slot.containerIndex]),
    [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  );
  assert.is(ffErrorOf(() => jobForMode(modeById('overlay-tcp'), { command: 'x', args: [] }, 60, { ranks: 4, containersPerHost: 4 })).code, 'INTERNAL');
  assert.is(jobForMode(freeflow, { command: 'ffbench_mpi', args: [] }, 60).spec.ranks, 2, '2 ranks unless said');
});

/** The shm profile's new parts, recorded on 2026-11-29 (3 repetitions, load average 40-56 on 2 vCPUs). */
const NEW_PARTS = path.join(REPO_ROOT, 'bench', 'fixtures', 'shm-new-parts-raw.json');

test('the shm report: message rate over 1 and 2 pairs, allreduce and alltoall on 4 ranks, idle peers, each with a verdict and a chart', () => {
  const raw = loadRawReport(NEW_PARTS);
  const results = evaluateTargets(raw, SHM_TARGETS);
  const labels = results.filter((r) => r.ratio !== null).map((r) => r.target.label);
  for (const expected of [/message rate, 1 pair/, /message rate, 2 pairs/, /^8 B allreduce/, /^64 KiB allreduce/, /^8 B alltoall/, /^64 KiB alltoall/]) {
    assert.ok(
      labels.some((label) => expected.test(label)),
      `${expected} measured`,
    );
  }
  // 4-rank metrics read only 4-rank runs, 2-rank ones only 2-rank runs: the two mr passes stay apart.
  const onePair = statOf(raw, 'vader', 'rate', 8)!;
  const twoPairs = statOf(raw, 'vader', 'rate-2pairs', 8)!;
  const mrRuns = raw.runs.filter((run) => run.mode === 'vader' && run.mpi?.benchmark === 'mr');
  assert.is(onePair.n + twoPairs.n, mrRuns.length);
  assert.ok(
    mrRuns.filter((run) => run.mpi!.job.ranks === 4).every((run) => run.status === 'ok'),
    '4-rank runs are valid runs',
  );
  const text = renderText(stdoutBlocks(raw, true));
  assert.match(text, /8 B message rate, 2 pairs, freeflow \/ vader .*(met|NOT met)/);
  assert.match(text, /Latency with 63 idle attached peers .*required at most 1\.20x: (met|NOT met)/);
  const charts = reportBlocks(raw).filter((block) => block.kind === 'chart' && block.svg !== '');
  assert.ok(charts.length >= 5, 'idle peers, message rate 1 and 2 pairs, allreduce, alltoall');
});

test.run();
