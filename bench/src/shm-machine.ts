import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { heading, paragraph, table, type Block, type Table } from './blocks';
import { formatNumber } from './format';
import { spreadOf, type Spread } from './statistics';

/**
 * The shared-memory side of the machine (issue 10 item 3), from bench/ring/ffbench_ring: the CPU, its
 * features and caches and what the freeflow BTL chooses on it (fragment and ring size, copy routine:
 * native/src/tuning.c), and the core-to-core floor, a cache-line ping-pong between cores 0 and 1 measured
 * on the host before every run of the shm profile. The hypervisor places the two vCPUs of this project's
 * VMs on SMT siblings, one core complex or two at different times (25, 58 or 250 ns half round trip), and
 * every figure moves with it: the floor tells which placement each run had.
 */
export const FFBENCH_RING = path.join(REPO_ROOT, 'build', 'bin', 'ffbench_ring');

export const shmMachineSchema = z.object({
  cpu: z.object({
    model: z.string(),
    vendor: z.string(),
    family: z.number().int().nonnegative(),
    modelNumber: z.number().int().nonnegative(),
    flags: z.string(),
    l1dBytes: z.number().int().nonnegative(),
    l2Bytes: z.number().int().nonnegative(),
    l3Bytes: z.number().int().nonnegative(),
    cacheSource: z.string(),
  }),
  chosen: z.object({ fragmentSize: z.number().int().positive(), ringSize: z.number().int().positive(), copy: z.string(), why: z.string() }),
});
export type ShmMachine = z.output<typeof shmMachineSchema>;

/** ffbench_ring --describe --json, as it prints it: shmMachineSchema's fields in C's snake case. */
const describeOutputSchema = z.object({
  benchmark: z.literal('ffbench_ring'),
  version: z.literal(1),
  cpu: z.record(z.string(), z.unknown()),
  chosen: z.record(z.string(), z.unknown()),
});

/** `l1d_bytes` -> `l1dBytes`: one field list (shmMachineSchema) serves the C output and the raw record. */
function camelCaseKeys(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key.replace(/_([a-z0-9])/g, (_, next: string) => next.toUpperCase()), value]));
}

const floorOutputSchema = z.object({ benchmark: z.literal('ffbench_ring'), version: z.literal(1), floor_ns: z.number().positive() });

/** Parses `ffbench_ring --describe --json`; null for anything else. */
export function parseShmMachine(text: string): ShmMachine | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const described = describeOutputSchema.safeParse(json);
  if (!described.success) return null;
  const machine = shmMachineSchema.safeParse({ cpu: camelCaseKeys(described.data.cpu), chosen: camelCaseKeys(described.data.chosen) });
  return machine.success ? machine.data : null;
}

/** Parses `ffbench_ring --floor --json`: the half round trip in ns, or null. */
export function parseFloor(text: string): number | null {
  try {
    const parsed = floorOutputSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.floor_ns : null;
  } catch {
    return null;
  }
}

async function ffbenchRing(args: readonly string[]): Promise<string | null> {
  try {
    const { stdout } = await promisify(execFile)(FFBENCH_RING, [...args], { timeout: 30_000, maxBuffer: 1 << 20 });
    return stdout;
  } catch {
    return null;
  }
}

/** The CPU and the BTL's choices on it; null when ffbench_ring is not built or fails (the report says so). */
export async function describeShmMachine(): Promise<ShmMachine | null> {
  const out = await ffbenchRing(['--describe', '--json']);
  return out === null ? null : parseShmMachine(out);
}

/** The core-to-core floor now, cores 0 and 1 (where the shm modes pin their ranks); null when it fails. */
export async function measureFloor(): Promise<number | null> {
  const out = await ffbenchRing(['--floor', '--cpus', '0,1', '--json']);
  return out === null ? null : parseFloor(out);
}

/** What a floor says about where the hypervisor put the two vCPUs (the 25, 58, 250 ns). */
export function placementOf(floorNs: number): string {
  if (floorNs < 40) return 'SMT siblings';
  if (floorNs < 150) return 'one core complex';
  return 'two core complexes';
}

/** A run's floors: before it, and after it (absent in reports older than the after-floor). */
export interface RunFloors {
  readonly floorNs?: number | null | undefined;
  readonly floorAfterNs?: number | null | undefined;
}

/**
 * The placement a run was measured under: the one both its floors say; `changed` when they disagree (the
 * hypervisor moved the vCPUs during the run); null when no floor was measured. A run with only the floor
 * before (older reports) has that floor's placement.
 */
export function runPlacement(run: RunFloors): string | null {
  const before = placementOfFloor(run.floorNs);
  const after = placementOfFloor(run.floorAfterNs);
  if (before === null) return after;
  if (after === null || after === before) return before;
  return PLACEMENT_CHANGED;
}

export const PLACEMENT_CHANGED = 'changed during the run';

/**
 * Above this a floor says nothing about the placement: the ping-pong itself was preempted (under load the
 * median batch took 20 us once), far beyond the slowest placement's 360 ns.
 */
export const PREEMPTED_FLOOR_NS = 1000;

