import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jobFailure } from './run-mpirun';

test('mpirun killed by a signal is reported as the launcher, not as a rank', () => {
  const error = jobFailure({ exitCode: 137, signal: 'SIGKILL' });
  assert.is(error.code, 'JOB_FAILED');
  assert.is(error.message, 'the job failed: mpirun (the launcher) was killed by SIGKILL, which ended the job (exit code 137 = 128 + 9)');
  assert.not.match(error.message, /a rank/);
  assert.match(error.hint ?? '', /killed from outside ffrun.*ffrun exits with 137/);
});

test("a rank killed by a signal: mpirun exits 128 + N itself, and that is the rank's death", () => {
  assert.is(jobFailure({ exitCode: 137, signal: null }).message, 'the job failed: mpirun exited with code 137 (128 + 9: a rank was killed by SIGKILL)');
  assert.is(
    jobFailure({ exitCode: 7, signal: null }).message,
    "the job failed: mpirun exited with code 7 (the first failing rank's exit code, or MPI_Abort's)",
  );
});

test.run();
