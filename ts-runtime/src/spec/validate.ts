import type { z } from 'zod';
import { FfError } from '../errors';
import { FIELD_FIXES, jobSpecSchema, type JobSpec } from './schema';

/**
 * Where the raw value came from: decides how fields are named in errors. `written` holds, by dotted
 * field path, numbers as the user wrote them (`1e400`, `.inf`, `99999999999999999999`), so that an error
 * names the value typed rather than what it became (infinity, a rounded integer).
 */
export type SpecSource =
  | { readonly kind: 'file'; readonly path: string; readonly written?: ReadonlyMap<string, string> }
  | { readonly kind: 'flags'; readonly flagOf: Readonly<Record<string, string>>; readonly written?: ReadonlyMap<string, string> };

/**
 * Validates a raw spec once, at the boundary; all problems are reported together in one error:
 * SPEC_INVALID for a spec file, USAGE for the command line (a bad flag value is a usage error, exit 2).
 */
export function validateJobSpec(raw: unknown, source: SpecSource): JobSpec {
  const result = jobSpecSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, source));
  const where = source.kind === 'file' ? `job spec ${source.path}` : 'command line';
  throw new FfError(source.kind === 'file' ? 'SPEC_INVALID' : 'USAGE', `${where} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
    hint:
      source.kind === 'file'
        ? `fix the fields listed above in ${source.path} (jobs/demo.yaml is a complete example)`
        : 'fix the flags listed above (see `ffrun --help`)',
    notes: problems,
  });
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue, source: SpecSource): string {
  if (issue.code === 'unrecognized_keys') {
    const parent = dottedPath(issue.path);
    return issue.keys
      .map((key) => {
        const field = parent === '' ? key : `${parent}.${key}`;
        const known = knownChildren(parent);
        const guess = closest(key, known);
        const suggestion = guess === undefined ? '' : ` (did you mean ${guess}?)`;
        return `${field}: unknown field${suggestion}; remove or rename it (known fields here: ${known.join(', ')})`;
      })
      .join('\n  - ');
  }
  const path = dottedPath(issue.path);
  const label = fieldLabel(path, source);
  return `${label}: ${whatWasWrong(issue, source.written?.get(path))}; ${fixFor(issue.path)}`;
}

/** `written`: the value as the user wrote it, when it was a number (see SpecSource). */
function whatWasWrong(issue: Issue, written: string | undefined): string {
  const input = (issue as { input?: unknown }).input;
  const show = (value: unknown): string => (typeof value === 'number' && written !== undefined ? showNumber(value, written) : showValue(value));
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'is required but missing';
      if (issue.expected === 'int') return `expected a whole number, got ${show(input)}`;
      // zod's number() refuses infinities and NaN as a wrong type: say what they are.
      if (typeof input === 'number' && issue.expected === 'number') return `expected a finite number, got ${show(input)}`;
      return `expected ${issue.expected}, got ${show(input)}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)} (got ${show(input)})`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)} (got ${show(input)})`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => String(v)).join(', ')} (got ${show(input)})`;
    case 'invalid_key':
      return `the name ${show(input)} ${issue.issues.map((i) => i.message).join(', ')}`;
    case 'invalid_format':
      return `${show(input)} ${issue.message}`;
    default:
      return `${issue.message} (got ${show(input)})`;
  }
}

function dottedPath(path: readonly PropertyKey[]): string {
  return path.map((part) => String(part)).join('.');
}

/** The fix text of the field itself, else of its `*` pattern (map keys, list items). */
function fixFor(path: readonly PropertyKey[]): string {
  const exact = FIELD_FIXES[dottedPath(path)];
  if (exact !== undefined) return exact;
  const pattern = FIELD_FIXES[dottedPath([...path.slice(0, -1), '*'])];
  return pattern ?? 'see jobs/demo.yaml for a complete example';
}

function fieldLabel(path: string, source: SpecSource): string {
  if (path === '') return source.kind === 'file' ? 'the document' : 'the command line';
  if (source.kind === 'flags') {
    const flag = source.flagOf[path] ?? source.flagOf[path.replace(/\.[^.]+$/, '.*')];
    if (flag !== undefined) return `${flag} (${path})`;
  }
  return path;
}

function knownChildren(parent: string): string[] {
  const prefix = parent === '' ? '' : `${parent}.`;
  return Object.keys(FIELD_FIXES)
    .filter((key) => key !== '' && key.startsWith(prefix))
    .map((key) => key.slice(prefix.length))
    .filter((rest) => rest !== '' && !rest.includes('.') && rest !== '*');
}

/** The known field within edit distance 3 (typos and case slips), if any. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(word.toLowerCase(), name.toLowerCase());
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON has no infinities or NaN (it would say null).
  if (typeof value === 'number' && !Number.isFinite(value)) return showNumber(value, undefined);
  return shorten(JSON.stringify(value));
}

/** A number as written, and what it became when that is not a usable number: `1e400 (infinity)`. */
function showNumber(value: number, written: string | undefined): string {
  const meaning = Number.isNaN(value) ? 'not a number' : value === Infinity ? 'infinity' : value === -Infinity ? '-infinity' : undefined;
  if (meaning === undefined) return shorten(written ?? JSON.stringify(value));
  if (written === undefined) return Number.isNaN(value) ? `NaN (${meaning})` : meaning;
  return `${shorten(written)} (${meaning})`;
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
