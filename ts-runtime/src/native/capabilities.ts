import { formatBytes } from '../util/units';
import type { HostProbe } from './host-probe-report';

/** What the orchestrator needs from a host's probe. */
export interface HostCapabilities {
  /** An RDMA port is active: an RDMA inter-host path is possible. Without one the inter-host path is TCP. */
  readonly rdma: boolean;
  /** UCX transport names (UCX_TLS values) with at least one device, in UCX's order, each once. */
  readonly ucxTransports: readonly string[];
  /** CPUs this host's processes may run on (the probe's affinity mask). */
  readonly cpus: number;
  /** The shared directory's filesystem type and the bytes still available in it. */
  readonly sharedDir: { readonly fs: string; readonly bytes: number };
}

export function capabilitiesOf(probe: HostProbe): HostCapabilities {
  return {
    rdma: probe.rdma.devices.some((device) => device.ports.some((port) => port.state === 'active')),
    ucxTransports: [...new Set(probe.ucx.transports.map((t) => t.transport))],
    cpus: probe.cpus.usable,
    sharedDir: { fs: probe.sharedDir.fs, bytes: probe.sharedDir.availableBytes },
  };
}

/** One line for people: "2 CPUs, shared dir tmpfs with 23.5 GiB free, UCX self tcp sysv posix cma, no active RDMA port". */
export function describeCapabilities(capabilities: HostCapabilities): string {
  const cpus = `${capabilities.cpus} CPU${capabilities.cpus === 1 ? '' : 's'}`;
  const sharedDir = `shared dir ${capabilities.sharedDir.fs} with ${formatBytes(capabilities.sharedDir.bytes)} free`;
  const ucx = capabilities.ucxTransports.length === 0 ? 'no UCX transport' : `UCX ${capabilities.ucxTransports.join(' ')}`;
  const rdma = capabilities.rdma ? 'RDMA port active' : 'no active RDMA port';
  return `${cpus}, ${sharedDir}, ${ucx}, ${rdma}`;
}
