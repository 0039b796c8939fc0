// What the mode-neutral proxy decisions need to know about this node and its configuration (one IP
// family). Every mode's render options extend it; nothing here is specific to iptables or ipvs.
import type { DetectLocalMode } from '../config/config.js';
import type { IPFamily } from '../model/cluster-state.js';

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
