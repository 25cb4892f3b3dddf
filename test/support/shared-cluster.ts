import { parseRunArgs } from '#runtime/cli/run/args';
import { jobReportJson } from '#runtime/cli/run/json';
import { jobVolumes, runJobOnCluster, withProbedCluster, type ProbedCluster } from '#runtime/job/run-job';
import { stderrProgress } from '#runtime/job/progress';
import { jobFailure } from '#runtime/launcher/run-mpirun';
import { formatOutputLine } from '#runtime/launcher/rank-output';
import { placeRanks } from '#runtime/orchestrator/placement';
import { containerMtuOf, MTU, scratchRequest } from '#runtime/spec/schema';
import { resolveJobUser } from '#runtime/spec/user';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { waitFor, type FfrunResult } from './ffrun';
import { jobShmFiles, leftoversOf, processesInJobCgroups, processesMatching, shmEntries } from './leftovers';

/** A program given relative to the repository (ffrun's working directory here): it adds no volume of its own. */
const SHARED_PROGRAM = 'build/bin/ffcheck_allpairs';

/** What decides a cluster: jobs that agree on it can share one. */
export interface ClusterShape {
  readonly hosts: number;
  readonly containersPerHost: number;
  /** One ffagent per host: what ffrun starts for a multi-host job on network freeflow unless --inter-host tcp. */
  readonly agents: boolean;
  /** A job-wide scratch volume (--scratch), in MiB; absent: none. */
  readonly scratchMiB?: number;
}

/** The cluster `ffrun <args>` would build (only the shape options the end-to-end runs use). */
export function shapeOf(args: readonly string[]): ClusterShape {
  const { spec } = parseRunArgs(args);
  const agents = spec.cluster.hosts > 1 && spec.network === 'freeflow' && spec.interHost !== 'tcp';
  const scratch = scratchRequest(spec.scratch);
  if (scratch !== undefined && scratch.sizeMiB === undefined) throw new Error('a shared cluster needs a --scratch size');
  return { hosts: spec.cluster.hosts, containersPerHost: spec.cluster.containersPerHost, agents, ...(scratch ? { scratchMiB: scratch.sizeMiB! } : {}) };
}

export function shapeName(shape: ClusterShape): string {
  const scratch = shape.scratchMiB === undefined ? '' : `, ${shape.scratchMiB} MiB scratch`;
  return `${shape.hosts} host(s) x ${shape.containersPerHost} containers${shape.agents ? ' with ffagents' : ''}${scratch}`;
}

/**
 * One cluster for several jobs of a test file. Booting a cluster (namespaces, bridges, runc containers,
 * agents, probes) and tearing it down costs seconds per job, and jobs of one shape need not pay it each:
 * ffbench runs its jobs this way too. Each job runs through ffrun's own job functions (parseRunArgs,
 * runJobOnCluster with a fresh job key, jobReportJson), as `ffrun <args> --json` runs it once its cluster
 * exists, and its result looks like ffrun's: exit code (124 after the timeout), the `--json` document on
 * stdout, progress, rank lines (`[rank N] ...`) and the error on stderr. After each job nothing it started
 * may be left in the cluster (jobLeftovers); after close() nothing of the cluster may be left on the machine.
 *
 * Jobs that need a cluster of their own (--user, --mtu, a fault injected into the cluster, ffrun's own
 * set-up and teardown) keep running through ffrun. Jobs with --scratch SIZE share its volume: each must
 * leave it as it found it (ffcheck_mpiio checks that it leaves no file).
 */
export class SharedCluster {
  private readonly release: () => void;
  private readonly whole: Promise<unknown>;
  /** Processes of the cluster itself (container inits, agents), there before any job ran. */
  private readonly ownPids: ReadonlySet<number>;

  private constructor(
    readonly shape: ClusterShape,
    readonly probed: ProbedCluster,
    private readonly shmBefore: Set<string>,
    release: () => void,
    whole: Promise<unknown>,
  ) {
    this.release = release;
    this.whole = whole;
    this.ownPids = new Set(this.jobProcesses().map((p) => p.pid));
  }

