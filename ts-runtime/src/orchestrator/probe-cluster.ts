import { capabilitiesOf, type HostCapabilities } from '../native/capabilities';
import { probeHost } from '../native/probe-in-netns';
import type { ExecOptions, ExecResult } from '../util/exec';

interface ProbeTarget {
  readonly sharedDir: string;
}

export interface ProbeCluster<H extends ProbeTarget> {
  readonly hosts: readonly H[];
  execInHost(host: H, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

/**
 * Probes every host in parallel, each inside its own network namespace (UCX sees that namespace's
 * devices), and returns the capabilities the orchestrator records, in host order.
 */
export function probeHosts<H extends ProbeTarget>(cluster: ProbeCluster<H>): Promise<HostCapabilities[]> {
  return Promise.all(
    cluster.hosts.map(async (host) => capabilitiesOf(await probeHost((argv, options) => cluster.execInHost(host, argv, options), host.sharedDir))),
  );
}