/** The placement a measured floor says; null when there is none or the measurement was preempted. */
function placementOfFloor(floorNs: number | null | undefined): string | null {
  return typeof floorNs === 'number' && floorNs < PREEMPTED_FLOOR_NS ? placementOf(floorNs) : null;
}

/** Re-runs of one run whose placement moved while it ran; the last attempt is kept whatever its placement. */
export const MAX_PLACEMENT_RERUNS = 2;

/**
 * Runs `run` between two floor measurements and, while the placement moved during it, again (at most
 * MAX_PLACEMENT_RERUNS times): a ratio between two modes means something only if each mode ran under one
 * placement. The discarded attempts' floors are kept in the record.
 */
export async function runUnderOnePlacement<
  R extends {
    floorNs?: number | null | undefined;
    floorAfterNs?: number | null | undefined;
    placementReruns?: { floorNs: number | null; floorAfterNs: number | null }[] | undefined;
  },
>(run: () => Promise<R>, floor: () => Promise<number | null>, keepRunning: () => boolean = () => true): Promise<R> {
  const discarded: { floorNs: number | null; floorAfterNs: number | null }[] = [];
  for (;;) {
    const floorNs = await floor();
    const record = await run();
    const floorAfterNs = await floor();
    record.floorNs = floorNs;
    record.floorAfterNs = floorAfterNs;
    if (runPlacement(record) !== PLACEMENT_CHANGED || discarded.length === MAX_PLACEMENT_RERUNS || !keepRunning()) {
      if (discarded.length > 0) record.placementReruns = discarded;
      return record;
    }
    discarded.push({ floorNs, floorAfterNs });
  }
}

/** Per repetition: the floors of its runs and the placement their median says. */
export function floorRows(runs: readonly ({ repetition: number } & RunFloors)[]): { repetition: number; floor: Spread | null; placement: string }[] {
  const repetitions = [...new Set(runs.map((run) => run.repetition))].sort((a, b) => a - b);
  return repetitions.map((repetition) => {
    const floors = runs
      .filter((run) => run.repetition === repetition)
      .flatMap((run) => [run.floorNs, run.floorAfterNs])
      .filter((floor): floor is number => typeof floor === 'number');
    const floor = floors.length === 0 ? null : spreadOf(floors);
    return { repetition, floor, placement: floor === null ? 'not measured' : placementOf(floor.median) };
  });
}

function reruns(runs: readonly { placementReruns?: readonly unknown[] | undefined }[]): string {
  const moved = runs.filter((run) => (run.placementReruns?.length ?? 0) > 0);
  return moved.length === 0
    ? 'none'
    : `${moved.length} of ${runs.length} (${moved.reduce((sum, run) => sum + run.placementReruns!.length, 0)} discarded attempts)`;
}

export function floorTable(runs: readonly ({ repetition: number } & RunFloors)[]): Table {
  const rows = floorRows(runs).map((row) => [
    String(row.repetition),
    row.floor === null ? '-' : `${formatNumber(row.floor.median)} ns [${formatNumber(row.floor.min)}-${formatNumber(row.floor.max)}]`,
    row.placement,
  ]);
  return { headers: ['repetition', 'core-to-core floor (half round trip)', 'placement'], rows, leftColumns: [0, 2] };
}

function kib(bytes: number): string {
  return bytes >= 1 << 20 && bytes % (1 << 20) === 0 ? `${bytes >> 20} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/** The report's section: the CPU, the choices, the floor per repetition. Empty when nothing was recorded. */
export function shmMachineSection(
  shm: ShmMachine | null | undefined,
  runs: readonly ({ repetition: number; placementReruns?: readonly unknown[] | undefined } & RunFloors)[],
): Block[] {
  const measured = runs.some((run) => typeof run.floorNs === 'number');
  if ((shm === null || shm === undefined) && !measured) return [];
  const blocks: Block[] = [heading(3, 'The CPU, the choices made on it, and the core-to-core floor')];
  if (shm !== null && shm !== undefined) {
    const { cpu, chosen } = shm;
    blocks.push(
      paragraph(
        `CPU ${cpu.model} (${cpu.vendor}, family ${cpu.family} model ${cpu.modelNumber}; ${cpu.flags}); caches from ${cpu.cacheSource}: L1d ${kib(cpu.l1dBytes)}, L2 ${kib(cpu.l2Bytes)}, L3 ${cpu.l3Bytes === 0 ? 'unknown' : kib(cpu.l3Bytes)}. ` +
          `freeflow chose fragments of ${kib(chosen.fragmentSize)}, rings of ${kib(chosen.ringSize)} and the ${chosen.copy} copy (${chosen.why}); btl_freeflow_max_send_size, _ring_size and _copy override them.`,
      ),
    );
  }
  if (measured) {
    blocks.push(
      paragraph(
        'The floor is a cache-line ping-pong between cores 0 and 1 (bench/ring/ffbench_ring --floor, median of 15 batches of 2,000 round trips), measured on the host before and after every run; a floor above 1 us means the ping-pong itself was preempted and names no placement. ' +
          `Runs re-run because the placement moved while they ran: ${reruns(runs)}. Per repetition, the floors of all its runs:`,
      ),
      table(floorTable(runs)),
    );
  }
  return blocks;
}
