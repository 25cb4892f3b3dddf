import { closeSync, constants, fchownSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { formatPathTable } from './path-table';
import type { JobPlan } from './plan';

/** The table's name in a host's shared directory (`/run/freeflow/paths` inside a container). */
export const PATH_TABLE_FILE = 'paths';

/**
 * Writes the plan's path table into every host's shared directory, atomically (temporary name in the
 * same directory, then rename), so a reader sees either no table or a whole one. The table holds the job
 * key: it is mode 0600 and owned by the job's user (the ranks' euid), like the directory. The directory
 * belongs to that user, so the temporary file is created exclusively (a planted file or symlink of that
 * name makes this fail instead of being followed).
 */
export function writePathTables(plan: JobPlan, sharedDirs: readonly string[], owner: { uid: number; gid: number } = { uid: 0, gid: 0 }): void {
  const text = formatPathTable(plan);
  for (const dir of sharedDirs) {
    const target = path.join(dir, PATH_TABLE_FILE);
    const temporary = path.join(dir, `.${PATH_TABLE_FILE}.${process.pid}.tmp`);
    try {
      const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, text);
        fchownSync(fd, owner.uid, owner.gid);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, target);
    } finally {
      rmSync(temporary, { force: true });
    }
  }
}