  get jobId(): string {
    return this.probed.cluster.jobId;
  }

  static async open(shape: ClusterShape): Promise<SharedCluster> {
    const shmBefore = shmEntries();
    // The cluster lives as long as withProbedCluster's work: a promise that close() settles.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let opened!: (probed: ProbedCluster) => void;
    const ready = new Promise<ProbedCluster>((resolve) => (opened = resolve));
    // As ffrun (runJob) builds it for a root job run from the repository with a program inside it.
    const { spec } = parseRunArgs(['-n', '1', '--', SHARED_PROGRAM]);
    const quiet = { step: <T>(_label: string, work: () => Promise<T>) => work(), note: () => {} };
    const whole = withProbedCluster(
      {
        hosts: shape.hosts,
        containersPerHost: shape.containersPerHost,
        ...jobVolumes(spec, REPO_ROOT),
        user: resolveJobUser(spec.user),
        agents: shape.agents,
        containerMtu: containerMtuOf(spec.cluster),
        underlayMtu: MTU.default,
        ...(shape.scratchMiB === undefined ? {} : { scratch: { sizeMiB: shape.scratchMiB } }),
      },
      { progress: quiet, interrupt: new AbortController().signal },
      async (probed) => {
        opened(probed);
        await released;
      },
    );
    const probed = await Promise.race([ready, whole.then(() => Promise.reject(new Error('the shared cluster ended before it was used')))]);
    return new SharedCluster(shape, probed, shmBefore, release, whole);
  }

  /** Runs `ffrun <args>` (run options, `--`, program) on this cluster; `--json` is implied. */
  async run(args: readonly string[]): Promise<FfrunResult> {
    const { spec } = parseRunArgs(args);
    const wanted = shapeOf(args);
    if (shapeName(wanted) !== shapeName(this.shape)) {
      throw new Error(`this job needs a cluster of ${shapeName(wanted)}, not ${shapeName(this.shape)}`);
    }
    if (spec.user !== undefined || spec.cluster.mtu !== undefined || spec.cluster.containerMtu !== undefined) {
      throw new Error('--user and MTUs shape the cluster: run this job through ffrun');
    }
    const volumes = jobVolumes(spec, REPO_ROOT);
    const sharedVolumes = jobVolumes(parseRunArgs(['-n', '1', '--', SHARED_PROGRAM]).spec, REPO_ROOT);
    if (JSON.stringify(volumes) !== JSON.stringify(sharedVolumes)) {
      throw new Error(
        `ffrun would mount ${JSON.stringify(volumes)} for ${spec.program.command}, the shared cluster has ${JSON.stringify(sharedVolumes)}: give the program relative to the repository`,
      );
    }
    let stderr = '';
    const write = (text: string) => void (stderr += text);
    const slots = placeRanks(spec.cluster, spec.ranks, spec.placement);
    const result = await runJobOnCluster(this.probed, spec, slots, {
      progress: stderrProgress(write),
      interrupt: new AbortController().signal,
      onPlan: () => {},
      // with --json every rank line goes to stderr
      onLine: (line) => write(`${formatOutputLine(line)}\n`),
    });
    let code = result.mpirun.exitCode;
    if (result.mpirun.timedOut) {
      code = 124;
      write(`error[JOB_TIMEOUT]: the job did not finish within ${spec.timeoutSeconds} s\n`);
    } else if (code !== 0) {
      const failure = jobFailure(result.mpirun);
      write(`error[${failure.code}]: ${failure.message}\n`);
    }
    const timings = { setupMs: 0, probeMs: 0, teardownMs: 0, totalMs: result.mpirun.durationMs };
    const document = jobReportJson({ spec, ...result, capabilities: this.probed.capabilities, timings });
    return { code, signal: null, stdout: JSON.stringify(document), stderr };
  }

