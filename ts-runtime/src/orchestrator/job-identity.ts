import { randomBytes } from 'node:crypto';

/**
 * A job id names every resource of the job (namespaces, links, directories: `ff-<id>-...`), so it is
 * short (interface names have 15 characters) and matches `[a-z0-9]+` (docs/path-table.md).
 */
export function newJobId(): string {
  return randomBytes(3).toString('hex');
}

/** The job key: 128 random bits as 32 hex digits. Shared segments carry it; another job's key is refused. */
export function newJobKey(): string {
  return randomBytes(16).toString('hex');
}
