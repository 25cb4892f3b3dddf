import { closeSync, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';
import type { JobSpec } from './schema';
import { validateJobSpec } from './validate';

/** A job spec is a short YAML file (jobs/demo.yaml is about 300 bytes): anything this large is not one. */
export const MAX_SPEC_BYTES = 64 * 1024;
/**
 * How many alias expansions (`*name`) a spec may cause; the `yaml` package's own guard against alias
 * bombs (a few lines whose aliases expand to billions of nodes). A spec needs few aliases, if any.
 */
export const MAX_ALIAS_COUNT = 100;

/**
 * Reads and validates a YAML job spec. A relative `program.command` with a `/` resolves against the
 * repository root, so `build/bin/x` means the same thing from any working directory.
 */
export function loadJobSpecFile(specPath: string): JobSpec {
  const text = readSpecText(specPath);
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const problems = document.errors.map((e) => e.message.split('\n')[0] ?? e.message);
    throw new FfError('SPEC_INVALID', `job spec ${specPath} is not valid YAML:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'fix the YAML syntax at the line and column given (jobs/demo.yaml is a complete example)',
      notes: problems,
    });
  }
  const spec = validateJobSpec(toPlainValue(document, specPath), { kind: 'file', path: specPath, written: writtenNumbers(document) });
  return withResolvedCommand(spec, REPO_ROOT);
}

/** Reads at most MAX_SPEC_BYTES (and one more, to tell that there is more): /dev/zero is no job spec either. */
function readSpecText(specPath: string): string {
  const buffer = Buffer.alloc(MAX_SPEC_BYTES + 1);
  let length = 0;
  try {
    const fd = openSync(specPath, 'r');
    try {
      while (length < buffer.length) {
        const read = readSync(fd, buffer, length, buffer.length - length, null);
        if (read === 0) break;
        length += read;
      }
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw new FfError('SPEC_NOT_FOUND', `cannot read job spec ${specPath}: ${(error as Error).message}`, {
      hint: `check the path; the shipped specs are in ${path.join(REPO_ROOT, 'jobs')}/`,
      cause: error,
    });
  }
  if (length > MAX_SPEC_BYTES) {
    throw new FfError('SPEC_INVALID', `job spec ${specPath} is larger than ${MAX_SPEC_BYTES / 1024} KiB, too large for a job spec`, {
      hint: `check that ${specPath} is the job spec you meant: a job spec is a short YAML file (jobs/demo.yaml is a complete example)`,
    });
  }
  return buffer.toString('utf8', 0, length);
}

/**
 * The document as plain data. Aliases are resolved here, within the `yaml` package's own limit
 * (maxAliasCount), which it enforces by throwing a ReferenceError; so does an alias to no anchor.
 */
function toPlainValue(document: Document, specPath: string): unknown {
  try {
    return document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    if (/excessive alias count/i.test(error.message)) {
      throw new FfError('SPEC_INVALID', `job spec ${specPath} uses too many YAML aliases: they expand to more than ${MAX_ALIAS_COUNT} copies (an alias bomb)`, {
        hint: 'write the values out instead of repeating them through aliases (*name); a job spec needs few aliases, if any',
        cause: error,
      });
    }
    throw new FfError('SPEC_INVALID', `job spec ${specPath} is not valid YAML: ${error.message}`, {
      hint: 'define each anchor (&name) before the aliases (*name) that use it (jobs/demo.yaml is a complete example)',
      cause: error,
    });
  }
}

/**
 * Numbers as written, by dotted field path, where the value read is not what was written: infinities and
 * NaN (`.inf`, `1e400`, `.nan`) and integers too large to hold exactly. Validation names them as written.
 */
function writtenNumbers(document: Document): Map<string, string> {
  const written = new Map<string, string>();
  visit(document, {
    Scalar(key, node, ancestors) {
      const { value, source } = node;
      if (key === 'key' || typeof value !== 'number' || source === undefined) return;
      if (Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value))) return;
      const fields: string[] = [];
      ancestors.forEach((ancestor, i) => {
        if (isPair(ancestor)) fields.push(String(isScalar(ancestor.key) ? ancestor.key.value : ancestor.key));
        else if (isSeq(ancestor)) fields.push(String(ancestor.items.indexOf((ancestors[i + 1] ?? node) as never)));
      });
      written.set(fields.join('.'), source);
    },
  });
  return written;
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
