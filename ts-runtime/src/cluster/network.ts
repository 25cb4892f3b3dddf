import { exec } from '../util/exec';
import type { ClusterLayout, HostLayout } from './layout';

/**
 * The job's network, as `ip -batch` scripts (one process per namespace keeps set-up fast). Links are
 * created inside the job's namespaces (`ip -n`, peers moved with `netns`), never in the root namespace.
 */
const VXLAN_ID = 42;
const VXLAN_PORT = 4789;
/** Underlay port names inside the fabric's bridge and inside each host. */
const FABRIC_PORT = (host: HostLayout) => `h${host.index}`;
const HOST_UNDERLAY_LINK = 'ul0';
const LAUNCHER_PORT = 'launcher';

export interface Mtus {
  readonly containerMtu: number;
  readonly underlayMtu: number;
}

function vethInto(localName: string, peerNetns: string, peerName: string, mtu: number): string {
  return `link add ${localName} mtu ${mtu} type veth peer name ${peerName} mtu ${mtu} netns ${peerNetns}`;
}

export function createNetnsBatch(names: readonly string[]): string[] {
  return names.map((name) => `netns add ${name}`);
}

export function deleteNetnsBatch(names: readonly string[]): string[] {
  return names.map((name) => `netns del ${name}`);
}

/** The fabric: one bridge and, per host, a veth whose other end becomes the host's underlay link. */
export function fabricBatch(layout: ClusterLayout, mtus: Mtus): string[] {
  const lines = ['link set lo up', 'link add br0 type bridge', 'link set br0 up'];
  for (const host of layout.hosts) {
    lines.push(vethInto(FABRIC_PORT(host), host.netns, HOST_UNDERLAY_LINK, mtus.underlayMtu));
    lines.push(`link set ${FABRIC_PORT(host)} master br0 up`);
  }
  return lines;
}

/** A host: underlay address, bridge, VXLAN port, and a bridge port per container (and the launcher on h0). */
export function hostBatch(layout: ClusterLayout, host: HostLayout, mtus: Mtus): string[] {
  const lines = [
    'link set lo up',
    `addr add ${host.underlayCidr} dev ${HOST_UNDERLAY_LINK}`,
    `link set ${HOST_UNDERLAY_LINK} up`,
    'link add br0 type bridge',
    `link add vxlan0 mtu ${mtus.containerMtu} type vxlan id ${VXLAN_ID} local ${host.underlayIp} dstport ${VXLAN_PORT} dev ${HOST_UNDERLAY_LINK}`,
    'link set vxlan0 master br0 up',
  ];
  // Host-network containers share this namespace: they need no link of their own, only (for mpirun's
  // out-of-band channel) an overlay address here, on the bridge.
  lines.push(`addr add ${host.bridgeOverlayCidr} dev br0`);
  for (const container of host.containers.filter((c) => c.network === 'own')) {
    lines.push(vethInto(`c${container.index}`, container.netns, 'eth0', mtus.containerMtu));
    lines.push(`link set c${container.index} master br0 up`);
  }
  if (host.index === 0) {
    lines.push(vethInto(LAUNCHER_PORT, layout.launcher.netns, 'eth0', mtus.containerMtu));
    lines.push(`link set ${LAUNCHER_PORT} master br0 up`);
  }
  lines.push('link set br0 up');
  return lines;
}

/** Static flooding entries: broadcast and unknown unicast go to every other host (head-end replication). */
export function hostFloodBatch(layout: ClusterLayout, host: HostLayout): string[] {
  return layout.hosts.filter((peer) => peer.index !== host.index).map((peer) => `fdb append 00:00:00:00:00:00 dev vxlan0 dst ${peer.underlayIp}`);
}

/** A container or the launcher: loopback and its overlay address on eth0; deliberately no default route. */
export function endpointBatch(overlayCidr: string): string[] {
  return ['link set lo up', `addr add ${overlayCidr} dev eth0`, 'link set eth0 up'];
}

/**
 * Runs `ip` (or `bridge`) batch lines, inside `netns` when given. `force` runs every line even after one
 * failed (for teardown); the call still throws when any line failed.
 */
export async function runBatch(tool: 'ip' | 'bridge', netns: string | undefined, lines: readonly string[], options: { force?: boolean } = {}): Promise<void> {
  if (lines.length === 0) return;
  const args = [...(netns === undefined ? [] : ['-n', netns]), ...(options.force ? ['-force'] : []), '-batch', '-'];
  await exec(tool, args, { input: lines.join('\n') + '\n' });
}
