import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PairOutcome } from '#runtime/orchestrator/actual-paths';
import { loadVerdict, parseLinkMtus } from './machine';
import { modeById } from './modes';
import { parseMpiResult, ranksOnDistinctCores } from './mpi-result';
import { netpipeArgs, parseNetpipeOutput } from './netpipe';
import { mpiArgs, pathProblem } from './run-one';
import { ffErrorOf } from '#test/support/ff-error';

/** ffbench_mpi's document for `latency --sizes 8 --json FILE` (bench/mpi/README.md). */
const LATENCY_JSON = JSON.stringify({
  schema: 'freeflow-bench-mpi',
  schema_version: 1,
  benchmark: 'latency',
  metric: 'latency',
  complete: true,
  timing_meaningful: true,
  argv: ['ffbench_mpi', 'latency'],
  parameters: { sizes: [8], iterations: 20, warmup: null, window: null, validate: false, inject_fault: false },
  job: {
    ranks: 2,
    hostnames: ['ff-abc123-h0c0', 'ff-abc123-h0c1'],
    cpus: ['0', '1'],
    mpi_library_version: 'Open MPI v4.1.4',
    mpi_version: '3.1',
    wtick_s: 1e-9,
    started_at: '2026-11-26T03:33:08Z',
  },
  results: [
    {
      size: 8,
      iterations: 20,
      warmup: 100,
      elapsed_s: 1.4e-5,
      bytes_moved: 320,
      latency_us: 0.36,
      cpu_user_s: 2.3e-5,
      cpu_sys_s: 8e-6,
      cpu_ns_per_byte: 96.9,
      checked_bytes: 0,
      bad_bytes: 0,
      a_field_added_later: 1,
    },
  ],
  validation: { enabled: false, checked_bytes: 0, bad_bytes: 0, passed: null },
});

test("ffbench_mpi's JSON: validated, later fields kept; anything else is BENCH_RESULT_INVALID with the reason", () => {
  const result = parseMpiResult(LATENCY_JSON, 'ffbench_mpi (vader)');
  assert.is(result.results[0]!.latency_us, 0.36);
  assert.is((result.results[0] as Record<string, unknown>).a_field_added_later, 1);
  assert.ok(ranksOnDistinctCores(result));
  assert.not.ok(ranksOnDistinctCores({ ...result, job: { ...result.job, cpus: ['0', '0'] } }));
  assert.not.ok(ranksOnDistinctCores({ ...result, job: { ...result.job, cpus: ['0-1', '0-1'] } }));

  const notJson = ffErrorOf(() => parseMpiResult('ffbench_mpi: error: bad size', 'ffbench_mpi (vader)'));
  assert.is(notJson.code, 'BENCH_RESULT_INVALID');
  assert.match(notJson.message, /^ffbench_mpi \(vader\) wrote no valid JSON: .*output starts "ffbench_mpi: error: bad size"/);
  const otherVersion = ffErrorOf(() => parseMpiResult(LATENCY_JSON.replace('"schema_version":1', '"schema_version":2'), 'x'));
  assert.match(otherVersion.message, /wrote JSON that is not freeflow-bench-mpi version 1:[\s\S]*schema_version/);
});

test("ffbench_mpi arguments: sizes, counts only when set, validation, JSON into host 0's shared directory", () => {
  assert.equal(mpiArgs({ benchmark: 'bw', sizes: [8, 4096], iterations: 4, warmup: 1 }, false), [
    'bw',
    '--sizes',
    '8,4096',
    '--iterations',
    '4',
    '--warmup',
    '1',
    '--json',
    '/run/freeflow/ffbench.json',
  ]);
  assert.equal(mpiArgs({ benchmark: 'latency', sizes: [1], iterations: null, warmup: null }, true), [
    'latency',
    '--sizes',
    '1',
    '--validate',
    '--json',
    '/run/freeflow/ffbench.json',
  ]);
});

