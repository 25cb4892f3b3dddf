import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { compareWithReports, fallbacks, isFallback, NO_REPORT } from './actual-paths';
import { parseBtlReport, readBtlReports, readReportFile, reportFileName } from './btl-report';
import { formatPathMatrix, formatPlanVersusActual } from './format-plan';
import type { JobPlan } from './plan';

const DOCUMENTED = `freeflow-report 1
rank 0
peer 1 shm 1200 98304
peer 2 declined path-table-says-tcp
peer 3 declined host-mismatch
end
`;

test('the documented report parses', () => {
  const report = parseBtlReport(DOCUMENTED, 'x');
  assert.is(report.rank, 0);
  assert.equal(report.peers.get(1), { kind: 'shm', messages: 1200, bytes: 98304 });
  assert.equal(report.peers.get(3), { kind: 'declined', reason: 'host-mismatch' });
});

test('router lines (path r) parse like handoff lines', () => {
  const report = parseBtlReport(DOCUMENTED.replace('peer 2 declined path-table-says-tcp', 'peer 2 router 40 4194304'), 'x');
  assert.equal(report.peers.get(2), { kind: 'router', messages: 40, bytes: 4194304 });
});

for (const [what, text] of [
  ['truncated', DOCUMENTED.replace('end\n', '')],
  ['unknown version', DOCUMENTED.replace('report 1', 'report 9')],
  ['unknown line', DOCUMENTED.replace('peer 1 shm', 'peer 1 rdma')],
] as const) {
  test(`a ${what} report is refused`, () => {
    assert.throws(
      () => parseBtlReport(text, 'f'),
      (e: FfError) => e instanceof FfError && /BTL report f is malformed/.test(e.message),
    );
  });
}

const plan: JobPlan = {
  jobId: 'abc123',
  key: '0'.repeat(32),
  network: 'freeflow',
  launch: 'host',
  placement: 'fill',
  interHost: {
    requested: 'auto',
    agents: [{ reachable: true }, { reachable: false, problem: 'connect ECONNREFUSED' }],
    pairs: [{ hosts: [0, 1], plane: 'tcp', reason: 'FF_PLANE_REASON_AGENT_UNREACHABLE', why: 'an ffagent is missing; h1: connect ECONNREFUSED' }],
  },
  hosts: [
    { index: 0, name: 'h0' },
    { index: 1, name: 'h1' },
  ],
  ranks: [0, 1, 2].map((rank) => ({ rank, host: rank === 2 ? 1 : 0, containerIndex: rank === 1 ? 1 : 0, container: `c${rank}` })),
  paths: [
    ['self', 'shm', 'tcp'],
    ['shm', 'self', 'tcp'],
    ['tcp', 'tcp', 'self'],
  ],
};

/** The plan with its tcp pairs (those across hosts) planned handoff. */
const handoffPlan: JobPlan = { ...plan, paths: plan.paths.map((row) => row.map((kind) => (kind === 'tcp' ? 'handoff' : kind))) };

