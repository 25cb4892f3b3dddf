import { z } from 'zod';
import { FfError, type FfErrorCode } from '../errors';

/**
 * What the native probe reports about one host, as the process that ran it sees it (its network
 * namespace's interfaces, its CPU affinity). Produced by the addon's probe() (native/addon/addon.cc) and
 * carried as JSON from probe-in-netns.js; validated here in both cases.
 */
const nameSchema = z.string().min(1);
const byteCountSchema = z.number().int().nonnegative();

const ucxTransportSchema = z.strictObject({
  component: nameSchema,
  memoryDomain: nameSchema,
  transport: nameSchema,
  device: nameSchema,
  deviceType: z.enum(['network', 'intra-node', 'accelerator', 'loopback', 'unknown']),
});

const rdmaPortSchema = z.strictObject({
  number: z.number().int().positive(),
  state: z.enum(['active', 'down', 'init', 'armed', 'active-defer', 'nop', 'unknown']),
  linkLayer: z.enum(['infiniband', 'ethernet', 'unspecified']),
});

const rdmaDeviceSchema = z.strictObject({
  name: nameSchema,
  nodeGuid: z.string().regex(/^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/),
  nodeType: nameSchema,
  transport: nameSchema,
  ports: z.array(rdmaPortSchema),
});

export const hostProbeSchema = z.strictObject({
  ucx: z.strictObject({ version: nameSchema, transports: z.array(ucxTransportSchema) }),
  rdma: z.strictObject({ devices: z.array(rdmaDeviceSchema) }),
  cpus: z.strictObject({
    configured: z.number().int().positive(),
    online: z.number().int().positive(),
    usable: z.number().int().positive(),
  }),
  sharedDir: z.strictObject({
    path: z.string().startsWith('/'),
    /** Kernel name of the filesystem type ("tmpfs", "ext2/3/4", "overlay", ...), "unknown" if not known. */
    fs: nameSchema,
    fsMagic: z.number().int().nonnegative(),
    totalBytes: byteCountSchema,
    freeBytes: byteCountSchema,
    /** What an unprivileged process may still write. */
    availableBytes: byteCountSchema,
  }),
});

export type HostProbe = z.infer<typeof hostProbeSchema>;
export type UcxTransport = HostProbe['ucx']['transports'][number];
export type RdmaDevice = HostProbe['rdma']['devices'][number];

/** Validates a probe from `origin` (named in the error); a mismatch means the addon and this code disagree. */
export function parseHostProbe(raw: unknown, origin: string, code: FfErrorCode): HostProbe {
  const result = hostProbeSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new FfError(code, `${origin} returned a malformed host probe:\n${z.prettifyError(result.error)}`, {
    hint: 'the addon and the TypeScript runtime are out of step: run npm run build',
  });
}