  /**
   * What the last job left in the cluster: processes in its containers or naming the job that the
   * cluster did not have before (orted, ranks, rsh agents; waited for up to 10 s, as mpirun's children
   * may still be exiting), processes of `marker`, and /dev/shm files named for freeflow or the job created
   * since `shmBefore`. Empty means clean.
   */
  async jobLeftovers(options: { marker?: RegExp; shmBefore?: Set<string> } = {}): Promise<string[]> {
    const strays = () => this.jobProcesses().filter((p) => !this.ownPids.has(p.pid));
    const markerProcesses = () => (options.marker === undefined ? [] : processesMatching(options.marker));
    await waitFor("the job's processes to end", () => strays().length === 0 && markerProcesses().length === 0, 10_000).catch(() => {});
    const problems: string[] = [];
    const left = strays();
    if (left.length > 0) {
      problems.push(`processes in the cluster: ${left.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
      // Reported (this job fails); killed so that the next job on the cluster starts clean, as it would on a new cluster.
      for (const stray of left) {
        try {
          process.kill(stray.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    const marked = markerProcesses();
    if (marked.length > 0) problems.push(`program processes: ${marked.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
    if (options.shmBefore !== undefined) {
      const created = [...shmEntries()].filter((name) => !options.shmBefore!.has(name) && new RegExp(`ff-|freeflow|${this.jobId}`).test(name));
      if (created.length > 0) problems.push(`/dev/shm: ${created.join(', ')}`);
    }
    return problems;
  }

  /**
   * Tears the cluster down; returns what it left on the machine (empty means clean). /dev/shm is checked
   * for names of this cluster only: each job's window was checked for any freeflow name by jobLeftovers,
   * and over the cluster's whole life other sessions' plain mpiruns on this machine create such files.
   */
  async close(options: { marker?: RegExp } = {}): Promise<string[]> {
    this.release();
    await this.whole;
    return [...leftoversOf(this.jobId, options), ...jobShmFiles(this.jobId, this.shmBefore)];
  }

  private jobProcesses(): Array<{ pid: number; command: string }> {
    const found = processesInJobCgroups(this.jobId);
    for (const named of processesMatching(new RegExp(`ff-${this.jobId}|freeflow-jobs/${this.jobId}`))) {
      if (!found.some((p) => p.pid === named.pid)) found.push(named);
    }
    return found;
  }
}

/** `cases` grouped by the cluster their `ffrun` arguments need (shapeOf), in order of first appearance. */
export function groupByShape<T>(cases: readonly T[], argsOf: (item: T) => readonly string[]): Array<{ shape: ClusterShape; cases: T[] }> {
  const groups = new Map<string, { shape: ClusterShape; cases: T[] }>();
  for (const item of cases) {
    const shape = shapeOf(argsOf(item));
    const key = shapeName(shape);
    if (!groups.has(key)) groups.set(key, { shape, cases: [] });
    groups.get(key)!.cases.push(item);
  }
  return [...groups.values()];
}

/**
 * Cases grouped by the cluster they need, each group on one SharedCluster opened by its first case
 * (a failed boot fails every case of the group, each with the error) and closed by `closeAll`.
 */
export class SharedClusters {
  private readonly open = new Map<string, Promise<SharedCluster>>();

  for(shape: ClusterShape): Promise<SharedCluster> {
    const key = shapeName(shape);
    let cluster = this.open.get(key);
    if (cluster === undefined) {
      cluster = SharedCluster.open(shape);
      this.open.set(key, cluster);
    }
    return cluster;
  }

  /** Closes the cluster of `shape` (if one was opened); returns what it left. */
  async close(shape: ClusterShape, options: { marker?: RegExp } = {}): Promise<string[]> {
    const key = shapeName(shape);
    const cluster = this.open.get(key);
    if (cluster === undefined) return [];
    this.open.delete(key);
    return (await cluster).close(options);
  }
}
