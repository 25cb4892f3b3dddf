import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';
import type { JobSpec } from './schema';
import { validateJobSpec } from './validate';

/**
 * Reads and validates a YAML job spec. A relative `program.command` with a `/` resolves against the
 * repository root, so `build/bin/x` means the same thing from any working directory.
 */
export function loadJobSpecFile(specPath: string): JobSpec {
  let text: string;
  try {
    text = readFileSync(specPath, 'utf8');
  } catch (error) {
    throw new FfError('SPEC_NOT_FOUND', `cannot read job spec ${specPath}: ${(error as Error).message}`, {
      hint: `check the path; the shipped specs are in ${path.join(REPO_ROOT, 'jobs')}/`,
      cause: error,
    });
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const problems = document.errors.map((e) => e.message.split('\n')[0] ?? e.message);
    throw new FfError('SPEC_INVALID', `job spec ${specPath} is not valid YAML:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'fix the YAML syntax at the line and column given (jobs/demo.yaml is a complete example)',
      notes: problems,
    });
  }
  const spec = validateJobSpec(document.toJS(), { kind: 'file', path: specPath });
  return withResolvedCommand(spec, REPO_ROOT);
}

/**
 * Makes a relative program path absolute against `baseDir` (the repository root for specs, the working
 * directory for the command line). A bare name (no `/`) stays as it is: it is looked up on PATH inside
 * the containers, as mpirun does.
 */
export function withResolvedCommand(spec: JobSpec, baseDir: string): JobSpec {
  const command = spec.program.command;
  if (!command.includes('/') || path.isAbsolute(command)) return spec;
  return { ...spec, program: { ...spec.program, command: path.resolve(baseDir, command) } };
}
