import { FfError } from '../../errors';
import { plural } from '../../orchestrator/format-plan';
import { loadJobSpecFile, withResolvedCommand } from '../../spec/load';
import { LIMITS, type JobSpec } from '../../spec/schema';
import { validateJobSpec } from '../../spec/validate';

export interface RunArgs {
  readonly spec: JobSpec;
  readonly json: boolean;
}

/** Which flag sets which spec field: errors on the command line name the flag. */
const FLAG_OF: Readonly<Record<string, string>> = {
  name: '--name',
  ranks: '-n',
  'cluster.hosts': '--hosts',
  'cluster.containersPerHost': '--containers-per-host',
  'cluster.slotsPerContainer': '--slots-per-container',
  'cluster.mtu': '--mtu',
  'cluster.containerMtu': '--container-mtu',
  placement: '--placement',
  network: '--network',
  interHost: '--inter-host',
  launch: '--launch',
  backend: '--backend',
  slurmConf: '--slurm-conf',
  timeoutSeconds: '--timeout',
  user: '--user',
  scratch: '--scratch',
  'program.command': 'the program after --',
  'program.args.*': 'the program arguments after --',
  'env.*': '-x',
  'mca.*': '--mca',
};

/** Flags that take one value and may be given once (`--np` is `-n`). `-x` and `--mca` repeat, once per name. */
const VALUE_FLAGS = new Set([
  '-n',
  '--np',
  '--hosts',
  '--containers-per-host',
  '--slots-per-container',
  '--placement',
  '--network',
  '--inter-host',
  '--launch',
  '--backend',
  '--slurm-conf',
  '--mtu',
  '--container-mtu',
  '--timeout',
  '--name',
  '--user',
]);
/** The spec field each numeric flag sets: errors name the number as the user typed it. */
const NUMERIC_FLAGS: Readonly<Record<string, string>> = {
  '-n': 'ranks',
  '--hosts': 'cluster.hosts',
  '--containers-per-host': 'cluster.containersPerHost',
  '--slots-per-container': 'cluster.slotsPerContainer',
  '--mtu': 'cluster.mtu',
  '--container-mtu': 'cluster.containerMtu',
  '--timeout': 'timeoutSeconds',
};

export const RUN_USAGE = `ffrun run <job.yaml> [--network overlay|freeflow] [--inter-host auto|handoff|router|tcp] [--mtu BYTES] [--container-mtu BYTES] [--backend local|slurm] [--slurm-conf FILE] [--json]
ffrun [run] -n <ranks> [--hosts H] [--containers-per-host C] [--slots-per-container S] [--mtu BYTES] [--container-mtu BYTES]
      [--placement fill|round-robin] [--network overlay|freeflow] [--inter-host auto|handoff|router|tcp]
      [--launch auto|host|container] [--backend local|slurm] [--slurm-conf FILE] [--timeout SECONDS]
      [--name NAME] [--user USER|UID[:GID]] [--scratch [SIZE]] [-x NAME=VALUE]... [--mca NAME VALUE]... [--json] -- <program> [args...]`;

/**
 * Parses `run`'s arguments: a spec file, or the mpirun-like form that builds the same raw value and goes
 * through the same schema. Defaults of the mpirun-like form: 1 host, 1 slot per container, and as many
 * containers per host as the ranks need.
 */
