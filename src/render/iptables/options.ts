// Inputs of the iptables renderer besides the ClusterState: node facts and configuration, with tool
// capabilities detected by the caller (render itself reads no kernel, clock or environment).
import { detectLocalIssues, type Config } from '../../config/config.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { ipFamilyOf, parseCIDR } from '../../model/ip.js';
import type { ProxyOptions } from '../../proxy/options.js';
import { RenderInputError } from './tokens.js';

/** The proxy layer's options (node, detector, NodePort addresses) plus what only iptables mode uses. */
export interface IptablesRenderOptions extends ProxyOptions {
  masqueradeAll: boolean;
  masqueradeBit: number;
  /** iptables supports MASQUERADE --random-fully (detected capability). */
  randomFully: boolean;
  /** Above this many endpoints, per-endpoint comments are dropped (kube-proxy: 1000). */
  largeClusterEndpointThreshold: number;
  /**
   * net.netfilter.nf_conntrack_tcp_be_liberal is set: kube-proxy then skips the INVALID-state DROP
   * in KUBE-FORWARD. Default false (the DROP rule is written).
   */
  conntrackTCPBeLiberal?: boolean;
}

export const LARGE_CLUSTER_ENDPOINT_THRESHOLD = 1000;

/** Options for one family from the agent configuration and the node addresses of that family. */
export function renderOptionsFromConfig(
  config: Config,
  family: IPFamily,
  nodeIPs: string[],
): IptablesRenderOptions {
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
  const options: IptablesRenderOptions = {
    family,
    nodeName: config.nodeName,
    nodeIPs: nodeIPs.filter((ip) => ipFamilyOf(ip) === family),
    clusterCIDRs,
    masqueradeAll: config.masqueradeAll,
    masqueradeBit: config.masqueradeBit,
    nodePortAddresses: [...config.nodePortAddresses],
    localhostNodePorts: config.iptables.localhostNodePorts,
    randomFully: config.iptables.masqueradeRandomFully,
    largeClusterEndpointThreshold: LARGE_CLUSTER_ENDPOINT_THRESHOLD,
  };
  // Only what the mode uses, so the render cache's key does not change with unused settings.
  if (config.detectLocalMode !== 'ClusterCIDR') options.detectLocalMode = config.detectLocalMode;
  if (config.detectLocalMode === 'BridgeInterface') options.bridgeInterface = config.detectLocal.bridgeInterface;
  if (config.detectLocalMode === 'InterfaceNamePrefix') {
    options.interfaceNamePrefix = config.detectLocal.interfaceNamePrefix;
  }
  return options;
}
