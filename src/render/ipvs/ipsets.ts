// The ipsets of kube-proxy's ipvs mode (pkg/proxy/ipvs/ipset.go and ipsetInfo in proxier.go): names,
// types, descriptions, and how an IPv6 proxier renames them.
import type { IPFamily } from '../../model/cluster-state.js';
import type { IpsetType } from './types.js';

export const KUBE_LOOP_BACK = 'KUBE-LOOP-BACK';
export const KUBE_CLUSTER_IP = 'KUBE-CLUSTER-IP';
export const KUBE_EXTERNAL_IP = 'KUBE-EXTERNAL-IP';
export const KUBE_EXTERNAL_IP_LOCAL = 'KUBE-EXTERNAL-IP-LOCAL';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_LOAD_BALANCER_FW = 'KUBE-LOAD-BALANCER-FW';
export const KUBE_LOAD_BALANCER_LOCAL = 'KUBE-LOAD-BALANCER-LOCAL';
export const KUBE_LOAD_BALANCER_SOURCE_IP = 'KUBE-LOAD-BALANCER-SOURCE-IP';
export const KUBE_LOAD_BALANCER_SOURCE_CIDR = 'KUBE-LOAD-BALANCER-SOURCE-CIDR';
export const KUBE_NODE_PORT_TCP = 'KUBE-NODE-PORT-TCP';
export const KUBE_NODE_PORT_LOCAL_TCP = 'KUBE-NODE-PORT-LOCAL-TCP';
export const KUBE_NODE_PORT_UDP = 'KUBE-NODE-PORT-UDP';
export const KUBE_NODE_PORT_LOCAL_UDP = 'KUBE-NODE-PORT-LOCAL-UDP';
export const KUBE_NODE_PORT_SCTP = 'KUBE-NODE-PORT-SCTP-HASH';
export const KUBE_NODE_PORT_LOCAL_SCTP = 'KUBE-NODE-PORT-LOCAL-SCTP-HASH';
export const KUBE_HEALTH_CHECK_NODE_PORT = 'KUBE-HEALTH-CHECK-NODE-PORT';
export const KUBE_IPVS_IPS = 'KUBE-IPVS-IPS';

export type IpsetKey =
  | typeof KUBE_LOOP_BACK
  | typeof KUBE_CLUSTER_IP
  | typeof KUBE_EXTERNAL_IP
  | typeof KUBE_EXTERNAL_IP_LOCAL
  | typeof KUBE_LOAD_BALANCER
  | typeof KUBE_LOAD_BALANCER_FW
  | typeof KUBE_LOAD_BALANCER_LOCAL
  | typeof KUBE_LOAD_BALANCER_SOURCE_IP
  | typeof KUBE_LOAD_BALANCER_SOURCE_CIDR
  | typeof KUBE_NODE_PORT_TCP
  | typeof KUBE_NODE_PORT_LOCAL_TCP
  | typeof KUBE_NODE_PORT_UDP
  | typeof KUBE_NODE_PORT_LOCAL_UDP
  | typeof KUBE_NODE_PORT_SCTP
  | typeof KUBE_NODE_PORT_LOCAL_SCTP
  | typeof KUBE_HEALTH_CHECK_NODE_PORT
  | typeof KUBE_IPVS_IPS;

export interface IpsetDefinition {
  key: IpsetKey;
  type: IpsetType;
  comment: string;
}

/** Every set of the mode, in kube-proxy's order (ipsetInfo). */
export const IPSET_DEFINITIONS: readonly IpsetDefinition[] = [
  {
    key: KUBE_LOOP_BACK,
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose',
  },
  {
    key: KUBE_CLUSTER_IP,
    type: 'hash:ip,port',
    comment: 'Kubernetes service cluster ip + port for masquerade purpose',
  },
  {
    key: KUBE_EXTERNAL_IP,
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port for masquerade and filter purpose',
  },
  {
    key: KUBE_EXTERNAL_IP_LOCAL,
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local',
  },
  { key: KUBE_LOAD_BALANCER, type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  {
    key: KUBE_LOAD_BALANCER_FW,
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange',
  },
  {
    key: KUBE_LOAD_BALANCER_LOCAL,
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local',
  },
  {
    key: KUBE_LOAD_BALANCER_SOURCE_IP,
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose',
  },
  {
    key: KUBE_LOAD_BALANCER_SOURCE_CIDR,
    type: 'hash:ip,port,net',
    comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose',
  },
  {
    key: KUBE_NODE_PORT_TCP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port for masquerade purpose',
  },
  {
    key: KUBE_NODE_PORT_LOCAL_TCP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local',
  },
  {
    key: KUBE_NODE_PORT_UDP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port for masquerade purpose',
  },
  {
    key: KUBE_NODE_PORT_LOCAL_UDP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local',
  },
  {
    key: KUBE_NODE_PORT_SCTP,
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
  },
  {
    key: KUBE_NODE_PORT_LOCAL_SCTP,
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
  },
  { key: KUBE_HEALTH_CHECK_NODE_PORT, type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  { key: KUBE_IPVS_IPS, type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
];

/** ipset's limit on a set name. */
const MAX_IPSET_NAME = 31;

/**
 * The set's name in a family: IPv6 sets are "KUBE-6-…" so both families' sets coexist, cut to 31
 * characters as kube-proxy cuts them (KUBE-6-LOAD-BALANCER-SOURCE-CID, KUBE-6-NODE-PORT-LOCAL-SCTP-HAS).
 */
export function ipsetName(key: IpsetKey, family: IPFamily): string {
  if (family === 'IPv4') return key;
  return key.replace(/^KUBE-/, 'KUBE-6-').slice(0, MAX_IPSET_NAME);
}

/** Every ipset name either family of ipvs mode uses (for cleanup and doctor). */
export function allIpsetNames(): string[] {
  return (['IPv4', 'IPv6'] as const).flatMap((family) =>
    IPSET_DEFINITIONS.map((d) => ipsetName(d.key, family)),
  );
}