export function parseRunArgs(args: readonly string[]): RunArgs {
  const separator = args.indexOf('--');
  const options = separator === -1 ? args : args.slice(0, separator);
  const program = separator === -1 ? [] : args.slice(separator + 1);
  const flags = new Map<string, string>();
  const env: Record<string, string> = {};
  const mca: Record<string, string> = {};
  const positional: string[] = [];
  let json = false;
  for (let i = 0; i < options.length; i++) {
    const arg = options[i]!;
    if (arg === '--json') json = true;
    else if (arg === '--scratch') {
      // The size is optional: a next word that is not an option is the size (and is checked as one).
      if (flags.has('--scratch')) usage('--scratch is given twice: give it once');
      const next = options[i + 1];
      flags.set('--scratch', next !== undefined && !next.startsWith('-') ? (i++, next) : '');
    } else if (arg === '--mca') {
      const [name, value] = [options[i + 1], options[i + 2]];
      if (name === undefined || value === undefined) usage('--mca needs a name and a value, e.g. --mca btl_tcp_eager_limit 65536');
      if (Object.hasOwn(mca, name)) usage(`--mca ${name} is given twice (${mca[name]}, then ${value}): give each parameter once`);
      mca[name] = value;
      i += 2;
    } else if (arg === '-x') {
      const value = options[++i];
      if (value === undefined) usage('-x needs NAME=VALUE');
      const eq = value.indexOf('=');
      if (eq <= 0) usage(`-x needs NAME=VALUE, got ${value}`);
      const name = value.slice(0, eq);
      if (Object.hasOwn(env, name)) usage(`-x ${name} is given twice (${name}=${env[name]}, then ${value}): give each variable once`);
      env[name] = value.slice(eq + 1);
    } else if (VALUE_FLAGS.has(arg)) {
      const value = options[++i];
      if (value === undefined) usage(`${arg} needs a value`);
      const flag = arg === '--np' ? '-n' : arg;
      const earlier = flags.get(flag);
      if (earlier !== undefined) usage(`${flag === '-n' ? '-n/--np' : flag} is given twice (${earlier}, then ${value}): give it once`);
      flags.set(flag, value);
    } else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
    else positional.push(arg);
  }

  if (positional.length > 0) {
    const [specPath, ...extra] = positional;
    const onlyNetwork = [...flags.keys()].every((flag) =>
      ['--network', '--inter-host', '--mtu', '--container-mtu', '--backend', '--slurm-conf'].includes(flag),
    );
    if (extra.length > 0 || program.length > 0 || !onlyNetwork || Object.keys(env).length + Object.keys(mca).length > 0)
      usage(
        'with a job spec file, only --network, --inter-host, --mtu, --container-mtu, --backend, --slurm-conf and --json may be given; put everything else in the spec',
      );
    const spec = loadJobSpecFile(specPath!);
    const mtus = mtuFlags(flags);
    const overrides = {
      ...(flags.has('--network') ? { network: flags.get('--network') } : {}),
      ...(flags.has('--inter-host') ? { interHost: flags.get('--inter-host') } : {}),
      ...(flags.has('--backend') ? { backend: flags.get('--backend') } : {}),
      ...(flags.has('--slurm-conf') ? { slurmConf: flags.get('--slurm-conf') } : {}),
      ...(Object.keys(mtus).length > 0 ? { cluster: { ...spec.cluster, ...mtus } } : {}),
    };
    const writtenMtus = (['--mtu', '--container-mtu'] as const).flatMap((flag) => (flags.has(flag) ? [[NUMERIC_FLAGS[flag]!, flags.get(flag)!] as const] : []));
    const written = writtenMtus.length > 0 ? new Map(writtenMtus) : undefined;
    return {
      spec:
        Object.keys(overrides).length === 0
          ? spec
          : validateJobSpec({ ...spec, ...overrides }, { kind: 'flags', flagOf: FLAG_OF, ...(written ? { written } : {}) }),
      json,
    };
  }
  if (program.length === 0) usage('give a job spec file, or the program to run after --');
  const ranks = numberOrText(flags.get('-n'));
  const hosts = numberOrText(flags.get('--hosts')) ?? 1;
  const slots = numberOrText(flags.get('--slots-per-container')) ?? 1;
  const givenPerHost = numberOrText(flags.get('--containers-per-host'));
  const perHost = givenPerHost ?? defaultContainersPerHost(ranks, hosts, slots);
  const raw = {
    name: flags.get('--name') ?? 'cli',
    cluster: { hosts, containersPerHost: perHost, slotsPerContainer: slots, ...mtuFlags(flags) },
    ranks,
    placement: flags.get('--placement'),
    network: flags.get('--network'),
    interHost: flags.get('--inter-host'),
    ...(flags.has('--launch') ? { launch: flags.get('--launch') } : {}),
    ...(flags.has('--backend') ? { backend: flags.get('--backend') } : {}),
    ...(flags.has('--slurm-conf') ? { slurmConf: flags.get('--slurm-conf') } : {}),
    program: { command: program[0], args: program.slice(1) },
    env,
    mca,
    timeoutSeconds: numberOrText(flags.get('--timeout')),
    ...(flags.has('--user') ? { user: flags.get('--user') } : {}),
    ...(flags.has('--scratch') ? { scratch: flags.get('--scratch') === '' ? true : flags.get('--scratch') } : {}),
  };
  const written = new Map(Object.entries(NUMERIC_FLAGS).flatMap(([flag, field]) => (flags.has(flag) ? [[field, flags.get(flag)!] as const] : [])));
  const spec = validateJobSpec(raw, { kind: 'flags', flagOf: FLAG_OF, written });
  if (givenPerHost === undefined) assertFitsDefaultContainers(spec, flags);
  return { spec: withResolvedCommand(spec, process.cwd()), json };
}

