// Local-traffic detection (kube-proxy's LocalTrafficDetector) and this node's topology zone: facts
// about the node that every mode's rules depend on. The detector is expressed as iptables matches
// because both iptables and ipvs modes write it into iptables rules.
import { interfaceNameProblem, type DetectLocalMode } from '../config/config.js';
import type { ClusterState } from '../model/cluster-state.js';
import { parseCIDR } from '../model/ip.js';
import { checkedCIDR, RenderInputError } from './input-checks.js';
import type { ProxyOptions } from './options.js';

/**
 * This node's zone, from its Node object's topology.kubernetes.io/zone label as kube-proxy reads it;
 * '' when the node is unnamed, not in the state, or unlabelled.
 */
export function nodeZoneOf(state: ClusterState, nodeName: string): string {
  if (nodeName === '') return '';
  return state.nodes.find((n) => n.name === nodeName)?.zone ?? '';
}

/**
 * kube-proxy's LocalTrafficDetector for one family: the match for traffic from this node's pods and
 * its negation (null when there is no detector), with why there is none. Decisions that depend on
 * it: masquerading of off-cluster traffic to cluster IPs, and pods reaching a Local-policy service's
 * external address.
 */
export interface LocalTrafficDetector {
  mode: DetectLocalMode;
  ifLocal: string[] | null;
  ifNotLocal: string[] | null;
  /** '' when a detector applies; otherwise why none does (for logs and doctor). */
  reason: '' | 'noClusterCIDR' | 'nodeNotFound' | 'noNodePodCIDR';
}

/**
 * The local-traffic detector of `opts.family` (kube-proxy's getLocalDetectors): ClusterCIDR and
 * NodeCIDR match the source (`-s CIDR`), the first CIDR of the family only; BridgeInterface and
 * InterfaceNamePrefix match the input interface (`-i br0`, `-i veth+`) and serve both families.
 * NodeCIDR reads this node's spec.podCIDRs from the ClusterState, as kube-proxy reads its Node. Pure.
 */
export function localTrafficDetectorOf(state: ClusterState, opts: ProxyOptions): LocalTrafficDetector {
  const { family } = opts;
  const mode = opts.detectLocalMode ?? 'ClusterCIDR';
  const bySource = (cidr: string): LocalTrafficDetector => ({
    mode,
    ifLocal: ['-s', cidr],
    ifNotLocal: ['!', '-s', cidr],
    reason: '',
  });
  const byInterface = (pattern: string): LocalTrafficDetector => ({
    mode,
    ifLocal: ['-i', pattern],
    ifNotLocal: ['!', '-i', pattern],
    reason: '',
  });
  const none = (reason: LocalTrafficDetector['reason']): LocalTrafficDetector => ({
    mode,
    ifLocal: null,
    ifNotLocal: null,
    reason,
  });
  switch (mode) {
    case 'ClusterCIDR': {
      if (opts.clusterCIDRs.length > 1) {
        throw new RenderInputError('options', 'clusterCIDRs', `at most one ${family} CIDR is supported`);
      }
      const cidr = opts.clusterCIDRs[0];
      return cidr === undefined
        ? none('noClusterCIDR')
        : bySource(checkedCIDR(cidr, family, 'options', 'clusterCIDRs[0]'));
    }
    case 'NodeCIDR': {
      const node = opts.nodeName === '' ? undefined : state.nodes.find((n) => n.name === opts.nodeName);
      if (node === undefined) return none('nodeNotFound');
      const podCIDRs = node.podCIDRs ?? [];
      const index = podCIDRs.findIndex((c) => parseCIDR(c)?.family === family);
      const cidr = podCIDRs[index];
      if (cidr === undefined) return none('noNodePodCIDR');
      return bySource(checkedCIDR(cidr, family, `node ${node.name}`, `podCIDRs[${index}]`));
    }
    case 'BridgeInterface':
      return byInterface(checkedInterface(opts.bridgeInterface ?? '', 'name', 'bridgeInterface'));
    case 'InterfaceNamePrefix':
      return byInterface(
        checkedInterface(opts.interfaceNamePrefix ?? '', 'prefix', 'interfaceNamePrefix') + '+',
      );
    default:
      throw new RenderInputError('options', 'detectLocalMode', `"${String(mode)}" is not a detectLocalMode`);
  }
}

function checkedInterface(name: string, kind: 'name' | 'prefix', field: string): string {
  const problem = interfaceNameProblem(name, kind);
  if (problem !== null) throw new RenderInputError('options', field, problem);
  return name;
}
