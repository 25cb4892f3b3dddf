import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { parsePathTable } from '../native/path-table-reader';
import { formatPathTable } from './path-table';
import { EXAMPLE_PLAN as plan } from '#test/support/example-plan';
import type { JobPlan } from './plan';

const DOCUMENTED = `freeflow-path-table 1
job 3f9c2a
key 8d2f0a4be61c9d7700112233445566ff
hosts 2
host 0 h0
host 1 h1
ranks 4
rank 0 0 ff-3f9c2a-h0c0
rank 1 0 ff-3f9c2a-h0c1
rank 2 1 ff-3f9c2a-h1c0
rank 3 1 ff-3f9c2a-h1c1
paths
smtt
mstt
ttsm
ttms
end
`;

test('the written table is the documented example, after a comment line', () => {
  const text = formatPathTable(plan);
  assert.ok(text.startsWith('# '));
  assert.is(text.slice(text.indexOf('\n') + 1), DOCUMENTED);
});

test('it parses back to the same table', () => {
  const table = parsePathTable(formatPathTable(plan));
  assert.is(table.jobId, plan.jobId);
  assert.is(table.key, plan.key);
  assert.equal(table.hosts, plan.hosts);
  assert.equal(
    table.ranks,
    plan.ranks.map(({ rank, host, container }) => ({ rank, host, container })),
  );
  assert.equal(table.paths, plan.paths);
});

test('a plan with h is written as format 2 and parses back; without h it stays format 1', () => {
  const handoff: JobPlan = {
    ...plan,
    interHost: { requested: 'handoff', agents: [], pairs: [{ hosts: [0, 1], plane: 'handoff', reason: 'FF_PLANE_REASON_USER_HANDOFF', why: 'handoff' }] },
    paths: plan.paths.map((row) => row.map((kind) => (kind === 'tcp' ? 'handoff' : kind))),
  };
  const text = formatPathTable(handoff);
  assert.match(text, /^freeflow-path-table 2$/m);
  assert.match(text, /^paths\nsmhh\nmshh\nhhsm\nhhms\nend$/m);
  assert.equal(parsePathTable(text).paths, handoff.paths);
  assert.match(formatPathTable(plan), /^freeflow-path-table 1$/m);
  // A format 2 table without h is read too (a writer may always write 2).
  assert.equal(parsePathTable(DOCUMENTED.replace('path-table 1', 'path-table 2')).paths, plan.paths);
});

// The core's refusals of hostile tables are tested in native/tests/test_path_table.c; these are the
// format's version contract that formatPathTable relies on, and show that the core's message arrives.
const refused: Array<[string, string, RegExp, string]> = [
  ['h in a format 1 table (the writer must write format 2)', DOCUMENTED.replace('smtt', 'smth'), /line 13: unknown path `h`/, 'FF_ERR_PARSE'],
  ['a format newer than 2', DOCUMENTED.replace('path-table 1', 'path-table 3'), /line 1: format version 3/, 'FF_ERR_UNSUPPORTED_VERSION'],
  ['no end (truncated)', DOCUMENTED.replace('end\n', ''), /expected `end`/, 'FF_ERR_PARSE'],
];
for (const [what, text, mentions, status] of refused) {
  test(`the core refuses a table with ${what}, naming the problem`, () => {
    assert.throws(
      () => parsePathTable(text),
      (e: FfError) => e instanceof FfError && e.code === 'INTERNAL' && mentions.test(e.message) && e.notes.includes(status),
    );
  });
}

test.run();
