import * as fs from 'node:fs';
import * as path from 'node:path';
import { SCRATCH_ENV, SCRATCH_PATH } from './scratch';

/**
 * The OCI bundle of one container (config.json for runc): what a default OCI runtime gives a container
 * (Docker's default capabilities for root and none for any other user, no new privileges, masked and
 * read-only /proc paths, runc's default /dev without host block devices, a read-only root) plus
 * freeflow's mounts: the machine's system directories read-only, the host's shared directory at
 * /run/freeflow, the job's volumes, a generated /etc/hosts. Pure data: `writeBundle` puts it on disk.
 */

/** Docker's default capability set (moby's oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** As `runc spec` generates them. */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
] as const;
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'] as const;

/** The machine's directories every container sees read-only (its "image"); symlinks (merged /usr) are mirrored as symlinks. */
export const SYSTEM_DIRS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'] as const;

/** Threads count against it; a rank of Open MPI with UCX runs a handful. */
export const PIDS_LIMIT = 4096;
/** JSON cannot carry 2^64-1 through a JS number: this marker is replaced in the text. */
const UNLIMITED_MARKER = '__FREEFLOW_RLIM_INFINITY__';
const RLIM_INFINITY = '18446744073709551615';

export interface ContainerUser {
  readonly uid: number;
  readonly gid: number;
}

export const ROOT_USER: ContainerUser = { uid: 0, gid: 0 };

export interface Volume {
  /** Absolute path, the same on the machine and in the container. */
  readonly path: string;
  readonly readOnly: boolean;
}

export interface BundleInputs {
  readonly name: string;
  readonly netnsPath: string;
  /** Program (absolute, visible in the container) run as pid 1: ffrun-init. */
  readonly init: string;
  readonly user: ContainerUser;
  readonly sharedDir: string;
  readonly shmSizeMiB: number | undefined;
  /** Mounted in order after the system directories; callers put parents before children. */
  readonly volumes: readonly Volume[];
  /** The job's scratch volume in the root mount namespace, bound at SCRATCH_PATH; undefined: none. */
  readonly scratchDir: string | undefined;
  /** Files in the bundle bound over /etc/hosts and /etc/hostname. */
  readonly hostsFile: string;
  readonly hostnameFile: string;
  /** Relative: runc places it below its own cgroup in every controller. */
  readonly cgroupsPath: string;
  /**
   * The container's own network namespace is configured by runc before the init starts, from an
   * `ip -batch` file (a createRuntime hook: a child of runc, not one more process ffrun forks for every
   * container); undefined for a host-network container.
   */
  readonly networkSetup: NetworkSetup | undefined;
}

export interface NetworkSetup {
  /** Absolute path of `ip`: hooks are not looked up on PATH. */
  readonly ip: string;
  readonly netns: string;
  readonly batchFile: string;
}

/** runc kills a hook that takes longer and fails the start. */
const NETWORK_HOOK_TIMEOUT_S = 10;

interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** How the machine's system directories look: real directories are bound, symlinks are mirrored. */
export interface SystemLayout {
  readonly rlimits: ReadonlyArray<{ readonly type: string; readonly hard: number | string }>;
  readonly binds: readonly string[];
  readonly symlinks: ReadonlyArray<{ readonly path: string; readonly target: string }>;
}

const LIMIT_NAMES: Readonly<Record<string, string>> = { 'Max open files': 'RLIMIT_NOFILE', 'Max locked memory': 'RLIMIT_MEMLOCK' };

/** This process's hard RLIMIT_NOFILE and RLIMIT_MEMLOCK, from /proc/self/limits. */
function hardLimits(): Array<{ type: string; hard: number | string }> {
  const limits: Array<{ type: string; hard: number | string }> = [];
  for (const line of fs.readFileSync('/proc/self/limits', 'utf8').split('\n')) {
    const match = /^(Max open files|Max locked memory)\s+\S+\s+(\S+)/.exec(line);
    if (!match) continue;
    const hard = match[2] === 'unlimited' ? UNLIMITED_MARKER : Number(match[2]);
    if (hard === UNLIMITED_MARKER || Number.isSafeInteger(hard)) limits.push({ type: LIMIT_NAMES[match[1]!]!, hard });
  }
  return limits;
}

export function inspectSystemDirs(): SystemLayout {
  const binds: string[] = [];
  const symlinks: Array<{ path: string; target: string }> = [];
  for (const dir of SYSTEM_DIRS) {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) symlinks.push({ path: dir, target: fs.readlinkSync(dir) });
    else if (stat.isDirectory()) binds.push(dir);
  }
  return { binds, symlinks, rlimits: hardLimits() };
}

