import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FfError } from '#runtime/errors';
import { REPO_ROOT } from '#runtime/util/repo-root';
import type { RawReport } from './raw';
import { reportBlocks, reportTitle } from './report-content';
import { renderHtml } from './render-html';
import { renderMarkdown } from './render-markdown';

export interface ReportFiles {
  readonly dir: string;
  readonly raw: string;
  readonly summary: string;
  readonly html: string;
}

/** reports/<start time>/ in the repository (gitignored). */
export function defaultReportDir(startedAt: Date): string {
  return path.join(
    REPO_ROOT,
    'reports',
    startedAt
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replace(/:/g, '-'),
  );
}

/** A report directory must be new or empty: an earlier run's files are never overwritten. */
export function assertUsableReportDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new FfError('USAGE', `the report directory ${dir} is not empty`, { hint: 'give --out a new or empty directory (the default is reports/<time>/)' });
  }
}

/** Writes raw.json, summary.md and report.html (each atomically: a temporary name, then rename). */
export function writeReports(raw: RawReport, dir: string): ReportFiles {
  assertUsableReportDir(dir);
  const files: ReportFiles = { dir, raw: path.join(dir, 'raw.json'), summary: path.join(dir, 'summary.md'), html: path.join(dir, 'report.html') };
  const blocks = reportBlocks(raw);
  try {
    mkdirSync(dir, { recursive: true });
    for (const [file, text] of [
      [files.raw, `${JSON.stringify(raw, null, 1)}\n`],
      [files.summary, renderMarkdown(blocks)],
      [files.html, renderHtml(reportTitle(raw), blocks)],
    ] as const) {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    }
  } catch (error) {
    throw new FfError('REPORT_WRITE_FAILED', `cannot write the reports into ${dir}: ${(error as Error).message}`, {
      hint: 'check that the directory is writable and the disk has room, or give another one with --out',
      cause: error,
    });
  }
  return files;
}
