import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { ffrunArgs, type RunFlags } from './ffrun-args';
import { FfrunProcess, waitFor } from './ffrun';
import { assertJobClean, processesMatching } from './leftovers';

/** Bytes a link of a host namespace has sent and received. */
function hostLinkBytes(netns: string, link: string): number {
  const [stats] = JSON.parse(execFileSync('ip', ['-n', netns, '-s', '-j', 'link', 'show', link], { encoding: 'utf8' }));
  return stats.stats64.tx.bytes + stats.stats64.rx.bytes;
}

/**
 * Bytes a link of a host of ffrun's running job has carried. A job that ended has its cluster torn down
 * (its links gone first): that fails here with ffrun's output, not with `ip`'s "does not exist".
 */
export function jobLinkBytes(ffrun: FfrunProcess, netns: string, link: string): number {
  assert.is(ffrun.child.exitCode, null, `the job ended early:\n${ffrun.stderr}`);
  try {
    return hostLinkBytes(netns, link);
  } catch (error) {
    throw new Error(`reading ${link} of ${netns}: ${(error as Error).message}\nffrun so far:\n${ffrun.stderr}`, { cause: error });
  }
}

/**
 * Waits until both ranks of a job of startStreamingAllpairs run. The ranks are the processes whose argv[0]
 * is the program: ffrun's and mpirun's command lines name it too, and counting those saw "2" before the
 * ranks started or after they ended.
 */
export async function waitForStreamingRanks(iterations: number): Promise<void> {
  const rank = new RegExp(`^\\S*/ffcheck_allpairs --iterations ${iterations} `);
  await waitFor('both ranks to run', () => processesMatching(rank).length === 2);
}

/**
 * A job of 2 ranks on 2 hosts that streams 4 MiB messages across them for minutes: long enough to
 * watch its links and fault it mid-job. `iterations` marks its ranks' command lines (other sessions on
 * this machine run similar jobs, so each test picks a count no other uses).
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
  assert.ok(result.code !== 0, `ffrun exited 0 after its agent was killed:\n${result.stderr}`);
  assert.ok(seconds < 10, `the job took ${seconds} s to end after the agent died`);
  assert.match(result.stderr, named);
  assertJobClean(jobId);
}
