import { parseBenchArgs } from '#bench/args';
import { benchDocument, printBenchSummary, runBenchmark } from '#bench/benchmark';
import type { CommandContext } from '../context';

/** `ffrun bench ...` (bench/README.md). */
export async function benchCommand(args: readonly string[], context: CommandContext): Promise<number> {
  const options = parseBenchArgs(args);
  const outcome = await runBenchmark(options, context);
  if (options.json) process.stdout.write(`${JSON.stringify(benchDocument(outcome), null, 1)}\n`);
  else printBenchSummary(outcome, options);
  return outcome.exitCode;
}
