// Inputs of the iptables renderer besides the ClusterState: node facts and configuration, with tool
// capabilities detected by the caller (render itself reads no kernel, clock or environment).
import type { Config } from '../../config/config.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { proxyOptionsFromConfig, type ProxyOptions } from '../../proxy/options.js';

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
  return {
    ...proxyOptionsFromConfig(config, family, nodeIPs),
    masqueradeAll: config.masqueradeAll,
    masqueradeBit: config.masqueradeBit,
    randomFully: config.iptables.masqueradeRandomFully,
    largeClusterEndpointThreshold: LARGE_CLUSTER_ENDPOINT_THRESHOLD,
  };
}