/**
 * As many containers per host as the ranks need, at most the limit: more ranks than that can hold are
 * refused by assertFitsDefaultContainers, which does not blame --containers-per-host (not given).
 */
function defaultContainersPerHost(ranks: unknown, hosts: unknown, slots: unknown): number {
  // When a value is unusable, its own error is the one to show: any valid count keeps this one quiet.
  if (typeof ranks !== 'number' || typeof hosts !== 'number' || typeof slots !== 'number' || hosts < 1 || slots < 1) return 1;
  return Math.min(LIMITS.containersPerHost, Math.max(1, Math.ceil(ranks / (hosts * slots))));
}

/** Without --containers-per-host, says which flags make room when the ranks exceed the largest default cluster. */
function assertFitsDefaultContainers(spec: JobSpec, flags: ReadonlyMap<string, string>): void {
  const { hosts, containersPerHost, slotsPerContainer } = spec.cluster;
  const capacity = hosts * containersPerHost * slotsPerContainer;
  if (spec.ranks <= capacity) return;
  const origin = (flag: string): string => (flags.has(flag) ? flag : 'the default');
  const raise = [
    hosts < LIMITS.hosts ? `--hosts (up to ${LIMITS.hosts})` : undefined,
    slotsPerContainer < LIMITS.slotsPerContainer ? `--slots-per-container (up to ${LIMITS.slotsPerContainer})` : undefined,
  ].filter((text) => text !== undefined);
  throw new FfError(
    'TOO_MANY_RANKS',
    `${spec.ranks} ranks do not fit: ${plural(hosts, 'host')} (${origin('--hosts')}) x ${plural(containersPerHost, 'container')} ` +
      `(the most per host; without --containers-per-host ffrun makes as many as the ranks need) x ${plural(slotsPerContainer, 'slot')} (${origin('--slots-per-container')}) = ${capacity} slots`,
    { hint: raise.length === 0 ? 'lower -n' : `raise ${raise.join(' or ')}, or lower -n` },
  );
}

/** Numbers become numbers; anything else stays text so that the schema reports it by name. */
/** cluster.mtu / cluster.containerMtu from --mtu / --container-mtu, as given (the schema checks them). */
function mtuFlags(flags: ReadonlyMap<string, string>): { mtu?: number | string; containerMtu?: number | string } {
  return {
    ...(flags.has('--mtu') ? { mtu: numberOrText(flags.get('--mtu'))! } : {}),
    ...(flags.has('--container-mtu') ? { containerMtu: numberOrText(flags.get('--container-mtu'))! } : {}),
  };
}

function numberOrText(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

function usage(problem: string): never {
  throw new FfError('USAGE', problem, { hint: `usage:\n${RUN_USAGE}` });
}
