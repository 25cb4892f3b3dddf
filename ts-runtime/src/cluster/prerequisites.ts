import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { runtimeProgram } from './runtime-files';

/** The system programs the local cluster runs, and the Debian packages that provide them. */
const REQUIRED_PROGRAMS: ReadonlyArray<readonly [program: string, debianPackage: string]> = [
  ['ip', 'iproute2'],
  ['bridge', 'iproute2'],
  ['runc', 'runc'],
  ['nsenter', 'util-linux'],
  ['mount', 'mount'],
  ['umount', 'mount'],
];

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Fails early, with the fix, when the local cluster cannot be built here (before anything is created). */
export function checkLocalClusterPrerequisites(): void {
  if (process.getuid?.() !== 0) {
    throw new FfError('NOT_ROOT', 'the local cluster needs root: it creates network namespaces and mounts', {
      hint: 'run ffrun as root (sudo)',
    });
  }
  runtimeProgram('ffrun-init');
  runtimeProgram('ffrun-rsh');
  runtimeProgram('ffrun-fork-agent');
  const missing = REQUIRED_PROGRAMS.filter(([program]) => !onPath(program));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, debianPackage]) => debianPackage))];
    throw new FfError('MISSING_DEPENDENCY', `programs not found on PATH: ${missing.map(([program]) => program).join(', ')}`, {
      hint: `apt-get install ${packages.join(' ')}`,
    });
  }
}
