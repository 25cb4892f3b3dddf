import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../util/repo-root';
import { OMPI_COMPONENT_DIR } from '../launcher/mpirun-invocation';

const MAIN = path.join(__dirname, 'main.js');

/** Runs the built CLI; these cases fail before any cluster exists. */
function ffrun(args: string[], options: { env?: NodeJS.ProcessEnv; asUser?: string } = {}) {
  const argv =
    options.asUser === undefined
      ? [process.execPath, MAIN, ...args]
      : ['setpriv', `--reuid=${options.asUser}`, '--regid=nogroup', '--clear-groups', process.execPath, MAIN, ...args];
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: options.env ?? process.env, timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('no arguments: usage on stdout, exit 2', () => {
  const result = ffrun([]);
  assert.is(result.code, 2);
  assert.match(result.stdout, /ffrun run <job\.yaml>/);
});

test("help: `ffrun help` and `ffrun <command> --help` print the usage and exit 0; a program's --help is its own", () => {
  for (const args of [['help'], ['--help'], ['run', '--help'], ['bench', '-h'], ['start', '--help'], ['clean', '--help']]) {
    const result = ffrun(args);
    assert.is(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stdout, /ffrun bench \[/, args.join(' '));
  }
  // after the run's options, --help belongs to the program: ffrun still checks its own options first
  const program = ffrun(['run', '-n', '0', '--', 'prog', '--help']);
  assert.is(program.code, 2);
  assert.not.match(program.stdout, /ffrun bench \[/);
});

test('an unknown command: USAGE, exit 2', () => {
  const result = ffrun(['launch']);
  assert.is(result.code, 2);
  assert.match(result.stderr, /^error\[USAGE\]: unknown command launch\nhint: /m);
});

test('every usage error exits 2: unknown flag, missing value, bad value, flag given twice, stray argument', () => {
  const cases: Array<[string[], RegExp]> = [
    [['-n', '1', '--bogus', '--', '/bin/true'], /error\[USAGE\]: unknown option --bogus/],
    [['-n'], /error\[USAGE\]: -n needs a value/],
    [['-n', 'abc', '--', '/bin/true'], /error\[USAGE\]: command line is invalid:\n {2}- -n \(ranks\): expected number, got "abc"/],
    [['-n', '2', '--network', 'ib', '--', '/bin/true'], /error\[USAGE\]: command line is invalid:\n {2}- --network \(network\)/],
    // --hosts 0 would be the error if the repeated -n were not caught first.
    [['-n', '2', '-n', '3', '--hosts', '0', '--', '/bin/true'], /error\[USAGE\]: -n\/--np is given twice \(2, then 3\)/],
    [['env', '--bogus'], /error\[USAGE\]: ffrun env: takes no arguments, got --bogus/],
    [['clean', 'now'], /error\[USAGE\]: ffrun clean: unexpected argument now/],
    [['start', '--jsn'], /error\[USAGE\]: ffrun start: unknown argument --jsn\nhint: usage:\nffrun start \[--json\]/],
  ];
  for (const [args, expected] of cases) {
    const result = ffrun(args);
    assert.is(result.code, 2, `ffrun ${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, expected);
  }
  const json = ffrun(['-n', 'abc', '--json', '--', '/bin/true']);
  assert.is(json.code, 2);
  assert.is(JSON.parse(json.stdout).error.code, 'USAGE');
  // After `--`, --json is the program's: the error stays text on stderr.
  const programs = ffrun(['-n', 'abc', '--', '/bin/echo', '--json']);
  assert.is(programs.code, 2);
  assert.is(programs.stdout, '');
});

test('a YAML alias bomb: SPEC_INVALID naming it, no stack trace, exit 1', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffcli-'));
  try {
    const spec = path.join(dir, 'bomb.yaml');
    const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (const [i, name] of [...'bcdefghi'].entries()) levels.push(`${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`);
    writeFileSync(spec, `${levels.join('\n')}\n`);
    const result = ffrun(['run', spec]);
    assert.is(result.code, 1);
    assert.match(result.stderr, /^error\[SPEC_INVALID\]: job spec .*bomb\.yaml uses too many YAML aliases/m);
    assert.not.match(result.stderr, /INTERNAL| {4}at /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('not root: NOT_ROOT with the fix', () => {
  const result = ffrun(['run', path.join(REPO_ROOT, 'jobs', 'demo.yaml')], { asUser: 'nobody' });
  assert.is(result.code, 1, result.stderr);
  assert.match(result.stderr, /error\[NOT_ROOT\]: ffrun must run as root.*\nhint: run it again with sudo/);
});

test('Open MPI missing: MISSING_DEPENDENCY pointing at npm run setup', () => {
  const result = ffrun(['-n', '1', '--', '/bin/true'], { env: { ...process.env, PATH: '/nonexistent' } });
  assert.is(result.code, 1);
  assert.match(result.stderr, /error\[MISSING_DEPENDENCY\]: Open MPI is not installed: mpirun and ompi_info not found on PATH\nhint: `npm run setup`/);
});

test('a bad spec: every problem listed, one error, exit 1', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffcli-'));
  try {
    const spec = path.join(dir, 'bad.yaml');
    writeFileSync(spec, 'name: bad\ncluster: {hosts: 0, containersPerHost: 2}\nranks: 2\nnetwork: infiniband\nprogram: {command: /bin/true}\n');
    const result = ffrun(['run', spec]);
    assert.is(result.code, 1);
    assert.is(result.stderr.match(/^error\[/gm)?.length, 1);
    assert.match(result.stderr, /error\[SPEC_INVALID\]: job spec .*bad\.yaml is invalid:\n {2}- cluster\.hosts: must be at least 1 \(got 0\)/);
    assert.match(result.stderr, / {2}- network: must be one of overlay, freeflow \(got "infiniband"\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing spec file: SPEC_NOT_FOUND', () => {
  const result = ffrun(['run', '/nonexistent/job.yaml']);
  assert.is(result.code, 1);
  assert.match(result.stderr, /error\[SPEC_NOT_FOUND\]: cannot read job spec \/nonexistent\/job\.yaml/);
});

test('more ranks than slots: TOO_MANY_RANKS before any cluster is built; --json gives the error as JSON', () => {
  const result = ffrun(['-n', '5', '--hosts', '2', '--containers-per-host', '2', '--json', '--', '/bin/true']);
  assert.is(result.code, 1);
  assert.match(result.stderr, /error\[TOO_MANY_RANKS\]: 5 ranks do not fit: 2 hosts x 2 containers x 1 slots = 4 slots/);
  assert.is(JSON.parse(result.stdout).error.code, 'TOO_MANY_RANKS');
  assert.not.match(result.stderr, /setting up cluster/);
});

test('network freeflow and ffrun env: refused while the BTL is not built, the setting once it is', () => {
  const btl = path.join(REPO_ROOT, 'build', 'btl', 'mca_btl_freeflow.so');
  const env = ffrun(['env']);
  if (existsSync(btl)) {
    assert.is(env.code, 0);
    assert.is(env.stdout, `export OMPI_MCA_mca_base_component_path=${path.dirname(btl)}:${OMPI_COMPONENT_DIR}\n`);
    return;
  }
  assert.is(env.code, 1);
  assert.match(env.stderr, /error\[NETWORK_UNAVAILABLE\]/);
  const run = ffrun(['-n', '2', '--network', 'freeflow', '--', '/bin/true']);
  assert.is(run.code, 1);
  assert.match(
    run.stderr,
    new RegExp(`error\\[NETWORK_UNAVAILABLE\\]: network freeflow needs the freeflow BTL, but ${btl} does not exist\nhint: build it with \`npm run build\``),
  );
  assert.not.match(run.stderr, /setting up cluster/);
});

test.run();
