import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FfError } from '../errors';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/**
 * A command's options, parsed once at its entry with node's util.parseArgs (strict, no positionals). What
 * parseArgs refuses (an unknown argument, a missing value) becomes a USAGE error naming the argument, with
 * the command's usage as the fix.
 */
export function parseOptions<const O extends OptionsConfig>(command: string, args: readonly string[], options: O, usage: string) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new FfError('USAGE', `${command}: ${problemOf(error, options)}`, { hint: `usage:\n${usage}` });
  }
}

/** parseArgs' messages name the argument in quotes but suggest things that do not fit ffrun; say it plainly. */
function problemOf(error: unknown, options: OptionsConfig): string {
  const { code, message } = error as { code?: string; message?: string };
  const named = /'([^' ]+)/.exec(message ?? '')?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return Object.keys(options).length === 0 ? `takes no arguments, got ${named}` : `unknown argument ${named}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${named}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `${named} needs a value`;
    default:
      return message ?? String(error);
  }
}
