import { reapStaleJobs } from '../../cluster';
import { parseOptions } from '../../util/parse-options';
import { assertRoot } from '../../util/system';
import type { CommandContext } from '../context';

/** `ffrun clean`: removes everything that runs killed with SIGKILL left behind (every run also does this first). */
export async function cleanCommand(args: readonly string[], context: CommandContext): Promise<number> {
  parseOptions('ffrun clean', args, {}, 'ffrun clean');
  assertRoot();
  const reaped = await context.progress.step('removing what killed runs left', () => reapStaleJobs((step) => context.progress.note(step)));
  process.stdout.write(reaped.jobs.length === 0 ? 'nothing to clean\n' : `removed stale jobs: ${reaped.jobs.join(', ')}\n`);
  return 0;
}
