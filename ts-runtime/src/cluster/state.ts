import * as fs from 'node:fs';
import * as path from 'node:path';
import { FfError } from '../errors';
import { JOBS_ROOT, jobStateDir } from './layout';
import { identify, type ProcessIdentity } from './procfs';

/**
 * The job's state directory records who owns the job and what it started, so that a later
 * `reapStaleJobs` can finish the teardown of an owner that was SIGKILLed:
 *   owner.pid    "<pid> <start time>" of the process that created the cluster
 *   containers   "<container name> <init pid> <init start time>" per line (also FFRUN_CONTAINER_MAP)
 * Network namespaces are found by their `ff-<job>-` prefix and mounts below the directory in mountinfo.
 */
const OWNER_FILE = 'owner.pid';
const CLAIM_PREFIX = '.claim-';

export interface ContainerRecord {
  readonly name: string;
  readonly init: ProcessIdentity;
}

function formatIdentity(identity: ProcessIdentity): string {
  return `${identity.pid} ${identity.startTime}`;
}

function parseIdentity(pid: string | undefined, startTime: string | undefined): ProcessIdentity | undefined {
  if (pid === undefined || startTime === undefined || !/^\d+$/.test(pid) || !/^\d+$/.test(startTime)) return undefined;
  return { pid: Number(pid), startTime };
}

/**
 * Creates the job's state directory with this process as owner, atomically (written under a temporary
 * name, then renamed), so that a concurrent reaper never sees a job directory without its owner.
 */
export function claimJobDir(jobId: string): string {
  const self = identify(process.pid);
  if (self === undefined) throw new FfError('INTERNAL', 'cannot read /proc/self/stat');
  fs.mkdirSync(JOBS_ROOT, { recursive: true, mode: 0o755 });
  const claim = path.join(JOBS_ROOT, `${CLAIM_PREFIX}${jobId}-${process.pid}`);
  fs.rmSync(claim, { recursive: true, force: true });
  // Only root may look into a job's state (the container map, bundles, hostfile).
  fs.mkdirSync(claim, { mode: 0o700 });
  fs.chmodSync(claim, 0o700);
  fs.writeFileSync(path.join(claim, OWNER_FILE), formatIdentity(self) + '\n', { mode: 0o600 });
  const stateDir = jobStateDir(jobId);
  try {
    fs.renameSync(claim, stateDir);
  } catch (error) {
    fs.rmSync(claim, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') {
      throw new FfError('CLUSTER_SETUP_FAILED', `job id ${jobId} is in use: ${stateDir} exists`, {
        hint: 'choose another job id; if a killed ffrun left it behind, run the stale-job reaper (reapStaleJobs)',
      });
    }
    throw error;
  }
  return stateDir;
}

/** The recorded owner, or undefined when the file is missing or unreadable (such a job has no live owner). */
export function readOwner(dir: string): ProcessIdentity | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const [pid, startTime] = text.trim().split(' ');
  return parseIdentity(pid, startTime);
}

export function recordContainer(mapFile: string, record: ContainerRecord): void {
  // 0600 root: ffrun-rsh refuses a map that anyone but root could have written.
  fs.appendFileSync(mapFile, `${record.name} ${formatIdentity(record.init)}\n`, { mode: 0o600 });
}

/**
 * Names a simulated host in the map ("host <name> <network namespace> <shared directory>"), so that the rsh agent can start
 * one orted per host in the host's network namespace (node-sharing launches). readContainerMap skips
 * these lines (they carry no init).
 */
export function recordHost(mapFile: string, host: { readonly name: string; readonly netns: string; readonly sharedDir: string }): void {
  fs.appendFileSync(mapFile, `host ${host.name} ${host.netns} ${host.sharedDir}\n`, { mode: 0o600 });
}

export function readContainerMap(mapFile: string): ContainerRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(mapFile, 'utf8');
  } catch {
    return [];
  }
  const records: ContainerRecord[] = [];
  for (const line of text.split('\n')) {
    const [name, pid, startTime] = line.split(' ');
    const init = parseIdentity(pid, startTime);
    if (name && init) records.push({ name, init });
  }
  return records;
}

/** Entries of JOBS_ROOT: job directories by job id, and claims (directories not yet renamed to a job id; abandoned if their owner died). */
export function listJobDirs(): { jobs: string[]; claims: string[] } {
  let entries: string[];
  try {
    entries = fs.readdirSync(JOBS_ROOT);
  } catch {
    return { jobs: [], claims: [] };
  }
  return {
    jobs: entries.filter((entry) => /^[a-z0-9]{6}$/.test(entry)),
    claims: entries.filter((entry) => entry.startsWith(CLAIM_PREFIX)).map((entry) => path.join(JOBS_ROOT, entry)),
  };
}
