import { z } from 'zod';
import { FfError, isFfError, type FfErrorCode } from '../errors';
import type { ExecOptions, ExecResult } from '../util/exec';
import { probe } from './addon';
import { parseHostProbe, type HostProbe } from './host-probe-report';

/**
 * Probing a simulated host: this file is also the entry script that runs inside the host's network
 * namespace (`ip netns exec <ns> node probe-in-netns.js <sharedDir>`, which also gives it that namespace's
 * /sys, where UCX finds network devices). It prints the HostProbe as one JSON line on stdout; on failure,
 * one JSON line `{"error": {code, message, hint}}` on stderr and exit status 1.
 */

/** Runs argv in the host (for ffrun: `(argv, options) => cluster.execInHost(host, argv, options)`). */
export type HostExec = (argv: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

const PROBE_TIMEOUT_MS = 60_000;

/** Codes a failing probe process passes on as they are; anything else becomes PROBE_FAILED. */
const forwardedCodeSchema = z.enum(['ADDON_NOT_BUILT', 'ADDON_FAILED']);

const hostErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }),
});

export async function probeHost(execInHost: HostExec, sharedDir: string): Promise<HostProbe> {
  const result = await execInHost([process.execPath, __filename, sharedDir], {
    allowFailure: true,
    timeoutMs: PROBE_TIMEOUT_MS,
  });
  if (result.code !== 0) throw hostFailure(result);
  const line = lastLine(result.stdout);
  const raw = parseJson(line);
  if (raw === undefined) {
    throw new FfError('PROBE_FAILED', `the host probe printed no JSON: ${JSON.stringify(line.slice(0, 200))}`, {
      hint: 'run npm run build; the notes hold what the probe wrote to stderr',
      notes: [result.stderr.trim()],
    });
  }
  return parseHostProbe(raw, 'the host probe', 'PROBE_FAILED');
}

function hostFailure(result: ExecResult): FfError {
  const reported = hostErrorSchema.safeParse(parseJson(lastLine(result.stderr)));
  if (!reported.success) {
    return new FfError('PROBE_FAILED', `the host probe failed (exit ${result.code}): ${result.stderr.trim()}`, {
      hint: 'run npm run build, then run the probe by hand to see the problem',
    });
  }
  const { code, message, hint } = reported.data.error;
  const forwarded = forwardedCodeSchema.safeParse(code);
  const options = hint === undefined ? {} : { hint };
  if (forwarded.success) return new FfError(forwarded.data, message, options);
  return new FfError('PROBE_FAILED', `the host probe failed: ${code}: ${message}`, options);
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** undefined when text is not JSON (JSON itself has no undefined). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const argvSchema = z.tuple([z.string().startsWith('/', 'must be an absolute path')]);

function main(argv: readonly string[]): void {
  try {
    const parsed = argvSchema.safeParse(argv);
    if (!parsed.success) {
      throw new FfError('USAGE', `usage: probe-in-netns.js <sharedDir> (got ${JSON.stringify(argv)}): ${z.prettifyError(parsed.error)}`, {
        hint: "pass exactly one argument, the host's shared directory as an absolute path",
      });
    }
    process.stdout.write(`${JSON.stringify(probe(parsed.data[0]))}\n`);
  } catch (error) {
    const code: FfErrorCode = isFfError(error) ? error.code : 'INTERNAL';
    const message = error instanceof Error ? error.message : String(error);
    const hint = isFfError(error) ? error.hint : undefined;
    process.stderr.write(`${JSON.stringify({ error: { code, message, hint } })}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) main(process.argv.slice(2));
