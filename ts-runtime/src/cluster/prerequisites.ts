import { FfError } from '../errors';
import { assertRoot, findOnPath } from '../util/system';
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

/** Fails early, with the fix, when the local cluster cannot be built here (before anything is created). */
export function checkLocalClusterPrerequisites(): void {
  assertRoot();
  runtimeProgram('ffrun-init');
  runtimeProgram('ffrun-rsh');
  runtimeProgram('ffrun-fork-agent');
  const missing = REQUIRED_PROGRAMS.filter(([program]) => findOnPath(program) === undefined);
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, debianPackage]) => debianPackage))];
    throw new FfError('MISSING_DEPENDENCY', `programs not found on PATH: ${missing.map(([program]) => program).join(', ')}`, {
      hint: `apt-get install ${packages.join(' ')}`,
    });
  }
}
