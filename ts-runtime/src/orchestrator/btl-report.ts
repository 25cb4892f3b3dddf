import { closeSync, constants, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';

/** What the freeflow BTL of one rank did with one peer (docs/btl-report.md). */
export type PeerOutcome =
  { readonly kind: 'shm' | 'handoff' | 'router'; readonly messages: number; readonly bytes: number } | { readonly kind: 'declined'; readonly reason: string };

export interface BtlReport {
  readonly rank: number;
  readonly peers: ReadonlyMap<number, PeerOutcome>;
}

export const REPORT_VERSION = 1;

export function reportFileName(rank: number): string {
  return `report.${rank}`;
}

export function parseBtlReport(text: string, source: string): BtlReport {
  const lines = text.split('\n').filter((line) => line !== '');
  const bad = (problem: string): never => {
    throw new FfError('INTERNAL', `BTL report ${source} is malformed: ${problem}`, {
      hint: 'the BTL and docs/btl-report.md disagree: report a bug',
    });
  };
  if (lines[0] !== `freeflow-report ${REPORT_VERSION}`) bad(`first line must be \`freeflow-report ${REPORT_VERSION}\`, got \`${lines[0] ?? ''}\``);
  const rankMatch = /^rank (0|[1-9][0-9]*)$/.exec(lines[1] ?? '') ?? bad('second line must be `rank <r>`');
  if (lines[lines.length - 1] !== 'end') bad('last line must be `end` (file truncated?)');
  const peers = new Map<number, PeerOutcome>();
  for (const line of lines.slice(2, -1)) {
    const shm = /^peer (\d+) (shm|handoff|router) (\d+) (\d+)$/.exec(line);
    const declined = /^peer (\d+) declined ([a-z0-9-]+)$/.exec(line);
    if (shm) peers.set(Number(shm[1]), { kind: shm[2] as 'shm' | 'handoff' | 'router', messages: Number(shm[3]), bytes: Number(shm[4]) });
    else if (declined) peers.set(Number(declined[1]), { kind: 'declined', reason: declined[2]! });
    else bad(`unknown line \`${line}\``);
  }
  return { rank: Number(rankMatch[1]), peers };
}

/**
 * Reads the reports of `ranks` from their hosts' shared directories. A rank that died before
 * MPI_Finalize wrote none: it is absent from the result.
 */
export function readBtlReports(ranks: ReadonlyArray<{ rank: number; host: number }>, sharedDirs: readonly string[]): Map<number, BtlReport> {
  const reports = new Map<number, BtlReport>();
  for (const { rank, host } of ranks) {
    const file = path.join(sharedDirs[host]!, reportFileName(rank));
    const text = readReportFile(file);
    if (text !== undefined) reports.set(rank, parseBtlReport(text, file));
  }
  return reports;
}

/** A report is at most a line per peer: anything bigger is not one. */
const MAX_REPORT_BYTES = 1 << 20;

/**
 * The text of a report, or undefined when there is none. The shared directory belongs to the job's user,
 * so ffrun (root) follows no symlink there (O_NOFOLLOW), reads only a regular file (a FIFO would block
 * it) and no more than a report can hold; anything else counts as no report.
 */
export function readReportFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_REPORT_BYTES) return undefined;
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Removes the reports of `ranks` (those of an earlier job on the same cluster), so that none is taken for a new one. */
export function removeBtlReports(ranks: ReadonlyArray<{ rank: number; host: number }>, sharedDirs: readonly string[]): void {
  for (const { rank, host } of ranks) rmSync(path.join(sharedDirs[host]!, reportFileName(rank)), { force: true });
}
