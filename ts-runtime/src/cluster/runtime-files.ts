import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';

/** Programs of the runtime, built from ts-runtime/agent (and native/: ffagent, ffrun-fork-agent) into build/bin of the checkout. */
export type RuntimeProgram = 'ffrun-rsh' | 'ffrun-init' | 'ffagent' | 'ffrun-fork-agent';

export function runtimeProgram(name: RuntimeProgram): string {
  const program = path.join(REPO_ROOT, 'build', 'bin', name);
  if (!fs.existsSync(program)) {
    throw new FfError('MISSING_DEPENDENCY', `${program} is missing`, {
      hint: 'build the checkout first (scripts/setup.sh builds ts-runtime/agent into build/bin)',
    });
  }
  return program;
}
