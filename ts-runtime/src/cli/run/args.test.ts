import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FfError } from '../../errors';
import { REPO_ROOT } from '../../util/repo-root';
import { containerMtuOf } from '../../spec/schema';
import { scratchRequest } from '../../spec/schema';
import { validateJobSpec } from '../../spec/validate';
import { parseRunArgs } from './args';
import { ffErrorOf } from '#test/support/ff-error';

const errorOf = (args: string[]): FfError => ffErrorOf(() => parseRunArgs(args));

test('--user sets the spec field; its errors name the flag', () => {
  assert.is(parseRunArgs(['-n', '1', '--user', '65534:65534', '--', '/bin/true']).spec.user, '65534:65534');
  assert.is(parseRunArgs(['-n', '1', '--', '/bin/true']).spec.user, undefined);
  const error = errorOf(['-n', '1', '--user', 'a;b', '--', '/bin/true']);
  assert.ok(
    error.notes.some((note) => note.includes('--user')),
    error.notes.join('\n'),
  );
});

test('the mpirun-like form builds the same spec as the YAML form', () => {
  const fromFile = parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml')]).spec;
  const fromFlags = parseRunArgs([
    '--name',
    'demo',
    '-n',
    '4',
    '--hosts',
    '2',
    '--containers-per-host',
    '2',
    '--timeout',
    String(fromFile.timeoutSeconds),
    '--',
    fromFile.program.command,
    ...fromFile.program.args,
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

test('--inter-host sets interHost, alone or over a spec file; handoff and router need network freeflow', () => {
  assert.is(parseRunArgs(['-n', '2', '--', 'x']).spec.interHost, 'auto');
  assert.is(parseRunArgs(['-n', '2', '--inter-host', 'handoff', '--', 'x']).spec.interHost, 'handoff');
  assert.is(parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--inter-host', 'tcp']).spec.interHost, 'tcp');
  assert.is(parseRunArgs(['-n', '2', '--inter-host', 'router', '--', 'x']).spec.interHost, 'router');
  assert.match(
    errorOf(['-n', '2', '--inter-host', 'rdma', '--', 'x']).notes.join('\n'),
    /--inter-host \(interHost\): must be one of auto, handoff, router, tcp/,
  );
  assert.match(
    errorOf(['-n', '2', '--network', 'overlay', '--inter-host', 'router', '--', 'x']).notes.join('\n'),
    /--inter-host \(interHost\): needs network freeflow/,
  );
  assert.match(
    errorOf(['-n', '2', '--network', 'overlay', '--inter-host', 'handoff', '--', 'x']).notes.join('\n'),
    /--inter-host \(interHost\): needs network freeflow/,
  );
});

test('--launch sets launch (default auto); host needs network freeflow; bad values are refused naming the choices', () => {
  assert.is(parseRunArgs(['-n', '2', '--', 'x']).spec.launch, 'auto');
  assert.is(parseRunArgs(['-n', '2', '--launch', 'container', '--', 'x']).spec.launch, 'container');
  assert.is(parseRunArgs(['-n', '2', '--launch', 'host', '--', 'x']).spec.launch, 'host');
  assert.match(errorOf(['-n', '2', '--launch', 'node', '--', 'x']).notes.join('\n'), /--launch \(launch\): must be one of auto, host, container/);
  assert.match(errorOf(['-n', '2', '--network', 'overlay', '--launch', 'host', '--', 'x']).notes.join('\n'), /--launch \(launch\): needs network freeflow/);
});

test("--mtu sets the hosts' network MTU (cluster.mtu), alone or over a spec file; out of range or not a number is refused naming the fix", () => {
  assert.is(parseRunArgs(['-n', '2', '--', 'x']).spec.cluster.mtu, undefined);
  assert.is(parseRunArgs(['-n', '2', '--hosts', '2', '--mtu', '9000', '--', 'x']).spec.cluster.mtu, 9000);
  const overFile = parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--mtu', '9000']).spec;
  assert.is(overFile.cluster.mtu, 9000);
  assert.is(overFile.cluster.hosts, parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml')]).spec.cluster.hosts);
  for (const [value, problem] of [
    ['1400', /must be at least 1500 \(got 1400\)/],
    ['70000', /must be at most 65535 \(got 70000\)/],
    ['jumbo', /expected number, got "jumbo"/],
    ['9000.5', /expected number, got "9000.5"/],
  ] as const) {
    const error = errorOf(['-n', '2', '--mtu', value, '--', 'x']);
    assert.is(error.code, 'USAGE', value);
    const notes = error.notes.join('\n');
    assert.match(notes, /^--mtu \(cluster\.mtu\): /, notes);
    assert.match(notes, problem, notes);
    assert.match(notes, /from 1500 to 65535 \(default 1500; 9000 for jumbo frames\); containers get 50 less/, notes);
  }
  assert.match(errorOf([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--mtu', '100']).notes.join('\n'), /--mtu \(cluster\.mtu\): must be at least 1500/);
});

test("--container-mtu keeps containers below the hosts' network MTU (cluster.containerMtu): 9000 under 1450 parses; above the underlay minus 50, below 1280 or not a number is refused naming the fix", () => {
  const spec = parseRunArgs(['-n', '2', '--hosts', '2', '--mtu', '9000', '--container-mtu', '1450', '--', 'x']).spec;
  assert.is(spec.cluster.mtu, 9000);
  assert.is(spec.cluster.containerMtu, 1450);
  assert.is(containerMtuOf(spec.cluster), 1450);
  assert.is(containerMtuOf(parseRunArgs(['-n', '2', '--mtu', '9000', '--', 'x']).spec.cluster), 8950);
  assert.is(containerMtuOf(parseRunArgs(['-n', '2', '--', 'x']).spec.cluster), 1450);
  const overFile = parseRunArgs([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--mtu', '9000', '--container-mtu', '1450']).spec;
  assert.equal([overFile.cluster.mtu, overFile.cluster.containerMtu], [9000, 1450]);
  for (const [args, problem] of [
    [['--container-mtu', '1500'], /--container-mtu \(cluster\.containerMtu\): must be at most the hosts' network MTU 1500 minus 50 \(1450\)/],
    [['--mtu', '9000', '--container-mtu', '8960'], /--container-mtu \(cluster\.containerMtu\): must be at most the hosts' network MTU 9000 minus 50 \(8950\)/],
    [['--mtu', '9000', '--container-mtu', '1000'], /--container-mtu \(cluster\.containerMtu\): must be at least 1280 \(got 1000\)/],
    [['--mtu', '9000', '--container-mtu', 'small'], /--container-mtu \(cluster\.containerMtu\): .*expected number, got "small"/],
  ] as const) {
    const error = errorOf(['-n', '2', ...args, '--', 'x']);
    assert.is(error.code, 'USAGE', args.join(' '));
    const notes = error.notes.join('\n');
    assert.match(notes, problem, notes);
    assert.match(notes, /use the containers' \(overlay\) MTU in bytes, a whole number from 1280 to the hosts' network MTU minus 50/, notes);
  }
});

test('errors name the flag', () => {
  assert.match(errorOf(['--', 'x']).notes.join('\n'), /^-n \(ranks\): is required but missing/);
  assert.match(errorOf(['-n', 'four', '--', 'x']).notes.join('\n'), /-n \(ranks\): expected number, got "four"/);
  assert.match(errorOf(['-n', '2', '--hosts', '0', '--', 'x']).notes.join('\n'), /--hosts \(cluster\.hosts\): must be at least 1/);
  assert.match(errorOf(['-n', '2', '--network', 'ib', '--', 'x']).notes.join('\n'), /--network \(network\): must be one of overlay, freeflow/);
  assert.match(errorOf(['-n', '2', '-x', '1A=b', '--', 'x']).notes.join('\n'), /-x \(env\.1A\): the name "1A" is not a valid name/);
});

test('a bad flag value is a usage error (exit 2), like every other problem on the command line', () => {
  for (const args of [
    ['-n', 'four', '--', 'x'],
    ['-n', '2', '--hosts', '0', '--', 'x'],
    [path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--network', 'ib'],
  ]) {
    const error = errorOf(args);
    assert.is(error.code, 'USAGE', `${args.join(' ')}: ${error.message}`);
    assert.match(error.message, /^command line is invalid:/);
  }
});

test('huge numbers on the command line: one problem per flag, its limit once, the number as typed', () => {
  const error = errorOf(['-n', '99999999999999999999', '--hosts', '99999999999999999999', '--', 'x']);
  assert.equal(error.notes, [
    '--hosts (cluster.hosts): must be at most 8 (got 99999999999999999999); use a whole number of simulated hosts from 1 to 8',
    '-n (ranks): must be at most 8192 (got 99999999999999999999); use a whole number of MPI ranks from 1 to 8192 (at most hosts x containersPerHost x slotsPerContainer)',
  ]);
});

test('more ranks than the default cluster holds: TOO_MANY_RANKS naming the flags to raise, not blaming one never given', () => {
  const error = errorOf(['-n', '17', '--', 'x']);
  assert.is(error.code, 'TOO_MANY_RANKS');
  assert.is(
    error.message,
    '17 ranks do not fit: 1 host (the default) x 16 containers (the most per host; without --containers-per-host ffrun makes as many as the ranks need) x 1 slot (the default) = 16 slots',
  );
  assert.is(error.hint, 'raise --hosts (up to 8) or --slots-per-container (up to 64), or lower -n');
  const withHosts = errorOf(['-n', '300', '--hosts', '8', '--slots-per-container', '2', '--', 'x']);
  assert.match(withHosts.message, /^300 ranks do not fit: 8 hosts \(--hosts\) x 16 containers .* x 2 slots \(--slots-per-container\) = 256 slots$/);
  assert.is(withHosts.hint, 'raise --slots-per-container (up to 64), or lower -n');
  // What fits still gets as many containers as it needs; a --containers-per-host that was given is named.
  assert.is(parseRunArgs(['-n', '32', '--hosts', '2', '--', 'x']).spec.cluster.containersPerHost, 16);
  assert.match(
    errorOf(['-n', '17', '--containers-per-host', '17', '--', 'x']).notes[0]!,
    /^--containers-per-host \(cluster\.containersPerHost\): must be at most 16 \(got 17\)/,
  );
});

test('a single-valued flag given twice is refused naming it; -x and --mca repeat, once per name', () => {
  const twice: Array<[string[], RegExp]> = [
    [['-n', '2', '-n', '3'], /^-n\/--np is given twice \(2, then 3\): give it once$/],
    [['-n', '2', '--np', '3'], /^-n\/--np is given twice/],
    [['-n', '1', '--hosts', '1', '--hosts', '2'], /^--hosts is given twice \(1, then 2\)/],
    [['-n', '1', '--network', 'overlay', '--network', 'freeflow'], /^--network is given twice/],
    [['-n', '1', '--timeout', '5', '--timeout', '5'], /^--timeout is given twice/],
    [['-n', '1', '-x', 'A=1', '-x', 'A=2'], /^-x A is given twice \(A=1, then A=2\): give each variable once$/],
    [['-n', '1', '--mca', 'btl', 'a', '--mca', 'btl', 'b'], /^--mca btl is given twice \(a, then b\): give each parameter once$/],
  ];
  for (const [args, expected] of twice) {
    const error = errorOf([...args, '--', 'x']);
    assert.is(error.code, 'USAGE', args.join(' '));
    assert.match(error.message, expected);
  }
  assert.match(errorOf([path.join(REPO_ROOT, 'jobs', 'demo.yaml'), '--network', 'overlay', '--network', 'overlay']).message, /^--network is given twice/);
  const { spec } = parseRunArgs(['-n', '1', '-x', 'A=1', '-x', 'B=2', '--mca', 'a', '1', '--mca', 'b', '2', '--json', '--json', '--', 'x']);
  assert.equal(spec.env, { A: '1', B: '2' });
  assert.equal(spec.mca, { a: '1', b: '2' });
});

test('usage errors', () => {
  assert.is(errorOf(['-n', '2']).code, 'USAGE');
  assert.match(errorOf(['--bogus', '--', 'x']).message, /unknown option --bogus/);
  assert.match(errorOf(['-n']).message, /-n needs a value/);
  assert.match(errorOf(['jobs/demo.yaml', '-n', '2']).message, /only --network, --inter-host, --mtu, --container-mtu, --backend, --slurm-conf and --json/);
});

test('--scratch: without a size the default, with one its MiB; the spec field takes the same values', () => {
  assert.equal(scratchRequest(parseRunArgs(['-n', '2', '--', 'x']).spec.scratch), undefined);
  assert.equal(scratchRequest(parseRunArgs(['--scratch', '-n', '2', '--', 'x']).spec.scratch), {});
  assert.equal(scratchRequest(parseRunArgs(['-n', '2', '--scratch', '--', 'x']).spec.scratch), {});
  assert.equal(scratchRequest(parseRunArgs(['-n', '2', '--scratch', '512M', '--', 'x']).spec.scratch), { sizeMiB: 512 });
  assert.equal(scratchRequest(parseRunArgs(['-n', '2', '--scratch', '2GiB', '--', 'x']).spec.scratch), { sizeMiB: 2048 });
  assert.equal(scratchRequest(parseRunArgs(['-n', '2', '--scratch', '1500K', '--', 'x']).spec.scratch), { sizeMiB: 2 });
  assert.equal(scratchRequest(false), undefined);
});

test('--scratch with a bad size names the flag, the value and the fix; twice is refused', () => {
  for (const bad of ['12Q', '512', '0M', '2048T', 'lots', '100K']) {
    const error = errorOf(['-n', '2', '--scratch', bad, '--', 'x']);
    assert.is(error.code, 'USAGE', bad);
    assert.match(error.message, '--scratch (scratch)');
    assert.match(error.message, `is not a scratch size (got "${bad}")`);
    assert.match(error.message, 'e.g. 512M or 2G');
  }
  assert.match(errorOf(['--scratch', '--scratch', '-n', '2', '--', 'x']).message, '--scratch is given twice');
});

test('scratch in a spec: a number without a unit is refused with the fix', () => {
  assert.throws(
    () =>
      validateJobSpec(
        { name: 'a', cluster: { hosts: 1, containersPerHost: 1 }, ranks: 1, program: { command: 'x' }, scratch: 64 },
        { kind: 'file', path: 'j.yaml' },
      ),
    (error: FfError) => error.code === 'SPEC_INVALID' && /scratch: is not a scratch size \(got 64\); use true/.test(error.message),
  );
});

test.run();
