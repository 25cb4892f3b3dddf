/**
 * Start-up benchmark of the local backend (issue 11: "8 hosts x 4 containers ready in under 3 s"): how
 * long createLocalCluster takes until hosts, overlay, runc containers and agents are up, as ffrun's run
 * command asks for them (the repository as a read-only volume, one ffagent per host), and how long the
 * teardown takes. Shapes are interleaved round by round so that load from other users of the machine
 * hits them alike; medians are printed with the time each phase started (from the set-up's progress
 * steps). Needs root and a built tree (scripts/setup.sh).
 *
 *   node dist/bench/startup/startup.js [--rounds N] [--shapes 8x4,2x2] [--json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createLocalCluster } from '#runtime/cluster/index';
import { reapStaleJobs } from '#runtime/cluster/reap';
import { REPO_ROOT } from '#runtime/util/repo-root';
import { randomBytes } from 'node:crypto';

interface Shape {
  readonly hosts: number;
  readonly containersPerHost: number;
}

interface Sample {
  readonly readyMs: number;
  /** CPU time of ffrun and every process it waited for (ip, runc, mount ...) during set-up: what load cannot stretch. */
  readonly readyCpuMs: number;
  /** The part of readyCpuMs spent by ffrun's own process (Node), the rest is in its children. */
  readonly ownCpuMs: number;
  /**
   * CPU time spent before ready by processes ffrun does not wait for: each container's init (runc init's
   * work inside the container before it execs ffrun-init) and each ffagent (with the `ip netns exec` it
   * replaced). Together with readyCpuMs, everything the set-up cost.
   */
  readonly detachedCpuMs: number;
  readonly teardownMs: number;
  /** ms from the start at which each phase (first step of its kind) began. */
  readonly phases: Readonly<Record<string, number>>;
}

/** The phase a set-up progress step belongs to (steps of one kind run in parallel across hosts). */
function phaseOf(step: string): string {
  if (step.endsWith(': network and init')) return 'containers';
  if (step.endsWith(': shared directory') || step.endsWith(': network') || step.endsWith('VXLAN flooding entries')) return 'hosts';
  if (step.startsWith('cluster ') && step.endsWith(' ready')) return 'ready';
  return step;
}

function jobId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 'zb' + [...randomBytes(4)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** utime + stime of this process and of its waited-for children (/proc/self/stat fields 14-17), in ms. */
function cpuMs(): number {
  const fields = fs
    .readFileSync('/proc/self/stat', 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // after the command field, utime is field 14 of stat(5), i.e. index 11 here
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return (ticks * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** utime + stime of one process (ms), 0 when it is gone. */
function processCpuMs(pid: number): number {
  try {
    const fields = fs
      .readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

async function once(shape: Shape): Promise<Sample> {
  const phases: Record<string, number> = {};
  const cpuStart = cpuMs();
  const ownStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - start) / 1e6;
  const cluster = await createLocalCluster(
    { jobId: jobId(), hosts: shape.hosts, containersPerHost: shape.containersPerHost, volumes: [], readOnlyVolumes: [REPO_ROOT], agents: shape.hosts > 1 },
    (step) => {
      phases[phaseOf(step)] ??= elapsed();
    },
  );
  const readyMs = elapsed();
  const readyCpuMs = cpuMs() - cpuStart;
  const own = process.cpuUsage(ownStart);
  const ownCpuMs = (own.user + own.system) / 1000;
  const detached = [...cluster.containers.map((container) => container.initPid), ...cluster.agents.map((agent) => agent.pid)];
  const detachedCpuMs = detached.reduce((sum, pid) => sum + processCpuMs(pid), 0);
  const teardownStart = elapsed();
  await cluster.destroy();
  return { readyMs, readyCpuMs, ownCpuMs, detachedCpuMs, teardownMs: elapsed() - teardownStart, phases };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function parseArgs(argv: readonly string[]): { rounds: number; shapes: Shape[]; json: boolean } {
  let rounds = 5;
  let shapes: Shape[] = [
    { hosts: 8, containersPerHost: 4 },
    { hosts: 2, containersPerHost: 2 },
  ];
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--rounds' && /^[1-9]\d*$/.test(argv[i + 1] ?? '')) rounds = Number(argv[++i]);
    else if (arg === '--shapes' && /^\d+x\d+(,\d+x\d+)*$/.test(argv[i + 1] ?? '')) {
      shapes = argv[++i]!.split(',').map((text) => {
        const [hosts, containersPerHost] = text.split('x').map(Number);
        return { hosts: hosts!, containersPerHost: containersPerHost! };
      });
    } else throw new Error(`unknown argument ${arg ?? ''}: use [--rounds N] [--shapes HxC,...] [--json]`);
  }
  return { rounds, shapes, json };
}

async function main(): Promise<void> {
  const { rounds, shapes, json } = parseArgs(process.argv.slice(2));
  await reapStaleJobs();
  const samples = new Map<string, Sample[]>(shapes.map((shape) => [`${shape.hosts}x${shape.containersPerHost}`, []]));
  for (let round = 0; round < rounds; round++) {
    for (const shape of shapes) {
      const key = `${shape.hosts}x${shape.containersPerHost}`;
      const sample = await once(shape);
      samples.get(key)!.push(sample);
      process.stderr.write(
        `round ${round + 1}/${rounds} ${key}: ready ${sample.readyMs.toFixed(0)} ms (cpu ${sample.readyCpuMs.toFixed(0)} ms, ffrun itself ${sample.ownCpuMs.toFixed(0)}, + ${sample.detachedCpuMs.toFixed(0)} ms in inits and agents), teardown ${sample.teardownMs.toFixed(0)} ms, load ${os.loadavg()[0]!.toFixed(1)}\n`,
      );
    }
  }
  const summary = [...samples].map(([shape, list]) => {
    const phaseNames = Object.keys(list[0]!.phases);
    return {
      shape,
      rounds: list.length,
      readyMedianMs: Math.round(median(list.map((s) => s.readyMs))),
      readyMs: list.map((s) => Math.round(s.readyMs)),
      readyCpuMedianMs: Math.round(median(list.map((s) => s.readyCpuMs))),
      ownCpuMedianMs: Math.round(median(list.map((s) => s.ownCpuMs))),
      detachedCpuMedianMs: Math.round(median(list.map((s) => s.detachedCpuMs))),
      teardownMedianMs: Math.round(median(list.map((s) => s.teardownMs))),
      phaseStartMedianMs: Object.fromEntries(phaseNames.map((name) => [name, Math.round(median(list.map((s) => s.phases[name] ?? NaN)))])),
    };
  });
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  if (json) {
    process.stdout.write(`${JSON.stringify({ cpu, cpus: os.cpus().length, summary }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${cpu}, ${os.cpus().length} CPUs; ${rounds} interleaved rounds\n`);
  for (const entry of summary) {
    process.stdout.write(
      `${entry.shape}: ready median ${entry.readyMedianMs} ms (${entry.readyMs.join(', ')}), CPU time median ${entry.readyCpuMedianMs} ms (ffrun itself ${entry.ownCpuMedianMs} ms) + ${entry.detachedCpuMedianMs} ms in inits and agents, teardown median ${entry.teardownMedianMs} ms\n`,
    );
    process.stdout.write(
      `  phase starts (median ms): ${Object.entries(entry.phaseStartMedianMs)
        .map(([name, ms]) => `${name} ${ms}`)
        .join(', ')}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
