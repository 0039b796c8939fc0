// The address an Ingress of a configured class gets in status.loadBalancer.ingress: the ingress
// controller Service's LoadBalancer addresses (allocated and announced by portway), or for a NodePort
// controller every Ready node's addresses that accept NodePorts (nodePortAddresses) with the node ports. Pure.

import type { ClusterState, Protocol, ServiceInfo } from '../model/cluster-state.js';
import { cidrContains, compareIPs, ipFamilyOf, parseCIDR } from '../model/ip.js';

export interface PublishedAddress {
  ip: string;
  /** Set for a NodePort controller: the node ports clients must use on that address. */
  ports?: Array<{ port: number; protocol: Protocol }>;
}

export interface AddressDecision {
  /** Sorted by address; empty when nothing can be published (then reason says why). */
  addresses: PublishedAddress[];
  via: 'loadBalancer' | 'nodePort' | 'none';
  reason: string;
}

/**
 * The addresses of one node that accept NodePorts under kube-proxy's nodePortAddresses: CIDRs per family
 * (a family without a CIDR: every address of it), or "primary" (the node's first address of each family).
 * Every agent of a DaemonSet runs the same configuration, so this node's setting stands for every node's.
 */
export function nodePortAddressesOf(nodeAddresses: readonly string[], nodePortAddresses: readonly string[]): string[] {
  if (nodePortAddresses.length === 1 && nodePortAddresses[0] === 'primary')
    return (['IPv4', 'IPv6'] as const).flatMap((f) => nodeAddresses.find((ip) => ipFamilyOf(ip) === f) ?? []);
  const cidrs = nodePortAddresses.map((c) => parseCIDR(c)).filter((c) => c !== null);
  return nodeAddresses.filter((ip) => {
    const ofFamily = cidrs.filter((c) => c.family === ipFamilyOf(ip));
    return ofFamily.length === 0 || ofFamily.some((c) => cidrContains(c, ip));
  });
}

/** What to publish for Ingresses served by the controller Service `controller` ("ns/name"). */
export function decidePublishedAddress(
  controller: string,
  state: Pick<ClusterState, 'services' | 'nodes'>,
  services: Map<string, ServiceInfo> = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s])),
  nodePortAddresses: readonly string[] = [],
): AddressDecision {
  const svc = services.get(controller);
  if (!svc) return { addresses: [], via: 'none', reason: `controller Service ${controller} not found` };
  if (svc.type === 'LoadBalancer') {
    const ips = [...new Set(svc.statusIngress.map((i) => i.ip))].sort(compareIPs);
    if (ips.length > 0) return { addresses: ips.map((ip) => ({ ip })), via: 'loadBalancer', reason: '' };
    return { addresses: [], via: 'none', reason: `controller Service ${controller} has no LoadBalancer address yet` };
  }
  if (svc.type === 'NodePort') {
    const ports = svc.ports
      .filter((p) => p.protocol === 'TCP' && p.nodePort > 0)
      .map((p) => ({ port: p.nodePort, protocol: 'TCP' as const }))
      .sort((a, b) => a.port - b.port);
    if (ports.length === 0) return { addresses: [], via: 'none', reason: `controller Service ${controller} has no TCP node port` };
    const ready = state.nodes.filter((n) => n.ready);
    const ips = [...new Set(ready.flatMap((n) => nodePortAddressesOf(n.addresses, nodePortAddresses)))].sort(compareIPs);
    if (ips.length === 0) {
      const reason =
        ready.some((n) => n.addresses.length > 0)
          ? `no Ready node address accepts NodePorts (nodePortAddresses: ${nodePortAddresses.join(', ')})`
          : 'no Ready node with an address';
      return { addresses: [], via: 'none', reason };
    }
    return { addresses: ips.map((ip) => ({ ip, ports })), via: 'nodePort', reason: '' };
  }
  return {
    addresses: [],
    via: 'none',
    reason: `controller Service ${controller} is ${svc.type}: clients outside the cluster cannot reach it`,
  };
}

/** Whether two published address lists say the same (the writer writes only on a change). */
export function sameAddresses(a: readonly PublishedAddress[], b: readonly PublishedAddress[]): boolean {
  const key = (list: readonly PublishedAddress[]): string =>
    JSON.stringify(list.map((x) => [x.ip, (x.ports ?? []).map((p) => `${p.port}/${p.protocol}`)]));
  return key(a) === key(b);
}
