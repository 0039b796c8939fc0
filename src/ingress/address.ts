// The address an Ingress of a configured class gets in status.loadBalancer.ingress: the ingress
// controller Service's LoadBalancer addresses (allocated and announced by portway), or for a NodePort
// controller every Ready node's addresses with the node ports. Pure.

import type { ClusterState, Protocol, ServiceInfo } from '../model/cluster-state.js';
import { compareIPs } from '../model/ip.js';

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

/** What to publish for Ingresses served by the controller Service `controller` ("ns/name"). */
export function decidePublishedAddress(
  controller: string,
  state: Pick<ClusterState, 'services' | 'nodes'>,
  services: Map<string, ServiceInfo> = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s])),
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
    const ips = [...new Set(state.nodes.filter((n) => n.ready).flatMap((n) => n.addresses))].sort(compareIPs);
    if (ips.length === 0) return { addresses: [], via: 'none', reason: 'no Ready node with an address' };
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
