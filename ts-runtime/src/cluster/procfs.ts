import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Process facts from /proc. A pid plus its start time names one process for good (pids get reused). */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
}

function readStat(pid: number): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: fields start after the last ')'.
  return text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

/** Field 22 of /proc/<pid>/stat (clock ticks since boot), or undefined when there is no such process. */
export function readStartTime(pid: number): string | undefined {
  return readStat(pid)?.[19];
}

export function identify(pid: number): ProcessIdentity | undefined {
  const startTime = readStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True when that very process still runs (zombies count as gone: they hold no namespaces any more). */
export function isRunning(process: ProcessIdentity): boolean {
  const fields = readStat(process.pid);
  if (fields === undefined) return false;
  const state = fields[0];
  return state !== 'Z' && state !== 'X' && fields[19] === process.startTime;
}

/** Inode of a named network namespace (what /proc/<pid>/ns/net links to), or undefined if it is gone. */
export function netnsInode(name: string): number | undefined {
  try {
    return fs.statSync(`/run/netns/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** Every process whose network namespace is one of `inodes`. */
export function processesInNetns(inodes: ReadonlySet<number>): ProcessIdentity[] {
  if (inodes.size === 0) return [];
  const found: ProcessIdentity[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue; // exited while we looked, or a kernel thread
    }
    const inode = Number(/^net:\[(\d+)\]$/.exec(link)?.[1]);
    if (!inodes.has(inode)) continue;
    const identity = identify(Number(entry));
    if (identity !== undefined) found.push(identity);
  }
  return found;
}

/** SIGKILLs the processes and waits until they are gone; returns those still running at the deadline. */
export async function killAndWait(processes: readonly ProcessIdentity[], timeoutMs: number): Promise<ProcessIdentity[]> {
  for (const target of processes) {
    if (!isRunning(target)) continue;
    try {
      process.kill(target.pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  let running = processes.filter(isRunning);
  while (running.length > 0 && Date.now() < deadline) {
    await sleep(5);
    running = running.filter(isRunning);
  }
  return running;
}
