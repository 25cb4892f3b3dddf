import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';
import { loadJobSpecFile } from './load';
import { validateJobSpec } from './validate';

const FILE = { kind: 'file', path: 'job.yaml' } as const;
const valid = {
  name: 'demo',
  cluster: { hosts: 2, containersPerHost: 2 },
  ranks: 4,
  program: { command: 'build/bin/x' },
};

function problemsOf(raw: unknown): string[] {
  try {
    validateJobSpec(raw, FILE);
  } catch (error) {
    assert.instance(error, FfError);
    assert.is((error as FfError).code, 'SPEC_INVALID');
    return [...(error as FfError).notes];
  }
  throw new Error('expected SPEC_INVALID');
}

function withField(field: string, value: unknown): unknown {
  const copy = structuredClone(valid) as Record<string, unknown>;
  const parts = field.split('.');
  let target = copy;
  for (const part of parts.slice(0, -1)) target = target[part] as Record<string, unknown>;
  target[parts[parts.length - 1]!] = value;
  return copy;
}

test('a minimal spec gets the documented defaults', () => {
  const spec = validateJobSpec(valid, FILE);
  assert.is(spec.cluster.slotsPerContainer, 1);
  assert.is(spec.placement, 'fill');
  assert.is(spec.network, 'freeflow');
  assert.is(spec.interHost, 'auto');
  assert.equal(spec.program.args, []);
  assert.equal(spec.env, {});
  assert.is(spec.timeoutSeconds, 300);
});

const badFields: Array<[string, unknown, RegExp]> = [
  ['name', 'Bad Name', /^name: "Bad Name" is not a valid job name; use 1-40 lower-case/],
  ['cluster.hosts', 0, /^cluster\.hosts: must be at least 1 \(got 0\); use a whole number of simulated hosts from 1 to 8/],
  ['cluster.hosts', 9, /^cluster\.hosts: must be at most 8 \(got 9\)/],
  ['cluster.containersPerHost', 1.5, /^cluster\.containersPerHost: expected a whole number, got 1\.5/],
  ['cluster.slotsPerContainer', 'two', /^cluster\.slotsPerContainer: expected number, got "two"/],
  ['ranks', undefined, /^ranks: is required but missing; use a whole number of MPI ranks/],
  ['network', 'rdma', /^network: must be one of overlay, freeflow \(got "rdma"\)/],
  ['placement', 'spread', /^placement: must be one of fill, round-robin/],
  ['interHost', 'rdma', /^interHost: must be one of auto, handoff, router, tcp \(got "rdma"\); use one of: auto, handoff, router, tcp/],
  ['program.command', '', /^program\.command: must be at least 1/],
  ['program.args', ['a', 3], /^program\.args\.1: expected string, got 3; quote the argument/],
  ['env', { '1X': 'a' }, /^env\.1X: the name "1X" is not a valid name.*; use a name of letters/],
  ['mca', { btl: 5 }, /^mca\.btl: expected string, got 5; use an MCA parameter name/],
  ['timeoutSeconds', 0, /^timeoutSeconds: must be at least 1 \(got 0\)/],
  // Out of range, unusable or huge numbers: one problem per field, its own limit once, the value readable.
  ['cluster.hosts', 1e20, /^cluster\.hosts: must be at most 8 \(got 100000000000000000000\); use a whole number of simulated hosts from 1 to 8$/],
  ['cluster.hosts', 12.5, /^cluster\.hosts: must be at most 8 \(got 12\.5\)/],
  ['ranks', 1e20, /^ranks: must be at most 8192 \(got 100000000000000000000\); use a whole number of MPI ranks from 1 to 8192/],
  ['ranks', 2.5, /^ranks: expected a whole number, got 2\.5/],
  ['ranks', Infinity, /^ranks: expected a finite number, got infinity; use a whole number/],
  ['cluster.slotsPerContainer', -Infinity, /^cluster\.slotsPerContainer: expected a finite number, got -infinity/],
  ['timeoutSeconds', NaN, /^timeoutSeconds: expected a finite number, got NaN \(not a number\)/],
  ['program.args', [Infinity], /^program\.args\.0: expected string, got infinity/],
];
for (const [field, value, expected] of badFields) {
  test(`bad ${field} (${typeof value === 'number' ? String(value) : JSON.stringify(value)}) is named with its fix`, () => {
    const problems = problemsOf(withField(field, value));
    assert.is(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, expected);
  });
}

test('interHost handoff and tcp are accepted with network freeflow; handoff with network overlay is refused', () => {
  assert.is(validateJobSpec({ ...valid, interHost: 'handoff' }, FILE).interHost, 'handoff');
  assert.is(validateJobSpec({ ...valid, interHost: 'tcp', network: 'overlay' }, FILE).interHost, 'tcp');
  const problems = problemsOf({ ...valid, interHost: 'handoff', network: 'overlay' });
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, /^interHost: needs network freeflow/);
});

test('an unknown field is named, with the likely intended one', () => {
  const problems = problemsOf({ ...valid, cluster: { ...valid.cluster, host: 2 } });
  assert.ok(
    problems.some((p) => /^cluster\.host: unknown field \(did you mean hosts\?\); remove or rename it/.test(p)),
    problems.join('\n'),
  );
});

test('all problems are reported together, in one error', () => {
  const problems = problemsOf({ name: 'x', cluster: { hosts: 0, containersPerHost: 0 }, ranks: -1, program: {}, extra: 1 });
  assert.is(problems.length, 5, problems.join('\n'));
});

