import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Cluster } from '../../cluster';
import { FfError } from '../../errors';
import type { MpirunInvocation } from '../../launcher/mpirun-invocation';
import type { MpirunOutcome, RunOptions } from '../../launcher/run-mpirun';
import type { JobPlan } from '../../orchestrator/plan';
import { bootEmbeddedSlurm } from './embedded';
import { checkExistingSlurm, type ExistingSlurm } from './existing';
import { assertSlurmClientInstalled, assertSlurmDaemonsInstalled } from './preflight';
import { runSrunChecked } from './run-srun';
import { buildSrunInvocation } from './srun-invocation';

export { SPANK_NOT_LOADED_PATTERN } from './failures';
export { runOnExistingSlurm } from './existing-job';

/** How a job's ranks are started once the plan exists: mpirun (local backend) or srun (this one). */
export interface RankLauncher {
  /** The launch mode the plan must use: Slurm starts one slurmstepd per node, like a host launch's orted. */
  readonly launch: 'host';
  run(invocation: MpirunInvocation, plan: JobPlan, options: RunOptions): Promise<MpirunOutcome>;
}

/** The existing Slurm to use: --slurm-conf, else SLURM_CONF of ffrun's environment; undefined boots an embedded one. */
export function existingSlurmConf(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const conf = flag ?? env.SLURM_CONF;
  return conf === undefined || conf === '' ? undefined : path.resolve(conf);
}

/**
 * Checks that need no cluster, run before any namespace exists so that a missing package or a bad Slurm
 * costs nothing. An existing Slurm (--slurm-conf, SLURM_CONF) is checked for what ffrun needs (reachable,
 * PMIx, the SPANK plugin in its plugstack with the nodes' pieces) and returned: the job then runs on its
 * nodes (existing-job.ts); undefined means an embedded Slurm.
 */
export async function assertSlurmBackendUsable(slurmConf: string | undefined): Promise<ExistingSlurm | undefined> {
  assertSlurmClientInstalled();
  if (slurmConf === undefined) {
    assertSlurmDaemonsInstalled();
    return undefined;
  }
  if (!fs.existsSync(slurmConf)) {
    throw new FfError('SLURM_MISCONFIGURED', `the Slurm configuration ${slurmConf} does not exist`, {
      hint: 'give --slurm-conf (or SLURM_CONF) the slurm.conf of a running cluster, or neither for an embedded Slurm',
    });
  }
  return checkExistingSlurm(slurmConf);
}

/**
 * Runs `work` with an embedded Slurm booted on the job's local cluster and stopped after (the cluster's
 * teardown removes whatever is left). `work` gets the launcher that starts the ranks through srun.
 */
export async function withSlurm<T>(
  cluster: Cluster,
  options: {
    readonly progress: { step<R>(what: string, run: () => Promise<R>): Promise<R>; note(text: string): void };
    /** Install freeflow's node pieces too (embedded.ts), so that the Slurm can also stand for an existing one. */
    readonly nodePiecesAgentPort?: number;
  },
  work: (launcher: RankLauncher) => Promise<T>,
): Promise<T> {
  if (cluster.user.uid !== 0) {
    throw new FfError('SLURM_MISCONFIGURED', `the Slurm backend runs root jobs only (this job's user is uid ${cluster.user.uid})`, {
      hint: 'drop --user (spec user:) for --backend slurm, or use the local backend for jobs of other users',
    });
  }
  const slurm = await options.progress.step(`booting an embedded Slurm: slurmctld and ${cluster.hosts.length} slurmd`, () =>
    bootEmbeddedSlurm(
      cluster,
      (step) => options.progress.note(step),
      options.nodePiecesAgentPort === undefined ? {} : { nodePiecesAgentPort: options.nodePiecesAgentPort },
    ),
  );
  const slurmDir = slurm.dir;
  const launcher: RankLauncher = {
    launch: 'host',
    run: async (invocation, plan, run) => {
      const nodeOfRank = plan.ranks.map((rank) => cluster.hosts[rank.host]!.netns);
      const srun = buildSrunInvocation({ mpirun: invocation, jobId: cluster.jobId, nodeOfRank, timeoutSeconds: Math.ceil(run.timeoutMs / 1000) });
      // read by the SPANK plugin in every task: root's, 0600, replaced whole for each job on the cluster
      const taskEnv = path.join(slurmDir, 'task.env');
      fs.rmSync(taskEnv, { force: true });
      fs.writeFileSync(taskEnv, srun.taskEnv, { mode: 0o600, flag: 'wx' });
      return runSrunChecked(srun.argv, {
        prefix: ['nsenter', `--net=/run/netns/${cluster.launcher.netns}`, '--'],
        env: { ...process.env, ...srun.env, SLURM_CONF: slurm.conf },
        timeoutMs: run.timeoutMs,
        interrupt: run.interrupt,
        onLine: run.onLine,
      });
    },
  };
  try {
    return await work(launcher);
  } finally {
    await slurm.stop();
  }
}

/**
 * Why a benchmark mode cannot run through Slurm (null when it can): srun starts one slurmstepd per simulated
 * host and enters each rank into its container, which is the freeflow network's launch; the overlay's
 * status quo keeps every container its own node, and host-network containers are ffbench's own layout.
 */
export function slurmModeRefusal(mode: { readonly network: string; readonly hostNetwork?: boolean }): string | null {
  if (mode.network !== 'freeflow') return 'the Slurm backend runs network freeflow jobs only (srun starts one slurmstepd per host: docs/slurm.md)';
  if (mode.hostNetwork === true) return "the Slurm backend runs ranks in the job's own containers, not in host-network ones";
  return null;
}
