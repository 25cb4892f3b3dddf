import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { FfError } from '#runtime/errors';
import { heading, paragraph, table, type Block, type Table } from './blocks';
import { formatNumber, formatRatio } from './format';
import { spreadOf, type Spread } from './statistics';
import { barChart } from './svg-chart';

/**
 * Idle peers (issue 10 item 2): 8 B latency while 0, 7, 31, 63 other producers are attached to each
 * receiver's segment but silent, from the core benchmark bench/poll/ffbench_poll (no MPI: 2 vCPUs cannot
 * host 65 busy ranks). It runs on the host, outside the cluster, and interleaves its own rounds; the
 * profile gives it as many rounds as repetitions. `scan` is the BTL's former poll (every ring every
 * pass), `schedule` the poll schedule it uses now (docs/btl.md).
 */
export const FFBENCH_POLL = path.join(REPO_ROOT, 'build', 'bin', 'ffbench_poll');
export const IDLE_PEER_COUNTS = [0, 7, 31, 63] as const;
/** The target: latency with 63 idle peers at most this many times the latency with none. */
export const IDLE_PEERS_BOUND = 1.2;

const ratios = z.array(z.number().positive());

export const idlePeersSchema = z.looseObject({
  benchmark: z.literal('ffbench_poll'),
  version: z.literal(1),
  cpu: z.string(),
  load_before: z.number(),
  load_after: z.number(),
  rounds: z.number().int().positive(),
  iterations: z.number().int().positive(),
  warmup: z.number().int().nonnegative(),
  idle_after: z.number().int().nonnegative(),
  idle_per_pass: z.number().int().nonnegative(),
  gap_us: z.number().int().nonnegative(),
  results: z.array(
    z.looseObject({
      poll: z.enum(['scan', 'schedule']),
      idle: z.number().int().nonnegative(),
      half_round_trip_us: ratios,
      vs_no_idle: ratios.optional(),
      vs_scan: ratios.optional(),
    }),
  ),
});
export type IdlePeersRecord = z.output<typeof idlePeersSchema>;

/** Parses ffbench_poll's --json output; throws BENCH_RESULT_INVALID naming what is wrong. */
export function parseIdlePeers(text: string): IdlePeersRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new FfError('BENCH_RESULT_INVALID', `ffbench_poll wrote no valid JSON: ${(error as Error).message}`, { hint: `run ${FFBENCH_POLL} --json by hand` });
  }
  const parsed = idlePeersSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FfError('BENCH_RESULT_INVALID', `ffbench_poll wrote JSON the harness does not know:\n${z.prettifyError(parsed.error)}`, {
      hint: 'ffbench_poll and the harness disagree: rebuild with npm run build',
    });
  }
  return parsed.data;
}

/** Runs the core benchmark (both polls, every idle count, `rounds` interleaved rounds). */
export async function runIdlePeers(rounds: number, signal: AbortSignal): Promise<IdlePeersRecord> {
  const args = ['--idle', IDLE_PEER_COUNTS.join(','), '--poll', 'scan,schedule', '--rounds', String(rounds), '--json'];
  try {
    const { stdout } = await promisify(execFile)(FFBENCH_POLL, args, { signal, timeout: 600_000, maxBuffer: 1 << 20 });
    return parseIdlePeers(stdout);
  } catch (error) {
    if (error instanceof FfError) throw error;
    if (signal.aborted) throw new FfError('INTERRUPTED', `interrupted by ${String(signal.reason)} during the idle-peers benchmark`);
    throw new FfError('BENCH_INCOMPLETE', `${FFBENCH_POLL} failed: ${(error as Error).message}`, { hint: `run it by hand: ${FFBENCH_POLL} ${args.join(' ')}` });
  }
}

export interface IdlePeersRow {
  readonly poll: 'scan' | 'schedule';
  readonly idle: number;
  readonly latencyUs: Spread | null;
  readonly vsNoIdle: Spread | null;
  readonly vsScan: Spread | null;
}