function bind(source: string, destination: string, readOnly: boolean): Mount {
  // rro: recursively read-only (mount_setattr), so submounts of a bound directory are read-only too.
  return { destination, type: 'bind', source, options: ['rbind', readOnly ? 'rro' : 'rw', 'nosuid', 'nodev'] };
}

function tmpfs(destination: string, mode: string, sizeMiB?: number): Mount {
  return {
    destination,
    type: 'tmpfs',
    source: path.basename(destination),
    options: ['nosuid', 'nodev', `mode=${mode}`, ...(sizeMiB === undefined ? [] : [`size=${sizeMiB}m`])],
  };
}

export function ociConfig(inputs: BundleInputs, system: SystemLayout): object {
  const isRoot = inputs.user.uid === 0;
  const capabilities = isRoot ? [...DEFAULT_CAPABILITIES] : [];
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
    tmpfs('/dev/shm', '1777', inputs.shmSizeMiB),
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ...system.binds.map((dir) => bind(dir, dir, true)),
    bind(inputs.hostsFile, '/etc/hosts', true),
    bind(inputs.hostnameFile, '/etc/hostname', true),
    tmpfs('/run', '755'),
    tmpfs('/tmp', '1777'),
    // The user's home, private and writable as in any container image (programs keep caches there).
    ...(isRoot ? [tmpfs('/root', '700')] : []),
    bind(inputs.sharedDir, '/run/freeflow', false),
    ...inputs.volumes.map((volume) => bind(volume.path, volume.path, volume.readOnly)),
    // Last: a volume at /scratch cannot hide the job's scratch.
    ...(inputs.scratchDir === undefined ? [] : [bind(inputs.scratchDir, SCRATCH_PATH, false)]),
  ];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: inputs.user.uid, gid: inputs.user.gid },
      args: [inputs.init],
      // runc exec (ffrun-rsh, so orted and the ranks) starts from this environment too.
      env: [
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        `HOME=${isRoot ? '/root' : '/tmp'}`,
        'LANG=C.UTF-8',
        ...(inputs.scratchDir === undefined ? [] : [`${SCRATCH_ENV}=${SCRATCH_PATH}`]),
      ],
      cwd: '/',
      capabilities: { bounding: capabilities, effective: capabilities, permitted: capabilities, inheritable: [], ambient: [] },
      // As high as this machine allows (raising a hard limit needs CAP_SYS_RESOURCE, which may be missing):
      // ranks open many files and sockets, and shared memory and UCX lock buffers.
      rlimits: system.rlimits.map(({ type, hard }) => ({ type, hard, soft: hard })),
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: inputs.name,
    ...(inputs.networkSetup === undefined
      ? {}
      : {
          hooks: {
            createRuntime: [
              {
                path: inputs.networkSetup.ip,
                args: ['ip', '-n', inputs.networkSetup.netns, '-batch', inputs.networkSetup.batchFile],
                timeout: NETWORK_HOOK_TIMEOUT_S,
              },
            ],
          },
        }),
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: inputs.netnsPath }],
      cgroupsPath: inputs.cgroupsPath,
      resources: { pids: { limit: PIDS_LIMIT } },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

export function configText(config: object): string {
  return JSON.stringify(config, null, 1).split(`"${UNLIMITED_MARKER}"`).join(RLIM_INFINITY);
}

/** `127.0.0.1 localhost` and every endpoint of the job by name. */
export function hostsFileText(entries: ReadonlyArray<{ readonly name: string; readonly ip: string }>): string {
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...entries.map((entry) => `${entry.ip}\t${entry.name}`)].join('\n') + '\n';
}

/**
 * Writes the bundle (mode 0700, root): config.json, hosts, hostname, and a rootfs holding only the mount
 * points' parents and the symlinks of a merged /usr (runc creates the mount points themselves).
 */
export function writeBundle(bundleDir: string, inputs: BundleInputs, system: SystemLayout, hostsText: string): void {
  fs.mkdirSync(path.join(bundleDir, 'rootfs'), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(bundleDir, 'rootfs'), 0o755);
  for (const link of system.symlinks) fs.symlinkSync(link.target, path.join(bundleDir, 'rootfs', link.path));
  fs.writeFileSync(inputs.hostsFile, hostsText, { mode: 0o644 });
  fs.writeFileSync(inputs.hostnameFile, `${inputs.name}\n`, { mode: 0o644 });
  fs.writeFileSync(path.join(bundleDir, 'config.json'), configText(ociConfig(inputs, system)), { mode: 0o600 });
}
