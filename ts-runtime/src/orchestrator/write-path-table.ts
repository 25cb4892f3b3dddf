import { renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatPathTable } from './path-table';
import type { JobPlan } from './plan';

/** The table's name in a host's shared directory (`/run/freeflow/paths` inside a container). */
export const PATH_TABLE_FILE = 'paths';

/**
 * Writes the plan's path table into every host's shared directory, atomically (temporary name in the
 * same directory, then rename), so a reader sees either no table or a whole one.
 */
export function writePathTables(plan: JobPlan, sharedDirs: readonly string[]): void {
  const text = formatPathTable(plan);
  for (const dir of sharedDirs) {
    const target = path.join(dir, PATH_TABLE_FILE);
    const temporary = path.join(dir, `.${PATH_TABLE_FILE}.${process.pid}.tmp`);
    try {
      writeFileSync(temporary, text, { mode: 0o644 });
      renameSync(temporary, target);
    } finally {
      rmSync(temporary, { force: true });
    }
  }
}
