import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';

/** Shell programs of the runtime, in ts-runtime/bin of the checkout. */
export type RuntimeProgram = 'ffrun-rsh' | 'ffrun-container-init';

export function runtimeProgram(name: RuntimeProgram): string {
  const program = path.join(REPO_ROOT, 'ts-runtime', 'bin', name);
  if (!fs.existsSync(program)) {
    throw new FfError('MISSING_DEPENDENCY', `${program} is missing`, {
      hint: 'run freeflow from a complete checkout (compiled code in dist/ finds ts-runtime/bin through the repository root)',
    });
  }
  return program;
}
