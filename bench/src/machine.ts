import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { componentPathSetting } from '#runtime/launcher/mpirun-invocation';
import { BTL_DIR } from '#runtime/launcher/preflight';
import { exec } from '#runtime/util/exec';
import { REPO_ROOT } from '#runtime/util/repo-root';
import type { MachineRecord } from './raw';
import { describeShmMachine } from './shm-machine';

/** What is known before the cluster exists: everything but the links' MTUs and the load afterwards. */
export type MachineFacts = Omit<MachineRecord, 'mtus' | 'load'>;

/** Runs a command and returns its first output line, or null when it is missing or fails. */
async function firstLine(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string | null> {
  try {
    const { stdout, code } = await exec(command, args, { allowFailure: true, ...(env === undefined ? {} : { env }) });
    const line = stdout.split('\n').find((text) => text.trim() !== '');
    return code === 0 && line !== undefined ? line.trim() : null;
  } catch {
    return null;
  }
}

function cpuModel(): string {
  const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return match?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** btl_freeflow_ring_size as the BTL would use it (an OMPI_MCA_ setting in the environment, or 0: chosen from the L2). */
async function freeflowRingSize(): Promise<number | null> {
  const setting = componentPathSetting(BTL_DIR);
  try {
    const { stdout } = await exec('ompi_info', ['--param', 'btl', 'freeflow', '--level', '9', '--parsable'], {
      allowFailure: true,
      env: { ...process.env, [setting.name]: setting.value },
    });
    const match = /^mca:btl:freeflow:param:btl_freeflow_ring_size:value:(\d+)$/m.exec(stdout);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

export async function collectMachineFacts(): Promise<MachineFacts> {
  const [openMpi, ucx, netpipe, commit, ringSizeSetting, shm] = await Promise.all([
    firstLine('ompi_info', ['--version']),
    firstLine('ucx_info', ['-v']),
    firstLine('dpkg-query', ['-W', '-f', '${Version}\n', 'netpipe-openmpi']),
    firstLine('git', ['-C', REPO_ROOT, '--no-optional-locks', 'rev-parse', 'HEAD']),
    freeflowRingSize(),
    describeShmMachine(),
  ]);
  // 0 (the default) means chosen from the CPU's L2: record what was chosen
  const ringSizeBytes = ringSizeSetting === 0 ? (shm?.chosen.ringSize ?? null) : ringSizeSetting;
  return {
    hostname: os.hostname(),
    cpuModel: cpuModel(),
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    os: osName(),
    node: process.version,
    openMpi: openMpi ?? 'unknown',
    ucx: ucx?.replace(/^#\s*Version\s*/, '') ?? 'unknown',
    netpipe,
    freeflow: { commit, ringSizeBytes },
    shm,
  };
}

/** `ip -o link show` -> MTU by link name (`eth0@if12` is eth0). */
export function parseLinkMtus(text: string): Record<string, number> {
  const mtus: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^\d+:\s+([^:@\s]+)[^:]*:.*\bmtu (\d+)/.exec(line);
    if (match) mtus[match[1]!] = Number(match[2]);
  }
  return mtus;
}

/**
 * When other work competed for the CPUs. The 1-minute load average before the run says what else was
 * running; the benchmark's own two busy-polling ranks add up to about 2 during it, so only load beyond
 * the cores plus a half afterwards points at someone else.
 */
export function loadVerdict(before: readonly number[], after: readonly number[], cpus: number): { high: boolean; rule: string } {
  const beforeLimit = cpus / 2;
  const afterLimit = cpus + 0.5;
  return {
    high: (before[0] ?? 0) > beforeLimit || (after[0] ?? 0) > afterLimit,
    rule: `high when the 1-minute load average exceeded ${beforeLimit} before the run or ${afterLimit} after it (${cpus} CPUs; the run's own 2 ranks add about 2)`,
  };
}

export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = os.loadavg();
  return [one ?? 0, five ?? 0, fifteen ?? 0];
}