/** Report directories of hosts h0 and h1, `h0Reports` (rank -> report text) written into h0's; removed after `check`. */
function withHostReportDirs(h0Reports: Readonly<Record<number, string>>, check: (dirs: string[]) => void): void {
  const root = mkdtempSync(path.join(tmpdir(), 'ffreport-'));
  try {
    const dirs = [path.join(root, 'h0'), path.join(root, 'h1')];
    for (const dir of dirs) mkdirSync(dir);
    for (const [rank, text] of Object.entries(h0Reports)) writeFileSync(path.join(dirs[0]!, reportFileName(Number(rank))), text);
    check(dirs);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function fallbackPairs(outcomes: ReturnType<typeof compareWithReports>): number[][] {
  return fallbacks(outcomes).map(({ from, to }) => [from, to]);
}

test('plan vs actual: reports are read from each rank host directory; a shm pair that fell back is flagged loudly', () => {
  const reports = {
    0: 'freeflow-report 1\nrank 0\npeer 1 shm 10 640\npeer 2 declined path-table-says-tcp\nend\n',
    1: 'freeflow-report 1\nrank 1\npeer 0 declined segment-foreign-job\nend\n',
  };
  // rank 2 died before MPI_Finalize: no report
  withHostReportDirs(reports, (dirs) => {
    const outcomes = compareWithReports(plan, readBtlReports(plan.ranks, dirs), { succeeded: false });
    const actualOfRank0 = outcomes[0]!.map((o) => o.actual);
    assert.equal(actualOfRank0, ['self', 'shm', 'tcp']);
    assert.equal(outcomes[1]![0], { planned: 'shm', actual: 'tcp', reason: 'segment-foreign-job' });
    assert.is(outcomes[2]![0]!.actual, 'unknown');
    assert.equal(fallbackPairs(outcomes), [[1, 0]]);
    const text = formatPlanVersusActual(plan, outcomes);
    assert.match(text, /m\/t!/);
    assert.match(text, /t\/\?/);
    assert.match(
      text,
      /!!! WARNING: 1 pair\(s\) planned for shared memory did NOT use it:\n!!! {3}rank 1 -> rank 0: used tcp \(BTL declined: segment-foreign-job\)/,
    );
  });
});

test('a rank of a successful job that wrote no report broke the plan: its shm pairs are flagged', () => {
  withHostReportDirs({ 0: 'freeflow-report 1\nrank 0\npeer 1 shm 10 640\nend\n' }, (dirs) => {
    const outcomes = compareWithReports(plan, readBtlReports(plan.ranks, dirs), { succeeded: true });
    assert.equal(fallbackPairs(outcomes), [[1, 0]]);
    assert.is(outcomes[2]![0]!.reason, NO_REPORT); // planned tcp: listed, not flagged
    assert.match(formatPlanVersusActual(plan, outcomes), /rank 1 -> rank 0: rank finished without a freeflow report/);
  });
});

test('the planned matrix has one row per sending rank', () => {
  const lines = formatPathMatrix(plan).split('\n');
  assert.match(lines[0]!, /path matrix, planned \(network freeflow; s=self m=shm t=tcp h=handoff r=router\)/);
  assert.match(lines[2]!, /^ {2}rank 0\s+s\s+m\s+t$/);
  assert.match(lines[4]!, /^ {2}rank 2\s+t\s+t\s+s$/);
  // ranks on two hosts: the plane of every pair of hosts and its reason close the matrix
  assert.match(lines[5]!, /^ {2}between hosts \(inter-host auto\):$/);
  assert.match(lines[6]!, /^ {4}h0 <-> h1: tcp \(FF_PLANE_REASON_AGENT_UNREACHABLE: an ffagent is missing; h1: connect ECONNREFUSED\)$/);
  // and the one-sided line (what serves the job's windows) ends the plan
  assert.match(lines[7]!, /^ {2}one-sided: osc /);
  // and how the ranks are launched (docs/node-sharing.md)
  assert.match(lines[8]!, /^ {2}launch: one orted per host/);
  assert.is(lines.length, 9);
  // pairs of hosts without ranks are not listed; one host: no line at all
  const oneHost: JobPlan = { ...plan, ranks: plan.ranks.slice(0, 2), paths: plan.paths.slice(0, 2).map((row) => row.slice(0, 2)) };
  assert.not.match(formatPathMatrix(oneHost), /between hosts/);
});

test('a handoff line is parsed and a pair planned h that reports it used h, no fallback', () => {
  const report = parseBtlReport('freeflow-report 1\nrank 0\npeer 1 shm 3 300\npeer 2 handoff 5 1048576\nend\n', 'report.0');
  assert.equal(report.peers.get(2), { kind: 'handoff', messages: 5, bytes: 1048576 });
  const outcomes = compareWithReports(handoffPlan, new Map([[0, report]]), { succeeded: false });
  assert.equal(outcomes[0]![2], { planned: 'handoff', actual: 'handoff' });
  assert.not.ok(isFallback(outcomes[0]![2]!));
  assert.match(formatPlanVersusActual(handoffPlan, outcomes), /rank 0\s+s\/s\s+m\/m\s+h\/h/);
});

test("a pair planned h that the BTL declined is a fallback, named with the BTL's reason", () => {
  const reports = new Map([[0, { rank: 0, peers: new Map([[2, { kind: 'declined' as const, reason: 'path-table-says-handoff' }]]) }]]);
  // a failed job: ranks without a report are not suspicious, so only the declined pair is listed
  const outcomes = compareWithReports(handoffPlan, reports as never, { succeeded: false });
  assert.equal(outcomes[0]![2], { planned: 'handoff', actual: 'tcp', reason: 'path-table-says-handoff' });
  assert.ok(isFallback(outcomes[0]![2]!));
  assert.match(
    formatPlanVersusActual(handoffPlan, outcomes),
    /planned for handoff did NOT use it:\n!!! {3}rank 0 -> rank 2: used tcp \(BTL declined: path-table-says-handoff\)/,
  );
});

test('reports are read only from regular files: a symlink or a FIFO planted in the shared directory counts as no report', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ffreport-'));
  try {
    const secret = path.join(root, 'secret');
    writeFileSync(secret, 'freeflow-report 1\nrank 0\nend\n');
    const link = path.join(root, reportFileName(0));
    symlinkSync(secret, link);
    assert.is(readReportFile(link), undefined);
    const fifo = path.join(root, reportFileName(1));
    execFileSync('mkfifo', [fifo]);
    assert.is(readReportFile(fifo), undefined, 'a FIFO must neither block nor be read');
    assert.is(readReportFile(path.join(root, 'missing')), undefined);
    assert.is(readReportFile(secret), 'freeflow-report 1\nrank 0\nend\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
