import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { parseOptions } from './parse-options';
import { ffErrorOf } from '#test/support/ff-error';

const usageError = (work: () => unknown): FfError => {
  const error = ffErrorOf(work);
  assert.is(error.code, 'USAGE');
  return error;
};

test('known options parse; unknown ones, stray words and missing values are USAGE errors naming the argument', () => {
  const options = { json: { type: 'boolean' }, out: { type: 'string' } } as const;
  assert.equal({ ...parseOptions('ffrun x', ['--json', '--out', 'd'], options, 'ffrun x [--json]') }, { json: true, out: 'd' });
  const unknown = usageError(() => parseOptions('ffrun x', ['--jsn'], options, 'ffrun x [--json]'));
  assert.is(unknown.message, 'ffrun x: unknown argument --jsn');
  assert.is(unknown.hint, 'usage:\nffrun x [--json]');
  assert.is(usageError(() => parseOptions('ffrun x', ['extra'], options, '')).message, 'ffrun x: unexpected argument extra');
  assert.is(usageError(() => parseOptions('ffrun x', ['--out'], options, '')).message, 'ffrun x: --out needs a value');
  assert.is(usageError(() => parseOptions('ffrun env', ['--json'], {}, '')).message, 'ffrun env: takes no arguments, got --json');
});

test.run();
