import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';

/** ffrun, ffbench and the local cluster create namespaces, links and mounts: nothing works without root. */
export function assertRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new FfError('NOT_ROOT', 'ffrun must run as root: it creates network namespaces, links and mounts for the job', {
      hint: 'run it again with sudo (or as root)',
    });
  }
}

/** Where a program is found on PATH, the way a shell would find it; undefined when it is not. */
export function findOnPath(program: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(':').filter((entry) => entry !== '')) {
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