export function idlePeersRows(record: IdlePeersRecord): IdlePeersRow[] {
  return record.results.map((result) => ({
    poll: result.poll,
    idle: result.idle,
    latencyUs: spreadOf(result.half_round_trip_us),
    vsNoIdle: result.vs_no_idle === undefined ? null : spreadOf(result.vs_no_idle),
    vsScan: result.vs_scan === undefined ? null : spreadOf(result.vs_scan),
  }));
}

/** The target's verdict: schedule, 63 idle peers over none (paired rounds); null when not measured. */
export function idlePeersVerdict(record: IdlePeersRecord): { ratio: Spread | null; met: boolean | null } {
  const row = idlePeersRows(record).find((r) => r.poll === 'schedule' && r.idle === 63);
  const ratio = row?.vsNoIdle ?? null;
  return { ratio, met: ratio === null ? null : ratio.median <= IDLE_PEERS_BOUND };
}

export function idlePeersTable(record: IdlePeersRecord): Table {
  const us = (spread: Spread | null): string =>
    spread === null ? '-' : `${formatNumber(spread.median)} us [${formatNumber(spread.min)}-${formatNumber(spread.max)}]`;
  const rows = idlePeersRows(record).map((row) => [
    row.poll,
    String(row.idle),
    us(row.latencyUs),
    formatRatio(row.vsNoIdle),
    row.poll === 'schedule' ? formatRatio(row.vsScan) : '',
  ]);
  return { headers: ['poll', 'idle peers', '8 B half round trip', 'vs no idle peer', 'schedule / scan'], rows, leftColumns: [0] };
}

const POLL_COLOR = { scan: '#c44e52', schedule: '#2ca02c' } as const;

export function idlePeersChart(record: IdlePeersRecord): string {
  const rows = idlePeersRows(record);
  const idles = [...new Set(rows.map((row) => row.idle))].sort((a, b) => a - b);
  return barChart({
    title: 'Idle peers: 8 B half round trip with silent producers attached (us)',
    yLabel: 'us',
    groups: idles.map((idle) => ({
      label: `${idle} idle`,
      bars: (['scan', 'schedule'] as const).flatMap((poll) => {
        const spread = rows.find((row) => row.poll === poll && row.idle === idle)?.latencyUs ?? null;
        return [
          {
            name: poll === 'scan' ? 'scan every ring (before)' : 'poll schedule (now)',
            color: POLL_COLOR[poll],
            value: spread?.median ?? null,
            low: spread?.min ?? 0,
            high: spread?.max ?? 0,
          },
        ];
      }),
    })),
    formatY: formatNumber,
    scale: 'linear',
  });
}

/** The report's section: verdict, table, chart. */
export function idlePeersSection(record: IdlePeersRecord | null | undefined): Block[] {
  if (record === null || record === undefined) return [];
  const { ratio, met } = idlePeersVerdict(record);
  const verdict = met === null ? 'not measured' : met ? 'met' : 'NOT met';
  return [
    heading(3, 'Idle peers (core benchmark, no MPI)'),
    paragraph(
      `Latency with 63 idle attached peers / with none, poll schedule: ${formatRatio(ratio)}; required at most ${IDLE_PEERS_BOUND.toFixed(2)}x: ${verdict}. ` +
        `bench/poll/ffbench_poll: 8 B ping-pong between two processes pinned to cores 0 and 1 through the real segment and ring code, ${record.rounds} interleaved rounds of ` +
        `${record.iterations} round trips (median of 100-round-trip batches), on ${record.cpu}, load average ${record.load_before.toFixed(2)} before and ${record.load_after.toFixed(2)} after; ` +
        `idle rings counted idle after ${record.idle_after} empty passes, ${record.idle_per_pass} polled per pass.`,
    ),
    table(idlePeersTable(record)),
    { kind: 'chart', svg: idlePeersChart(record) },
  ];
}
