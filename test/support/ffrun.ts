import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '#runtime/util/repo-root';

export const FFRUN_MAIN = path.join(REPO_ROOT, 'dist', 'ts-runtime', 'src', 'cli', 'main.js');

export interface FfrunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running ffrun whose output is collected and can be waited on. */
export class FfrunProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly done: Promise<FfrunResult>;

  /** `cwd` (default: the repository) becomes a read-write volume of the job, as with any ffrun. */
  constructor(args: readonly string[], options: { cwd?: string } = {}) {
    this.child = spawn(process.execPath, [FFRUN_MAIN, ...args], { cwd: options.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.done = new Promise((resolve) => {
      this.child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  /** The job id, once ffrun announced its cluster. */
  get jobId(): string | undefined {
    return announcedJobId(this.stderr);
  }

  /** For a test that failed half-way: stops a still running ffrun the way a user would (SIGINT). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGINT');
    await this.finished(60_000);
  }

  finished(timeoutMs = 120_000): Promise<FfrunResult> {
    return Promise.race([
      this.done,
      new Promise<never>((_, reject) =>
        setTimeout(() => {
          this.child.kill('SIGKILL');
          reject(new Error(`ffrun did not finish within ${timeoutMs} ms:\n${this.stderr}`));
        }, timeoutMs).unref(),
      ),
    ]);
  }
}

export function runFfrun(args: readonly string[], timeoutMs?: number, options: { cwd?: string } = {}): Promise<FfrunResult> {
  return new FfrunProcess(args, options).finished(timeoutMs);
}

/** Polls until `condition` holds; throws with `what` after the timeout. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function announcedJobId(stderr: string): string | undefined {
  return /setting up cluster ([a-z0-9]{6})/.exec(stderr)?.[1];
}

/** The job id ffrun announced on stderr; throws (with that stderr) when it announced none. */
export function jobIdOf(stderr: string): string {
  const id = announcedJobId(stderr);
  if (id === undefined) throw new Error(`no job id in ffrun's output:\n${stderr}`);
  return id;
}
