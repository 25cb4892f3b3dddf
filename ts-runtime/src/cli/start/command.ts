import * as path from 'node:path';
import { parseBenchArgs } from '#bench/args';
import { loadJobSpecFile } from '../../spec/load';
import { parseOptions } from '../../util/parse-options';
import { REPO_ROOT } from '../../util/repo-root';
import { benchDocument, printBenchSummary, runBenchmark } from '#bench/benchmark';
import type { CommandContext } from '../context';
import { runSpec } from '../run/command';

export const DEMO_SPEC = path.join(REPO_ROOT, 'jobs', 'demo.yaml');

/**
 * `ffrun start` (what `npm start` runs): the demo job (4 ranks in 2 x 2 containers, with placement and
 * paths), then the quick benchmark with its headline (freeflow's gain over TCP between containers on one
 * host and across hosts over `h`, with the CPU named), its table and the report's path. A failing demo stops
 * there: its exit code is start's. With --json, stdout holds one document: `{demo, benchmark}`.
 */
export async function startCommand(args: readonly string[], context: CommandContext): Promise<number> {
  const { json = false } = parseOptions('ffrun start', args, { json: { type: 'boolean' } }, 'ffrun start [--json]');
  const demo = await runSpec(loadJobSpecFile(DEMO_SPEC), json, context);
  if (demo.exitCode !== 0) {
    if (json) process.stdout.write(`${JSON.stringify({ demo: demo.document, benchmark: null }, null, 2)}\n`);
    return demo.exitCode;
  }
  const options = parseBenchArgs(['--quick']);
  const benchmark = await runBenchmark(options, context);
  if (json) process.stdout.write(`${JSON.stringify({ demo: demo.document, benchmark: benchDocument(benchmark) }, null, 1)}\n`);
  else printBenchSummary(benchmark, options);
  return benchmark.exitCode;
}
