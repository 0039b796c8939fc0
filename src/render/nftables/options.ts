// Inputs of the nftables renderer besides the ClusterState: the proxy options of the family plus the
// masquerade settings. Nothing here reads the kernel.
import type { Config } from '../../config/config.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { proxyOptionsFromConfig, type ProxyOptions } from '../../proxy/options.js';

export interface NftablesRenderOptions extends ProxyOptions {
  masqueradeAll: boolean;
  masqueradeBit: number;
  /** `masquerade fully-random` (iptables.masqueradeRandomFully). */
  randomFully: boolean;
}

/** Options for one family from the agent configuration and the node addresses of that family. */
export function nftablesRenderOptionsFromConfig(
  config: Config,
  family: IPFamily,
  nodeIPs: string[],
): NftablesRenderOptions {
  return {
    ...proxyOptionsFromConfig(config, family, nodeIPs),
    // kube-proxy's nftables mode never accepts NodePorts on 127.0.0.1 (that needs route_localnet=1,
    // which it leaves to iptables mode): node ports match `fib daddr type local` minus loopback.
    localhostNodePorts: false,
    masqueradeAll: config.masqueradeAll,
    masqueradeBit: config.masqueradeBit,
    randomFully: config.iptables.masqueradeRandomFully,
  };
}
