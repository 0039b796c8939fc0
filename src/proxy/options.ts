// What the mode-neutral proxy decisions need to know about this node and its configuration (one IP
// family). Every mode's render options extend it; nothing here is specific to iptables or ipvs.
import { detectLocalIssues, type Config, type DetectLocalMode } from '../config/config.js';
import type { IPFamily } from '../model/cluster-state.js';
import { ipFamilyOf, parseCIDR } from '../model/ip.js';
import { RenderInputError } from './input-checks.js';

export interface ProxyOptions {
  family: IPFamily;
  /** Endpoints whose nodeName equals this are local (externalTrafficPolicy/internalTrafficPolicy Local). */
  nodeName: string;
  /** This node's addresses of `family`; the first is the primary (kube-proxy's nodeIP). */
  nodeIPs: string[];
  /**
   * Pod CIDRs of `family` for the local-traffic detector in ClusterCIDR mode; empty = no detector.
   * At most one. Ignored in the other modes.
   */
  clusterCIDRs: string[];
  /**
   * kube-proxy's detectLocalMode; absent = ClusterCIDR. NodeCIDR takes the first pod CIDR of the
   * family from the ClusterState's Node named `nodeName` (none: no detector for the family).
   */
  detectLocalMode?: DetectLocalMode;
  /** BridgeInterface mode: the bridge pod traffic arrives on (`-i br0`). */
  bridgeInterface?: string;
  /** InterfaceNamePrefix mode: the prefix of pod interfaces, without "+" (`-i veth+`). */
  interfaceNamePrefix?: string;
  /** CIDRs (any family; filtered here) whose node addresses accept NodePorts, ['primary'], or [] for all. */
  nodePortAddresses: string[];
  /** Accept NodePorts on 127.0.0.0/8 (IPv4 only; needs route_localnet=1). */
  localhostNodePorts: boolean;
}

/** The proxy options of one family from the agent configuration and the node's addresses. */
export function proxyOptionsFromConfig(config: Config, family: IPFamily, nodeIPs: string[]): ProxyOptions {
  // A hand-built Config (not from parseConfig) gets the same check as a configuration file.
  const [issue] = detectLocalIssues(config);
  if (issue !== undefined) throw new RenderInputError('config', issue.path, issue.message);
  const clusterCIDRs = config.clusterCIDRs.filter((c) => parseCIDR(c)?.family === family);
  // Only the ClusterCIDR detector uses them (kube-proxy validates them only in that mode).
  if (config.detectLocalMode === 'ClusterCIDR' && clusterCIDRs.length > 1) {
    // kube-proxy's cluster-CIDR detector takes one CIDR per family ("! -s A ! -s B" is not expressible).
    throw new RenderInputError(
      'config',
      'clusterCIDRs',
      `at most one ${family} CIDR is supported for the local-traffic detector (got ${clusterCIDRs.join(', ')})`,
    );
  }
  const options: ProxyOptions = {
    family,
    nodeName: config.nodeName,
    nodeIPs: nodeIPs.filter((ip) => ipFamilyOf(ip) === family),
    clusterCIDRs,
    nodePortAddresses: [...config.nodePortAddresses],
    localhostNodePorts: config.iptables.localhostNodePorts,
  };
  // Only what the mode uses, so a render cache's key does not change with unused settings.
  if (config.detectLocalMode !== 'ClusterCIDR') options.detectLocalMode = config.detectLocalMode;
  if (config.detectLocalMode === 'BridgeInterface')
    options.bridgeInterface = config.detectLocal.bridgeInterface;
  if (config.detectLocalMode === 'InterfaceNamePrefix') {
    options.interfaceNamePrefix = config.detectLocal.interfaceNamePrefix;
  }
  return options;
}
