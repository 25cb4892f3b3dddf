import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FfError } from '#runtime/errors';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { parseBenchArgs } from './args';
import { PROFILES } from './profiles';
import { ffErrorOf } from '#test/support/ff-error';

const MAIN = path.join(REPO_ROOT, 'dist', 'ts-runtime', 'src', 'cli', 'main.js');

const errorOf = (args: string[]): FfError => ffErrorOf(() => parseBenchArgs(args));

test('defaults: the quick profile with its repetitions, reports under reports/<time>/', () => {
  const parsed = parseBenchArgs([]);
  assert.is(parsed.profile, PROFILES.quick);
  assert.is(parsed.repetitions, PROFILES.quick.repetitions);
  assert.is(parsed.out, null);
  assert.is(parsed.json, false);
});

test('--full, --profile shm, --repetitions, --out (relative to the working directory), --json', () => {
  assert.is(parseBenchArgs(['--full']).profile.name, 'full');
  assert.is(parseBenchArgs(['--profile', 'cross-host']).profile.name, 'cross-host');
  assert.is(parseBenchArgs(['--profile', 'rma']).profile.name, 'rma');
  const parsed = parseBenchArgs(['--profile', 'shm', '--repetitions', '9', '--out', 'here/x', '--json'], '/work');
  assert.equal(
    { name: parsed.profile.name, repetitions: parsed.repetitions, out: parsed.out, json: parsed.json },
    { name: 'shm', repetitions: 9, out: '/work/here/x', json: true },
  );
  assert.is(parseBenchArgs(['--quick', '--profile', 'quick']).profile.name, 'quick', 'the same profile twice is no conflict');
});

test('bad arguments: one USAGE error naming the flag and the fix', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--profile', 'fast'], /--profile must be one of quick, full, shm, cross-host, rma \(got "fast"\)/],
    [['--quick', '--full'], /quick and full conflict: give one profile/],
    [['--repetitions', '0'], /--repetitions must be at least 1/],
    [['--repetitions', '101'], /--repetitions must be at most 100/],
    [['--repetitions', 'three'], /--repetitions must be a whole number \(got "three"\)/],
    [['--repetitions'], /--repetitions needs a value/],
    [['--out', '--json'], /--out needs a value/],
    [['--iterations', '5'], /unknown argument --iterations/],
  ];
  for (const [args, message] of cases) {
    const error = errorOf(args);
    assert.is(error.code, 'USAGE', args.join(' '));
    assert.match(error.message, message);
    assert.match(error.hint ?? '', /^usage:\nffrun bench/);
  }
});

test('through the CLI: a usage error exits 2 before anything runs; not root exits 1 with NOT_ROOT', () => {
  const bad = spawnSync(process.execPath, [MAIN, 'bench', '--repetitions', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^error\[USAGE\]: --repetitions must be at least 1\nhint: usage:\nffrun bench /);
  assert.not.match(bad.stderr, /setting up cluster/);
  // Run as nobody: through setpriv when the tests run as root, as they are otherwise.
  const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : [];
  const argv = [...asNobody, process.execPath, MAIN, 'bench', '--out', '/nonexistent/x'];
  const user = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  assert.is(user.status, 1, user.stderr);
  assert.match(user.stderr, /error\[NOT_ROOT\]/);
});

test.run();
