import * as fs from 'node:fs';
import { FfError } from '../../errors';
import { exec } from '../../util/exec';
import { SLURM_CLIENTS } from './preflight';

/** `scontrol show config` lines "Name = value". */
export function parseSlurmConfig(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\w+)\s+=\s+(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, match[2]!.trim());
  }
  return settings;
}

/** An existing Slurm whose nodes run freeflow's node pieces (docs/slurm.md, "Your own Slurm"). */
export interface ExistingSlurm {
  readonly conf: string;
  /** The plugstack line's node_root=: where each node makes the job's directory (<node_root>/<job>). */
  readonly nodeRoot: string;
  /** The plugstack line's agents=: the site's file of the nodes' ffagents. */
  readonly agentsFile: string;
  /** Node name -> its ffagent's <ipv4>:<port>, from that file. */
  readonly agents: ReadonlyMap<string, string>;
}

/** The site's agents file: lines `<node> <ipv4>:<port>`, `#` comments; the plugin reads the same file on the nodes. */
export function parseAgentsFile(text: string): Map<string, string> {
  const agents = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}) (\d+\.\d+\.\d+\.\d+:\d+)$/.exec(line.trim());
    if (match) agents.set(match[1]!, match[2]!);
  }
  return agents;
}

/** The freeflow plugin's line of a plugstack.conf and its KEY=VALUE arguments; undefined without one. */
export function pluginArguments(plugstack: string): Map<string, string> | undefined {
  const line = plugstack.split('\n').find((text) => /^\s*(required|optional)\s+\S*spank_freeflow\.so/.test(text));
  if (line === undefined) return undefined;
  const words = line.trim().split(/\s+/).slice(2);
  return new Map(words.filter((word) => word.includes('=')).map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]));
}

const NODE_PIECES_HINT =
  "run freeflow's node pieces on every node: the ffagent unit, an agents file listing each node's agent, and `node_root=/run/freeflow agents=/etc/freeflow/agents` on the plugin's plugstack.conf line (docs/slurm.md, \"Your own Slurm\")";

/**
 * Checks an existing Slurm the way ffrun needs it: the controller answers, it offers PMIx, its plugstack
 * loads the freeflow SPANK plugin, and the plugin's line names the node pieces (node_root=, agents=) with
 * an agents file that lists nodes. Each problem is its own typed error naming the fix.
 */
export async function checkExistingSlurm(conf: string): Promise<ExistingSlurm> {
  const env = { ...process.env, SLURM_CONF: conf };
  const ping = await exec(SLURM_CLIENTS.scontrol, ['ping'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (ping.code !== 0 || !/is UP/.test(ping.stdout)) {
    throw new FfError(
      'SLURM_UNREACHABLE',
      `the Slurm controller of ${conf} does not answer: ${(ping.stdout + ping.stderr).trim().split('\n').slice(-1)[0] ?? ''}`,
      {
        hint: 'start slurmctld (systemctl start slurmctld) or fix SlurmctldHost in that slurm.conf; `scontrol ping` must say UP; omit --slurm-conf for an embedded Slurm',
      },
    );
  }
  const shown = await exec(SLURM_CLIENTS.scontrol, ['show', 'config'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (shown.code !== 0) {
    throw new FfError('SLURM_MISCONFIGURED', `\`scontrol show config\` failed for ${conf}: ${shown.stderr.trim()}`, { hint: 'fix the slurm.conf it names' });
  }
  const settings = parseSlurmConfig(shown.stdout);
  const mpiTypes = await exec(SLURM_CLIENTS.srun, ['--mpi=list'], { env, allowFailure: true, timeoutMs: 20_000 });
  if (!/pmix/.test(mpiTypes.stdout + mpiTypes.stderr)) {
    throw new FfError('SLURM_MISCONFIGURED', `the Slurm of ${conf} offers no PMIx (srun --mpi=list shows no pmix)`, {
      hint: 'install slurm-wlm-basic-plugins (mpi_pmix.so); Open MPI 4.1 ranks are wired by srun --mpi=pmix only',
    });
  }
  const plugstack = settings.get('PlugStackConfig') ?? '/etc/slurm/plugstack.conf';
  let stack = '';
  try {
    stack = fs.readFileSync(plugstack, 'utf8');
  } catch {
    // a missing plugstack loads no plugin: reported below
  }
  const args = pluginArguments(stack);
  if (args === undefined) {
    throw new FfError('SPANK_PLUGIN_NOT_LOADED', `${plugstack} (PlugStackConfig of ${conf}) does not list the freeflow SPANK plugin`, {
      hint: 'add `required <repo>/build/lib/spank_freeflow.so` to it on the submit host and every node and restart slurmd (docs/slurm.md)',
    });
  }
  const nodeRoot = args.get('node_root');
  const agentsFile = args.get('agents');
  if (nodeRoot === undefined || agentsFile === undefined) {
    throw new FfError(
      'SLURM_MISCONFIGURED',
      `the freeflow plugin's line in ${plugstack} has no ${nodeRoot === undefined ? 'node_root=' : 'agents='}: the nodes of ${conf} do not run freeflow's node pieces`,
      {
        hint: NODE_PIECES_HINT,
      },
    );
  }
  let agents: Map<string, string>;
  try {
    agents = parseAgentsFile(fs.readFileSync(agentsFile, 'utf8'));
  } catch (error) {
    throw new FfError('SLURM_MISCONFIGURED', `the agents file ${agentsFile} (plugstack ${plugstack}) cannot be read: ${(error as Error).message}`, {
      hint: NODE_PIECES_HINT,
    });
  }
  return { conf, nodeRoot, agentsFile, agents };
}