test('a document that is not a mapping is refused', () => {
  assert.match(problemsOf(['a'])[0]!, /^the document: expected object/);
});

test('command-line values are named by their flag', () => {
  try {
    validateJobSpec({ ...valid, ranks: 'four' }, { kind: 'flags', flagOf: { ranks: '-n' } });
    assert.unreachable();
  } catch (error) {
    assert.match((error as FfError).notes[0]!, /^-n \(ranks\): expected number, got "four"/);
  }
});

test('YAML files: syntax errors, missing files, relative programs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffspec-'));
  try {
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'name: x\ncluster: [1,\n');
    assert.throws(
      () => loadJobSpecFile(broken),
      (e: FfError) => e.code === 'SPEC_INVALID' && /not valid YAML/.test(e.message),
    );
    const duplicate = path.join(dir, 'dup.yaml');
    writeFileSync(duplicate, 'name: x\nname: y\n');
    assert.throws(
      () => loadJobSpecFile(duplicate),
      (e: FfError) => e.code === 'SPEC_INVALID',
    );
    assert.throws(
      () => loadJobSpecFile(path.join(dir, 'none.yaml')),
      (e: FfError) => e.code === 'SPEC_NOT_FOUND',
    );
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'name: x\ncluster: {hosts: 1, containersPerHost: 1}\nranks: 1\nprogram: {command: build/bin/p, args: ["7"]}\n');
    const spec = loadJobSpecFile(good);
    assert.is(spec.program.command, path.join(REPO_ROOT, 'build/bin/p'));
    assert.equal(spec.program.args, ['7']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes `text` as a spec file in a fresh directory and returns what loading it throws. */
function loadError(text: string): FfError {
  const dir = mkdtempSync(path.join(tmpdir(), 'ffspec-'));
  try {
    const file = path.join(dir, 'job.yaml');
    writeFileSync(file, text);
    loadJobSpecFile(file);
  } catch (error) {
    return error as FfError;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error('expected an error');
}

const SPEC_TAIL = 'cluster: {hosts: 1, containersPerHost: 1}\nranks: 1\nprogram: {command: /bin/true}\n';

test('a YAML alias bomb is a SPEC_INVALID that names the problem, not an internal error', () => {
  // 9 levels of 9 aliases: about 387 million strings once expanded.
  const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (const [i, name] of [...'bcdefghi'].entries()) levels.push(`${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`);
  const error = loadError(`name: x\n${SPEC_TAIL}${levels.join('\n')}\n`);
  assert.instance(error, FfError);
  assert.is(error.code, 'SPEC_INVALID');
  assert.match(error.message, /job spec .*job\.yaml uses too many YAML aliases: they expand to more than 100 copies \(an alias bomb\)/);
  assert.match(error.hint ?? '', /write the values out instead of repeating them through aliases/);
});

test('an alias to no anchor is a YAML error; a few aliases are fine', () => {
  const error = loadError(`name: *nowhere\n${SPEC_TAIL}`);
  assert.instance(error, FfError);
  assert.is(error.code, 'SPEC_INVALID');
  assert.match(error.message, /is not valid YAML: Unresolved alias/);
  const dir = mkdtempSync(path.join(tmpdir(), 'ffspec-'));
  try {
    const file = path.join(dir, 'job.yaml');
    writeFileSync(file, `name: x\ncluster: {hosts: &n 2, containersPerHost: *n}\nranks: *n\nprogram: {command: /bin/true}\n`);
    assert.equal(loadJobSpecFile(file).cluster, { hosts: 2, containersPerHost: 2, slotsPerContainer: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a spec file larger than the cap is refused with the limit, even when it is valid YAML', () => {
  const error = loadError(`name: x\n${SPEC_TAIL}${'# padding\n'.repeat(7000)}`);
  assert.instance(error, FfError);
  assert.is(error.code, 'SPEC_INVALID');
  assert.match(error.message, /job spec .*job\.yaml is larger than 64 KiB, too large for a job spec/);
});

test('numbers in a YAML spec that are no usable number are named as written, once per field', () => {
  const error = loadError(
    'name: x\ncluster: {hosts: .inf, containersPerHost: -.inf, slotsPerContainer: .nan}\nranks: 1e400\n' +
      'timeoutSeconds: 99999999999999999999\nprogram: {command: /bin/true}\n',
  );
  assert.is(error.code, 'SPEC_INVALID');
  assert.equal(error.notes, [
    'cluster.hosts: expected a finite number, got .inf (infinity); use a whole number of simulated hosts from 1 to 8',
    'cluster.containersPerHost: expected a finite number, got -.inf (-infinity); use a whole number of containers per host from 1 to 16',
    'cluster.slotsPerContainer: expected a finite number, got .nan (not a number); use a whole number of rank slots per container from 1 to 64 (default 1)',
    'ranks: expected a finite number, got 1e400 (infinity); use a whole number of MPI ranks from 1 to 8192 (at most hosts x containersPerHost x slotsPerContainer)',
    'timeoutSeconds: must be at most 86400 (got 99999999999999999999); use a whole number of seconds from 1 to 86400 (default 300)',
  ]);
  assert.not.match(error.message, /null/);
});

test('the shipped job specs are valid', () => {
  for (const name of ['demo', 'same-host-pair', 'cross-host-pair']) {
    const spec = loadJobSpecFile(path.join(REPO_ROOT, 'jobs', `${name}.yaml`));
    assert.is(spec.name, name);
  }
});

test.run();
