import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as assert from 'uvu/assert';
import { exec } from '#runtime/util/exec';
import { jobNetnsPrefix, jobStateDir } from '#runtime/cluster/layout';
import { identify, isRunning, type ProcessIdentity } from '#runtime/cluster/procfs';
import { inJobContainerCgroup } from '#runtime/cluster/container';
import { jobCgroupDirs, listJobNetns, mountsBelow } from '#runtime/cluster/teardown';

/** Helpers shared by the cluster tests (real namespaces; they need root). */

/** A fresh job id; the `zt` prefix marks test jobs in `ip netns list`. */
export function testJobId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 'zt' + [...randomBytes(4)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** Pids of processes whose command line names the job (runc and the agent do) or that run in a cgroup of its containers (the inits and everything runc exec started). */
export function processesNamingJob(jobId: string): number[] {
  const marker = jobNetnsPrefix(jobId);
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) return [Number(entry)];
        // A killed init is re-parented to the machine's pid 1 and may linger as a zombie still listed in
        // its (already removed) cgroup: it holds nothing any more.
        const identity = identify(Number(entry));
        if (identity === undefined || !isRunning(identity)) return [];
        return inJobContainerCgroup(fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8'), jobId) ? [Number(entry)] : [];
      } catch {
        return [];
      }
    });
}

/** Asserts that nothing of the job is left: namespaces, mounts, processes, state dir. */
export function assertJobGone(jobId: string, inits: readonly ProcessIdentity[] = []): void {
  assert.equal(listJobNetns(jobId), [], 'network namespaces left');
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.equal(mountsBelow(jobStateDir(jobId)), [], 'mounts left below the state dir');
  assert.not.ok(mountinfo.includes(`freeflow-${jobId}-`), 'a shared tmpfs of the job is still mounted');
  assert.equal(inits.filter(isRunning), [], 'container inits still running');
  assert.equal(processesNamingJob(jobId), [], 'processes of the job still running');
  assert.not.ok(fs.existsSync(jobStateDir(jobId)), 'state dir left');
  assert.equal(jobCgroupDirs(jobId), [], 'cgroups of its containers left');
}

/** Names of the links in the root network namespace. */
export async function rootLinkNames(): Promise<string[]> {
  const { stdout } = await exec('ip', ['-o', 'link', 'show']);
  return stdout.split('\n').flatMap((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? []);
}

/** A bash snippet that connects to ip:port (retrying while the listener starts) and prints what it gets. */
export function tcpClientScript(ip: string, port: number): string {
  return `for try in $(seq 100); do if reply=$({ cat </dev/tcp/${ip}/${port}; } 2>/dev/null); then echo "$reply"; exit 0; fi; sleep 0.05; done; exit 1`;
}

/**
 * A node one-liner that accepts one TCP connection on port, answers with its hostname and exits; it
 * gives up (exit 1) after 10 s, so a broken network fails the test instead of hanging it.
 */
export function tcpListenerArgv(port: number): string[] {
  return [
    'node',
    '-e',
    `const server = require('net').createServer((socket) => { socket.end(require('os').hostname() + '\\n'); server.close(); });
     server.listen(${port}); setTimeout(() => process.exit(1), 10000).unref();`,
  ];
}

/** Runs a listener and a client at once and returns the client's output; fails if either fails. */
export async function tcpExchange(listen: Promise<unknown>, connect: Promise<{ stdout: string }>): Promise<string> {
  const [, reply] = await Promise.all([listen, connect]);
  return reply.stdout;
}
