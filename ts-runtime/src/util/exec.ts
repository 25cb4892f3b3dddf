import { spawn, type SpawnOptions } from 'node:child_process';
import { FfError } from '../errors';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface ExecOptions {
  /** Text written to the child's stdin, then closed. */
  readonly input?: string;
  /** Resolve with a non-zero exit instead of throwing. */
  readonly allowFailure?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/** Runs a command without a shell and collects its output; throws EXEC_FAILED on a non-zero exit. */
export function exec(command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const stdin = options.input === undefined ? 'ignore' : 'pipe';
    const spawnOptions: SpawnOptions = { stdio: [stdin, 'pipe', 'pipe'], env: options.env ?? process.env };
    if (options.cwd !== undefined) spawnOptions.cwd = options.cwd;
    if (options.timeoutMs !== undefined) spawnOptions.timeout = options.timeoutMs;
    const child = spawn(command, args, spawnOptions);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => reject(new FfError('EXEC_FAILED', `could not start ${command}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      const exitCode = code ?? (signal ? 128 : 1);
      if (exitCode !== 0 && !options.allowFailure) {
        const line = [command, ...args].join(' ');
        reject(new FfError('EXEC_FAILED', `\`${line}\` failed (exit ${signal ?? exitCode}): ${stderr.trim() || stdout.trim()}`));
        return;
      }
      resolve({ stdout, stderr, code: exitCode });
    });
    // A child may exit without reading all its input; its exit status, not EPIPE, says whether it failed.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input);
  });
}
