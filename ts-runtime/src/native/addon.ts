import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { FfError } from '../errors';
import { REPO_ROOT } from '../util/repo-root';
import { parseHostProbe, type HostProbe } from './host-probe-report';

export type { HostProbe } from './host-probe-report';

/** Where native/addon/CMakeLists.txt puts the addon. */
export const ADDON_PATH = path.join(REPO_ROOT, 'build', 'Release', 'freeflow.node');

/** The addon's raw interface (native/addon/addon.cc); its results are validated before use. */
interface NativeAddon {
  probe(sharedDir: string): unknown;
  parsePathTable(text: string): unknown;
  segmentBytes(ringSize: number, rings: number): number;
  planeDecide(choice: string, a: PlaneHostCaps, b: PlaneHostCaps, agentsReachEachOther: boolean): unknown;
}

/**
 * UCX's library constructor reads these once, when the addon loads. By default it takes over SIGSEGV,
 * SIGBUS, SIGILL and SIGFPE (Node's WebAssembly bounds checks rely on its own SIGSEGV handler: with
 * UCX's, an out-of-bounds access kills the process instead of throwing) and SIGHUP (a debugger hook),
 * and logs to stdout, which belongs to the program. Its memory hooks (libucm patches malloc, mmap and
 * brk to track memory for RDMA registration caches) race with Node's own threads: with them, about one
 * probe process in 130 died of heap corruption at exit; with them off, none in 900. The probe registers
 * no memory, so it needs none of them.
 */
const UCX_SETTINGS_FOR_NODE: Readonly<Record<string, string>> = {
  UCX_HANDLE_ERRORS: 'none',
  UCX_DEBUG_SIGNO: '0',
  UCX_LOG_FILE: 'stderr',
  UCX_MEM_EVENTS: 'no',
  UCX_MEM_MALLOC_HOOKS: 'no',
  UCX_MEM_MALLOC_RELOC: 'no',
  UCX_MEM_MMAP_HOOK_MODE: 'none',
  UCX_MEM_DYNAMIC_MMAP_THRESH: 'no',
};

const loaded = new Map<string, NativeAddon>();

/** Loads the addon once per path; exported with a path parameter so tests can check the failures. */
export function loadAddon(addonPath: string = ADDON_PATH): NativeAddon {
  const cached = loaded.get(addonPath);
  if (cached !== undefined) return cached;
  if (!existsSync(addonPath)) {
    throw new FfError('ADDON_NOT_BUILT', `the native addon is not built: ${addonPath} does not exist`, {
      hint: 'run npm run build',
    });
  }
  let addon: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a .node file at a path known only at run time loads through require
    addon = withEnvironment(UCX_SETTINGS_FOR_NODE, () => require(addonPath) as unknown);
  } catch (error) {
    throw new FfError('ADDON_FAILED', `could not load the native addon ${addonPath}: ${messageOf(error)}`, {
      hint: 'rebuild it with npm run build (it needs the UCX and libibverbs libraries that scripts/setup.sh installs)',
      cause: error,
    });
  }
  const candidate = addon as Partial<NativeAddon> | null;
  const functions = ['probe', 'segmentBytes', 'planeDecide', 'parsePathTable'] as const;
  if (!functions.every((name) => typeof candidate?.[name] === 'function')) {
    throw new FfError('ADDON_FAILED', `${addonPath} is not the freeflow addon: it lacks one of ${functions.map((name) => `${name}()`).join(', ')}`, {
      hint: 'run npm run build',
    });
  }
  loaded.set(addonPath, addon as NativeAddon);
  return addon as NativeAddon;
}

/**
 * Probes this host as this process sees it (network namespace, CPU affinity). `sharedDir` must be an
 * absolute path to an existing directory. Blocks for a few milliseconds (UCX opens each memory domain).
 */
export function probe(sharedDir: string): HostProbe {
  const addon = loadAddon();
  let raw: unknown;
  try {
    raw = addon.probe(sharedDir);
  } catch (error) {
    const status = (error as { status?: unknown } | null)?.status;
    const statusName = typeof status === 'string' ? status : undefined;
    throw new FfError('ADDON_FAILED', `probing this host failed: ${messageOf(error)}`, {
      hint: hintFor(statusName),
      notes: statusName === undefined ? [] : [statusName],
      cause: error,
    });
  }
  return parseHostProbe(raw, 'the native addon', 'ADDON_FAILED');
}

/**
 * Shared memory of one rank's segment once `rings` rings (one per local peer that sends to it) of
 * `ringSize` bytes have been written through: the native core's formula (docs/btl.md).
 */
export function segmentBytes(ringSize: number, rings: number): number {
  return loadAddon().segmentBytes(ringSize, rings);
}

/** What one host reports for the inter-host plane policy (the core's ff_host_caps_t). */
export interface PlaneHostCaps {
  /** Its ffagent answered and serves this job. */
  readonly agentReachable: boolean;
  /** It has an RDMA port in state ACTIVE. */
  readonly rdmaActive: boolean;
}

export const PLANE_CHOICES = ['auto', 'handoff', 'router', 'tcp'] as const;
export type PlaneChoice = (typeof PLANE_CHOICES)[number];

const planeDecisionSchema = z.strictObject({
  plane: z.enum(['handoff', 'router', 'tcp']),
  /** The core's stable name, e.g. FF_PLANE_REASON_NO_COMMON_RDMA. */
  reason: z.string().regex(/^FF_PLANE_REASON_[A-Z_]+$/),
  /** A sentence for people. */
  description: z.string().min(1),
});
export type PlaneDecision = z.infer<typeof planeDecisionSchema>;

/**
 * The inter-host data plane of one pair of hosts: the core's ff_plane_decide_pair (native/src/agent_policy.c),
 * so the policy exists once. Symmetric in `a` and `b`. `agentsReachEachOther`: the two agents completed
 * their handshake with each other before the plan (both ways); false gives tcp for what they would carry.
 */
export function planeDecide(choice: PlaneChoice, a: PlaneHostCaps, b: PlaneHostCaps, agentsReachEachOther = true): PlaneDecision {
  const raw = loadAddon().planeDecide(
    choice,
    { agentReachable: a.agentReachable, rdmaActive: a.rdmaActive },
    { agentReachable: b.agentReachable, rdmaActive: b.rdmaActive },
    agentsReachEachOther,
  );
  const result = planeDecisionSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new FfError('ADDON_FAILED', `the native addon returned a malformed plane decision:\n${z.prettifyError(result.error)}`, {
    hint: 'the addon and the TypeScript runtime are out of step: run npm run build',
  });
}

/** Statuses that mean the caller passed a wrong shared directory (native/probe/include/freeflow_probe.h). */
const SHARED_DIR_STATUSES = new Set([
  'FF_PROBE_ERR_INVALID_ARGUMENT',
  'FF_PROBE_ERR_SHARED_DIR_NOT_FOUND',
  'FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY',
  'FF_PROBE_ERR_SHARED_DIR_ACCESS',
]);

function hintFor(status: string | undefined): string {
  if (status === undefined) return "call probe() with the host's shared directory as an absolute path string";
  if (SHARED_DIR_STATUSES.has(status)) return "pass the host's shared directory: an existing directory, as an absolute path";
  return 'check UCX with `ucx_info -d` and RDMA devices with `ibv_devinfo`';
}

function withEnvironment<T>(settings: Readonly<Record<string, string>>, action: () => T): T {
  const saved = Object.keys(settings).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, settings);
  try {
    return action();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
