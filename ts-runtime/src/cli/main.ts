#!/usr/bin/env node
import { constants } from 'node:os';
import { FfError, isFfError } from '../errors';
import { BENCH_USAGE } from '#bench/args';
import { benchCommand } from './bench/command';
import { cleanCommand } from './clean/command';
import type { CommandContext } from './context';
import { envCommand } from './env/command';
import { stderrProgress } from '../job/progress';
import { RENDER_USAGE } from '../render/args';
import { renderCommand } from '../render/command';
import { RUN_USAGE } from './run/args';
import { runCommand } from './run/command';
import { startCommand } from './start/command';

const USAGE = `ffrun: run MPI jobs in containers on an embedded local cluster

${RUN_USAGE}
ffrun start [--json]   the demo: the demo job (jobs/demo.yaml), then the quick benchmark
${BENCH_USAGE}
ffrun env              print the environment setting that loads the freeflow BTL into a plain mpirun
ffrun clean            remove what runs killed with SIGKILL left behind
${RENDER_USAGE}
ffrun help

Progress goes to stderr; rank output to stdout as "[rank N] ..." (to stderr with --json, whose document
is the only thing on stdout). The exit code is the job's (the first failing rank's; 128 + N when a rank
or mpirun itself was killed by signal N, the error says which), 124 on timeout, 130/143/129 after
SIGINT/SIGTERM/SIGHUP, 2 for a usage error (unknown, repeated or missing flag, bad flag value), 1 for
any other error.`;

/** Exit codes of ffrun's own failures; a job's exit code passes through unchanged. */
const EXIT_ERROR = 1;
const EXIT_USAGE = 2;
const EXIT_TIMEOUT = 124;

const COMMANDS = new Set(['run', 'start', 'bench', 'env', 'clean', 'render']);

async function dispatch(args: readonly string[], context: CommandContext): Promise<number> {
  const [command, ...rest] = args;
  // `ffrun <command> --help`: the usage, exit 0. Only right after the command word, so that a program's
  // own --help (after `--`, or after a run's options) is never taken for ffrun's.
  if (command !== undefined && COMMANDS.has(command) && (rest[0] === '--help' || rest[0] === '-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? EXIT_USAGE : 0;
    case 'run':
      return runCommand(rest, context);
    case 'start':
      return startCommand(rest, context);
    case 'bench':
      return benchCommand(rest, context);
    case 'env':
      return envCommand(rest);
    case 'clean':
      return cleanCommand(rest, context);
    case 'render':
      return renderCommand(rest);
    default:
      if (command.startsWith('-')) return runCommand(args, context);
      throw new FfError('USAGE', `unknown command ${command}`, { hint: 'run `ffrun help` for the commands' });
  }
}

function reportError(error: FfError, json: boolean): void {
  process.stderr.write(`error[${error.code}]: ${error.message}\n`);
  if (error.hint !== undefined) process.stderr.write(`hint: ${error.hint}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint ?? null } }, null, 2)}\n`);
}

function exitCodeOf(error: FfError, interrupt: AbortSignal): number {
  if (error.code === 'INTERRUPTED') return 128 + (constants.signals[interrupt.reason as NodeJS.Signals] ?? 0);
  if (error.code === 'JOB_TIMEOUT') return EXIT_TIMEOUT;
  if (error.code === 'USAGE') return EXIT_USAGE;
  return EXIT_ERROR;
}

async function main(): Promise<void> {
  // A reader that goes away (`ffrun ... | head`) must not crash ffrun before it has cleaned up: the rest
  // of the output is dropped and the job runs to its end.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  const args = process.argv.slice(2);
  // Only for the format of an error that escapes a command (each command parses its own options): ffrun's
  // options end at `--`, after which a --json is the program's.
  const separator = args.indexOf('--');
  const json = (separator === -1 ? args : args.slice(0, separator)).includes('--json');
  const controller = new AbortController();
  const progress = stderrProgress();
  // The first signal stops the job; ffrun then still tears everything down before it exits.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) progress.note(`${signal} again: still removing the job's resources, please wait`);
    else {
      progress.note(`${signal}: stopping the job and removing its resources`);
      controller.abort(signal);
    }
  };
  // SIGHUP too: a closed terminal must not leave the job's cluster behind.
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  // A command that reports an error itself has printed its own document: stderr only.
  const context: CommandContext = { progress, interrupt: controller.signal, reportError: (error) => reportError(error, false) };
  let code: number;
  try {
    code = await dispatch(args, context);
  } catch (error) {
    const ffError = isFfError(error)
      ? error
      : new FfError('INTERNAL', `unexpected failure: ${(error as Error).stack ?? String(error)}`, {
          hint: 'this is a bug in ffrun: please report it with the output above',
        });
    reportError(ffError, json);
    code = exitCodeOf(ffError, controller.signal);
  }
  for (const signal of signals) process.off(signal, onSignal);
  // Writes to a pipe are asynchronous: exiting at once would cut a large --json document short.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

void main();
