import * as path from 'node:path';
import { loadJobSpecFile } from '../../spec/load';
import { REPO_ROOT } from '../../util/repo-root';
import type { CommandContext } from '../context';
import { runSpec } from '../run/command';

export const DEMO_SPEC = path.join(REPO_ROOT, 'jobs', 'demo.yaml');

/** `ffrun start` (what `npm start` runs): the demo job, 4 ranks in 2 x 2 containers, with placement and paths. */
export async function startCommand(args: readonly string[], context: CommandContext): Promise<number> {
  return runSpec(loadJobSpecFile(DEMO_SPEC), args.includes('--json'), context);
}
