import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../../errors';
import { REPO_ROOT } from '../../util/repo-root';
import { parseRunArgs } from './args';

const errorOf = (args: string[]): FfError => {
  try {
    parseRunArgs(args);
  } catch (error) {
    return error as FfError;
  }
  throw new Error('expected an error');
};

test('the mpirun-like form builds the same spec as the YAML form', () => {
  const fromFile = parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml')]).spec;
  const fromFlags = parseRunArgs([
    '--name', 'demo', '-n', '4', '--hosts', '2', '--containers-per-host', '2', '--timeout', String(fromFile.timeoutSeconds),
    '--', fromFile.program.command, ...fromFile.program.args,
  ]).spec;
  assert.equal(fromFlags, fromFile);
});

test('defaults: 1 host, as many containers as ranks; relative programs resolve against the working directory', () => {
  const { spec, json } = parseRunArgs(['-n', '3', '--json', '-x', 'A=b=c', '--mca', 'btl_tcp_eager_limit', '65536', '--', './app', '--flag']);
  assert.ok(json);
  assert.equal(spec.cluster, { hosts: 1, containersPerHost: 3, slotsPerContainer: 1 });
  assert.is(spec.program.command, path.join(process.cwd(), 'app'));
  assert.equal(spec.program.args, ['--flag']);
  assert.equal(spec.env, { A: 'b=c' });
  assert.equal(spec.mca, { btl_tcp_eager_limit: '65536' });
});

test('a bare command name stays a name (looked up on PATH in the containers)', () => {
  assert.is(parseRunArgs(['-n', '1', '--', 'hostname']).spec.program.command, 'hostname');
});

test('--network overrides a spec file', () => {
  assert.is(parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--network', 'freeflow']).spec.network, 'freeflow');
});

test('errors name the flag', () => {
  assert.match(errorOf(['--', 'x']).notes.join('\n'), /^-n \(ranks\): is required but missing/);
  assert.match(errorOf(['-n', 'four', '--', 'x']).notes.join('\n'), /-n \(ranks\): expected number, got "four"/);
  assert.match(errorOf(['-n', '2', '--hosts', '0', '--', 'x']).notes.join('\n'), /--hosts \(cluster\.hosts\): must be at least 1/);
  assert.match(errorOf(['-n', '2', '--network', 'ib', '--', 'x']).notes.join('\n'), /--network \(network\): must be one of overlay, freeflow/);
  assert.match(errorOf(['-n', '2', '-x', '1A=b', '--', 'x']).notes.join('\n'), /-x \(env\.1A\): the name "1A" is not a valid name/);
});

test('usage errors', () => {
  assert.is(errorOf(['-n', '2']).code, 'USAGE');
  assert.match(errorOf(['--bogus', '--', 'x']).message, /unknown option --bogus/);
  assert.match(errorOf(['-n']).message, /-n needs a value/);
  assert.match(errorOf(['jobs/demo.yaml', '-n', '2']).message, /only --network and --json/);
});

test.run();
