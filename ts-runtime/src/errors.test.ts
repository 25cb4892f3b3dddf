import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FF_ERROR_CODES } from './errors';
import { REPO_ROOT } from './util/repo-root';

const documented = [...readFileSync(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8').matchAll(/^### ([A-Z_]+)$/gm)].map((match) => match[1]!);

/** The names of a C enum in freeflow.h, without its *_COUNT end marker. */
function enumNames(name: string): string[] {
  const header = readFileSync(path.join(REPO_ROOT, 'native', 'include', 'freeflow.h'), 'utf8');
  const body = new RegExp(`typedef enum ${name} \\{([^}]*)\\}`).exec(header)?.[1];
  assert.ok(body, `enum ${name} not found in freeflow.h`);
  return [...body!.matchAll(/^\s*([A-Z][A-Z0-9_]+)\s*(?:=[^,]*)?,/gm)].map((match) => match[1]!).filter((code) => !code.endsWith('_COUNT'));
}

const codes = [...FF_ERROR_CODES, ...enumNames('ff_status'), ...enumNames('ff_agent_refusal')];

test('docs/errors.md has an entry for every error code users can see (FfError, ff_status_t, ff_agent_refusal_t)', () => {
  assert.equal(
    codes.filter((code) => !documented.includes(code)),
    [],
    'codes without an entry in docs/errors.md: add "### CODE", what it means and the fix',
  );
});

test('docs/errors.md documents no code that does not exist, and each once', () => {
  assert.equal(
    documented.filter((code) => !codes.includes(code)),
    [],
    'entries in docs/errors.md for codes that no longer exist',
  );
  assert.equal(
    documented.filter((code, index) => documented.indexOf(code) !== index),
    [],
    'codes documented twice',
  );
});

test.run();
