/** ffrun's run options as the end-to-end tests give them: each test names only the options it sets. */
export interface RunFlags {
  readonly ranks: number;
  readonly hosts?: number;
  readonly containersPerHost?: number;
  readonly slotsPerContainer?: number;
  readonly mtu?: number;
  readonly containerMtu?: number;
  // strings, not the schema's enums: tests also pass values ffrun must refuse
  readonly network?: string;
  readonly interHost?: string;
  readonly launch?: string;
  readonly backend?: string;
  readonly timeout?: number;
  readonly name?: string;
  readonly user?: string;
  /** `--scratch` with a size, or `true` for the default size. */
  readonly scratch?: string | true;
  /** `--mca name value` for each entry, in order. */
  readonly mca?: Readonly<Record<string, string | number>>;
  readonly json?: boolean;
}

/** The flags that take one value, in the order ffrun's usage lists them. */
const VALUE_FLAGS = [
  ['hosts', '--hosts'],
  ['containersPerHost', '--containers-per-host'],
  ['slotsPerContainer', '--slots-per-container'],
  ['mtu', '--mtu'],
  ['containerMtu', '--container-mtu'],
  ['network', '--network'],
  ['interHost', '--inter-host'],
  ['launch', '--launch'],
  ['backend', '--backend'],
  ['timeout', '--timeout'],
  ['name', '--name'],
  ['user', '--user'],
] as const satisfies ReadonlyArray<readonly [keyof RunFlags, string]>;

/** `ffrun <options> -- <program...>` as an argv (without `run`). */
export function ffrunArgs(flags: RunFlags, program: readonly string[]): string[] {
  const args = ['-n', String(flags.ranks)];
  for (const [key, flag] of VALUE_FLAGS) {
    const value = flags[key];
    if (value !== undefined) args.push(flag, String(value));
  }
  if (flags.scratch !== undefined) args.push('--scratch', ...(flags.scratch === true ? [] : [flags.scratch]));
  for (const [name, value] of Object.entries(flags.mca ?? {})) args.push('--mca', name, String(value));
  if (flags.json === true) args.push('--json');
  return [...args, '--', ...program];
}