test("NetPIPE: its output file's three columns; half round trip in us; a bad line is refused", () => {
  const points = parseNetpipeOutput('       1 31.659586   0.00000024\n 4194304 90383.038785   0.00035405\n', 'NetPIPE output');
  assert.is(points.length, 2);
  assert.is(points[0]!.size, 1);
  assert.ok(Math.abs(points[0]!.latencyUs - 0.24) < 1e-9);
  assert.ok(Math.abs(points[1]!.bandwidthMBs - 4194304 / 0.00035405 / 1e6) < 1e-6);
  assert.match(ffErrorOf(() => parseNetpipeOutput('8 254.5\n', 'NetPIPE output')).message, /a line is not `bytes Mbps seconds`: "8 254\.5"/);
  assert.match(ffErrorOf(() => parseNetpipeOutput('\n', 'NetPIPE output')).message, /holds no measurement/);
  assert.equal(netpipeArgs({ upperBytes: 4096, repeats: 50 }), ['-l', '1', '-u', '4096', '-p', '0', '-n', '50', '-o', '/run/freeflow/netpipe.out']);
});

test('link MTUs from `ip -o link show`, veth names without their peer suffix', () => {
  const text = [
    '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
    '2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 3e:2b',
  ].join('\n');
  assert.equal(parseLinkMtus(text), { lo: 65536, eth0: 1450 });
});

test('load: high when other work ran before, or more than our own two ranks after', () => {
  assert.is(loadVerdict([0.2, 0, 0], [2.1, 0, 0], 2).high, false);
  assert.is(loadVerdict([1.5, 0, 0], [2.1, 0, 0], 2).high, true);
  assert.is(loadVerdict([0.2, 0, 0], [3.0, 0, 0], 2).high, true);
});

const outcome = (planned: PairOutcome['planned'], actual: PairOutcome['actual'], reason?: string): PairOutcome =>
  reason === undefined ? { planned, actual } : { planned, actual, reason };

test('paths: a freeflow mode is valid only when both directions used its path, as the BTL reported', () => {
  const freeflow = modeById('freeflow-same-host');
  const shm = [
    [outcome('self', 'self'), outcome('shm', 'shm')],
    [outcome('shm', 'shm'), outcome('self', 'self')],
  ];
  assert.is(pathProblem(freeflow, shm), null);
  const fellBack = [
    [outcome('self', 'self'), outcome('shm', 'tcp', 'segment-not-found')],
    [outcome('shm', 'shm'), outcome('self', 'self')],
  ];
  assert.is(pathProblem(freeflow, fellBack), 'the BTL reports: rank 0 -> rank 1 used tcp (segment-not-found), not shm');
  const unreported = [
    [outcome('self', 'self'), outcome('shm', 'unknown')],
    [outcome('shm', 'shm'), outcome('self', 'self')],
  ];
  assert.match(pathProblem(freeflow, unreported) ?? '', /rank 0 -> rank 1 used an unreported path, not shm/);
  const handoff = [
    [outcome('self', 'self'), outcome('handoff', 'handoff')],
    [outcome('handoff', 'handoff'), outcome('self', 'self')],
  ];
  assert.is(pathProblem(modeById('freeflow-handoff'), handoff), null);
  assert.is(pathProblem(modeById('freeflow-handoff-jumbo'), handoff), null);
  const agentGone = [
    [outcome('self', 'self'), outcome('handoff', 'tcp', 'agent-unreachable')],
    [outcome('handoff', 'tcp', 'peer-agent-unreachable'), outcome('self', 'self')],
  ];
  assert.is(
    pathProblem(modeById('freeflow-handoff'), agentGone),
    'the BTL reports: rank 0 -> rank 1 used tcp (agent-unreachable), not handoff; rank 1 -> rank 0 used tcp (peer-agent-unreachable), not handoff',
  );
  assert.match(pathProblem(modeById('freeflow-router'), handoff) ?? '', /used handoff, not router/);
  assert.is(pathProblem(modeById('bridge-tcp'), null), null, 'without the BTL the transport list fixes the path');
});

test.run();
