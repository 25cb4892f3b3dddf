import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import type { ExecResult } from '../util/exec';
import { REPO_ROOT } from '../util/repo-root';
import { findOnPath } from '../util/system';
import { BTL_FILE_NAME } from './mpirun-invocation';
import type { NetworkMode } from '../spec/schema';

/** Where the native build puts the BTL (CMake's FREEFLOW_BTL_DIR). */
export const BTL_DIR = path.join(REPO_ROOT, 'build', 'btl');

/** mpirun and ompi_info from Debian's openmpi-bin, found on PATH the way a shell would. */
export function assertOpenMpiInstalled(searchPath = process.env.PATH ?? ''): void {
  const missing = ['mpirun', 'ompi_info'].filter((tool) => findOnPath(tool, searchPath) === undefined);
  if (missing.length > 0) {
    throw new FfError('MISSING_DEPENDENCY', `Open MPI is not installed: ${missing.join(' and ')} not found on PATH`, {
      hint: '`npm run setup` installs it (Debian packages openmpi-bin and libopenmpi-dev)',
    });
  }
}

/** `--network freeflow` runs only with the built BTL: never silently over something else. */
export function assertNetworkAvailable(network: NetworkMode, btlDir = BTL_DIR): void {
  if (network !== 'freeflow') return;
  const file = path.join(btlDir, BTL_FILE_NAME);
  if (!existsSync(file)) {
    throw new FfError('NETWORK_UNAVAILABLE', `network freeflow needs the freeflow BTL, but ${file} does not exist`, {
      hint: 'build it with `npm run build`, or run with --network overlay (TCP over the overlay, the status quo)',
    });
  }
}

export interface ProgramProbeTarget {
  readonly name: string;
}

/**
 * Checks inside a container, as the job's user (the view the ranks get), that the program is an
 * executable file, or a command on PATH for a bare name.
 */
export async function assertProgramRunnable<C extends ProgramProbeTarget>(
  container: C,
  command: string,
  execInContainer: (container: C, argv: string[], options: { allowFailure: boolean }) => Promise<ExecResult>,
): Promise<void> {
  const check = command.includes('/') ? 'test -f "$1" && test -x "$1"' : 'command -v -- "$1" >/dev/null';
  const result = await execInContainer(container, ['sh', '-c', check, 'sh', command], { allowFailure: true });
  if (result.code === 0) return;
  const what = command.includes('/') ? `${command} is not an executable file` : `${command} is not a command on PATH`;
  throw new FfError('PROGRAM_NOT_FOUND', `${what} inside container ${container.name}`, {
    hint: command.includes('/')
      ? "check the path: relative paths in a job spec resolve against the repository root, on the command line against the working directory; containers see the machine's /usr, /etc and /opt, the repository, the working directory and the program's directory, nothing else (the MPI test programs are built by `npm run build` into build/bin/); with a spec `user`, that user must be able to run it"
      : 'give the program as a path, e.g. ./app or build/bin/<program>',
  });
}
