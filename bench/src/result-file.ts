import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { FfError } from '#runtime/errors';

/**
 * Benchmark programs write their results to a file, not to stdout: mpirun's --tag-output re-tags a long
 * line wherever orted's read of the rank's pipe ends (a 20000-character line arrives with four
 * `[1,0]<stdout>:` inside it), which would corrupt a JSON document. Rank 0 writes the file; every mode
 * places rank 0 in container h0c0, which sees host 0's shared directory at /run/freeflow.
 */
const CONTAINER_SHARED_DIR = '/run/freeflow';

export const RESULT_FILE = { mpi: 'ffbench.json', netpipe: 'netpipe.out' } as const;
export type ResultKind = keyof typeof RESULT_FILE;

/** The path rank 0 writes to, as the container sees it. */
export function resultPathInContainer(kind: ResultKind): string {
  return `${CONTAINER_SHARED_DIR}/${RESULT_FILE[kind]}`;
}

/** Removes a result file (before a run, so that a run that writes none cannot read an earlier one's). */
export function clearResultFile(hostSharedDir: string, kind: ResultKind): void {
  rmSync(path.join(hostSharedDir, RESULT_FILE[kind]), { force: true });
}

/** Reads and removes the result file rank 0 wrote; BENCH_RESULT_INVALID when there is none. */
export function takeResultFile(hostSharedDir: string, kind: ResultKind, program: string): string {
  const file = path.join(hostSharedDir, RESULT_FILE[kind]);
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new FfError('BENCH_RESULT_INVALID', `${program} wrote no result file: ${(error as Error).message}`, {
      hint: 'see its output: it stopped before writing its results',
    });
  } finally {
    rmSync(file, { force: true });
  }
}
