import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { ffrunArgs, type RunFlags } from './ffrun-args';
import { FfrunProcess, waitFor, type FfrunResult } from './ffrun';
import { assertJobClean, processesInJobCgroups, processesMatching } from './leftovers';

/** Bytes a link of a host namespace has sent and received. */
function hostLinkBytes(netns: string, link: string): number {
  const [stats] = JSON.parse(execFileSync('ip', ['-n', netns, '-s', '-j', 'link', 'show', link], { encoding: 'utf8' }));
  return stats.stats64.tx.bytes + stats.stats64.rx.bytes;
}

/** What ffrun printed (so far), for a failure message: its progress (stderr), the plan and the ranks' output (stdout). */
export function ffrunOutput(ffrun: Pick<FfrunResult, 'stdout' | 'stderr'>): string {
  return `ffrun's stderr:\n${ffrun.stderr}\nffrun's stdout (the plan, the ranks' output):\n${ffrun.stdout}`;
}

/**
 * Bytes a link of a host of ffrun's running job has carried. A job that ended has its cluster torn down
 * (its links gone first): that fails here with ffrun's output, not with `ip`'s "does not exist".
 */
export function jobLinkBytes(ffrun: FfrunProcess, netns: string, link: string): number {
  assert.is(ffrun.child.exitCode, null, `the job ended early (exit ${ffrun.child.exitCode}):\n${ffrunOutput(ffrun)}`);
  try {
    return hostLinkBytes(netns, link);
  } catch (error) {
    throw new Error(`reading ${link} of ${netns}: ${(error as Error).message}\n${ffrunOutput(ffrun)}`, { cause: error });
  }
}

/**
 * Waits until both ranks of ffrun's job of startStreamingAllpairs run; returns the job id. The ranks are
 * the processes in the job's containers whose argv[0] is the program. Counting command lines that merely
 * name it saw "2" while the cluster was still being set up: ffrun's own command line names the program,
 * and so does each child ffrun forks (an `ip -batch`, a mount) until it execs, so ffrun plus one such
 * child held while the hosts' namespaces existed without their links (CI: 'Device "ul0" does not
 * exist'). The job's cgroups also keep other sessions' similar jobs on this machine out of the count.
 */
export async function waitForStreamingRanks(ffrun: FfrunProcess): Promise<string> {
  const rank = /^\S*\/ffcheck_allpairs --iterations /;
  const running = (): boolean => {
    if (ffrun.child.exitCode !== null || ffrun.child.signalCode !== null) {
      throw new Error(`ffrun ended (exit ${ffrun.child.exitCode ?? ffrun.child.signalCode}) before both ranks ran`);
    }
    const jobId = ffrun.jobId;
    return jobId !== undefined && processesInJobCgroups(jobId).filter((p) => rank.test(p.command)).length === 2;
  };
  try {
    // a cluster boot and mpirun's launch took up to 33 s at load 12-16 on 2 vCPUs
    await waitFor('both ranks to run', running, 90_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${ffrunOutput(ffrun)}`, { cause: error });
  }
  return ffrun.jobId!;
}

/**
 * A job of 2 ranks on 2 hosts that streams 4 MiB messages across them until the ranks' --timeout
 * watchdog ends it 100 s after MPI_Init (100000 iterations would take far longer): long enough to
 * watch its links and fault it mid-job.
 * `iterations` marks its ranks' command lines (other sessions on this machine run similar jobs).
 */
export function startStreamingAllpairs(flags: Omit<RunFlags, 'ranks'>, iterations: number): FfrunProcess {
  const program = [path.join(REPO_ROOT, 'build', 'bin', 'ffcheck_allpairs'), '--iterations', String(iterations), '--sizes', '4M', '--timeout', '100'];
  return new FfrunProcess(ffrunArgs({ ranks: 2, hosts: 2, timeout: 120, ...flags }, program));
}

/**
 * SIGKILLs the ffagent of host `host` while ffrun's job runs: the job must end non-zero within 10 s (a
 * dead agent is noticed, not waited out), its error matching `named`, and leave nothing.
 */
export async function killAgentMidJob(ffrun: FfrunProcess, jobId: string, host: number, named: RegExp): Promise<void> {
  const [agent] = processesMatching(new RegExp(`ffagent --control /run/freeflow-jobs/${jobId}/agents/h${host}[.]sock`));
  assert.ok(agent !== undefined, `no ffagent on h${host}`);
  const killedAt = Date.now();
  process.kill(agent!.pid, 'SIGKILL');
  const result = await ffrun.finished(30_000);
  const seconds = (Date.now() - killedAt) / 1000;
  const output = ffrunOutput(result);
  assert.ok(result.code !== 0, `ffrun exited 0 after its agent was killed:\n${output}`);
  assert.ok(seconds < 10, `the job took ${seconds} s to end after the agent died:\n${output}`);
  assert.ok(named.test(result.stderr), `ffrun's stderr does not name the dead agent (${named}):\n${output}`);
  assertJobClean(jobId);
}
