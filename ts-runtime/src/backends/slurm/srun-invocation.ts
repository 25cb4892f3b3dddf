import * as path from 'node:path';
import { FfError } from '../../errors';
import type { MpirunInvocation } from '../../launcher/mpirun-invocation';

/**
 * The Slurm form of a job: ffrun plans the job as for mpirun (buildMpirunInvocation, host launch: one
 * launcher per node, each rank entered into its container by ffrun-fork-agent) and this turns that
 * invocation into srun's. So both backends give the ranks the same MCA settings, the same placement and
 * the same containers: only the launcher differs.
 *
 * - `--mca NAME VALUE` becomes OMPI_MCA_NAME=VALUE in the task environment file that the SPANK plugin
 *   reads (task.env), except mpirun's own launch settings (rsh agent, fork agent, oob);
 * - the fork agent's words (orte_fork_agent) become the task's command, with `--slurm` (rank = SLURM_PROCID);
 * - the placement becomes `--distribution=arbitrary` with one node per task in `--nodelist`;
 * - `-x NAME=VALUE` stay in srun's environment (srun exports it to the tasks).
 */
export interface SrunInvocation {
  readonly argv: readonly string[];
  /** Added to srun's environment (the tasks inherit it: --export=ALL). */
  readonly env: Readonly<Record<string, string>>;
  /** Lines NAME=VALUE for <state dir>/slurm/task.env, read by the SPANK plugin in every task. */
  readonly taskEnv: string;
}

/** mpirun options that take no value, and those that take one (what buildMpirunInvocation emits). */
const FLAGS = new Set(['--allow-run-as-root', '--oversubscribe', '--tag-output']);
const WITH_VALUE = new Set(['-np', '--hostfile', '--map-by', '--bind-to']);
/** mpirun's own launch machinery: srun replaces it. */
const LAUNCH_ONLY_MCA = new Set(['plm_rsh_agent', 'plm_rsh_no_tree_spawn', 'orte_fork_agent', 'oob_tcp_if_include']);

export interface SrunInputs {
  readonly mpirun: MpirunInvocation;
  readonly jobId: string;
  /** Slurm node of each rank, in rank order (the simulated hosts' names). */
  readonly nodeOfRank: readonly string[];
  /** Seconds srun lets the step run (its --time), a backstop behind ffrun's own timeout. */
  readonly timeoutSeconds: number;
}

/**
 * What Open MPI's schizo/slurm would push on seeing SLURM_NODELIST and SLURM_STEP_ID (direct launch), which
 * the containers' clean environment does not carry (the rsh agent forwards OMPI_ and PMIX_ variables only); schizo/orte
 * would otherwise declare every rank a singleton. The BTL needs nothing: its path table covers the job that was not
 * spawned, whatever its id.
 */
export const DIRECT_LAUNCH_ENV: readonly string[] = [
  'OMPI_MCA_schizo=^orte',
  'OMPI_MCA_ess=pmi',
  'OMPI_MCA_hwloc_base_binding_policy=none',
  'OMPI_MCA_orte_externally_bound=1',
];

/** srun's options common to both Slurm modes: one task per entry of nodeOfRank, placed exactly there. */
export function srunPlacementArgs(jobId: string, nodeOfRank: readonly string[], timeoutSeconds: number): string[] {
  return [
    'srun',
    '--mpi=pmix',
    `--freeflow=${jobId}`,
    `--job-name=ff-${jobId}`,
    '--label',
    `--nodes=${new Set(nodeOfRank).size}`,
    `--ntasks=${nodeOfRank.length}`,
    '--distribution=arbitrary',
    `--nodelist=${nodeOfRank.join(',')}`,
    '--overcommit',
    '--oversubscribe',
    '--kill-on-bad-exit=1',
    `--time=${Math.max(1, Math.ceil(timeoutSeconds / 60) + 1)}`,
    `--chdir=${process.cwd()}`,
  ];
}

export function buildSrunInvocation(inputs: SrunInputs): SrunInvocation {
  const { argv } = inputs.mpirun;
  const mca = new Map<string, string>();
  const exported: string[] = [];
  let at = 1;
  for (; at < argv.length; at++) {
    const word = argv[at]!;
    if (FLAGS.has(word)) continue;
    if (WITH_VALUE.has(word)) at++;
    else if (word === '--mca') {
      mca.set(argv[at + 1]!, argv[at + 2]!);
      at += 2;
    } else if (word === '-x') exported.push(argv[++at]!);
    else break;
  }
  const program = argv.slice(at);
  const forkAgentWords = mca.get('orte_fork_agent')?.split(' ');
  if (program.length === 0 || forkAgentWords === undefined || forkAgentWords.at(-1) !== '--' || !forkAgentWords.includes('--enter')) {
    throw new FfError('INTERNAL', `the job's mpirun invocation has no program or no host-launch fork agent: ${argv.join(' ')}`);
  }
  if (inputs.mpirun.launch !== 'host') throw new FfError('INTERNAL', 'a Slurm job is planned as a host launch (one slurmd per host)');

  const taskEnv: string[] = [...DIRECT_LAUNCH_ENV];
  for (const [name, value] of mca) {
    if (LAUNCH_ONLY_MCA.has(name)) continue;
    taskEnv.push(`OMPI_MCA_${name}=${value}`);
  }
  for (const [name, value] of Object.entries(inputs.mpirun.env)) if (!name.startsWith('PMIX_MCA_ptl')) taskEnv.push(`${name}=${value}`);
  const env: Record<string, string> = {};
  for (const setting of exported) {
    const equals = setting.indexOf('=');
    env[setting.slice(0, equals)] = setting.slice(equals + 1);
  }
  for (const line of taskEnv) {
    if (/[\n\r]/.test(line))
      throw new FfError('SPEC_INVALID', `an MCA setting holds a line break: ${JSON.stringify(line)}`, { hint: 'give MCA values on one line' });
  }

  const [forkAgent, ...forkAgentArgs] = forkAgentWords;
  const srunArgv = [...srunPlacementArgs(inputs.jobId, inputs.nodeOfRank, inputs.timeoutSeconds), forkAgent!, '--slurm', ...forkAgentArgs, ...program];
  if (!path.isAbsolute(forkAgent!)) throw new FfError('INTERNAL', `the fork agent path is not absolute: ${forkAgent}`);
  return { argv: srunArgv, env, taskEnv: `${taskEnv.join('\n')}\n` };
}
