import * as assert from 'uvu/assert';
import { FfError } from '#runtime/errors';

/** The FfError that `work` throws; fails the test when it throws nothing or something else. */
export function ffErrorOf(work: () => unknown): FfError {
  try {
    work();
  } catch (error) {
    assert.instance(error, FfError, `expected an FfError, got ${String(error)}`);
    return error as FfError;
  }
  throw new assert.Assertion({
    message: 'expected an FfError, nothing was thrown',
    generated: false,
    operator: 'throws',
    expects: 'FfError',
    actual: 'nothing',
  });
}
