// What renderIpvs produces for ipvs mode: the structured desired state of one IP family, as kube-proxy's
// ipvs proxier would program it. Three parts, each with a serializer in its tool's input format (see
// serialize.ts): IPVS virtual servers and their real servers (ipvsadm), the ipsets the constant
// iptables rules match (ipset), and those rules (iptables-restore); plus the addresses bound to the
// dummy interface and the sysctls the mode needs. Plan/diff, trace and the dataplane consume this
// structure; keep it stable.
import type { IpvsScheduler, IpvsSchedulerFlag } from '../../config/config.js';
import type { IPFamily } from '../../model/cluster-state.js';
import type { IptablesRuleSet } from '../types.js';

export type { IpvsScheduler, IpvsSchedulerFlag };

export type IpvsProtocol = 'TCP' | 'UDP' | 'SCTP';

/** The dummy link kube-proxy binds service addresses to, so the node accepts their packets. */
export const KUBE_IPVS_DUMMY_DEVICE = 'kube-ipvs0';

/** Which address of the Service a virtual server serves (decides the traffic policy it follows). */
export type VirtualServerKind = 'clusterIP' | 'externalIP' | 'loadBalancerIP' | 'nodePort';

export interface IpvsRealServer {
  address: string;
  port: number;
  /**
   * 1 for an endpoint traffic goes to; 0 for a terminating endpoint that no longer gets new
   * connections but keeps its established ones until the apply side removes it (kube-proxy's
   * graceful termination).
   */
  weight: number;
  /** Always masquerading (NAT): kube-proxy's real servers are `-m`. */
  forwarding: 'masquerade';
}

export interface IpvsVirtualServer {
  address: string;
  port: number;
  protocol: IpvsProtocol;
  scheduler: IpvsScheduler;
  /** Scheduler flags (ipvsadm -b), sorted. */
  flags: IpvsSchedulerFlag[];
  /** sessionAffinity ClientIP: persistent with this timeout in seconds; null = not persistent. */
  persistenceTimeoutSeconds: number | null;
  kind: VirtualServerKind;
  /** The service port it belongs to: ServicePort.id + '/' + lower-case protocol ("ns/svc:http/tcp"). */
  owner: string;
  /** In kube-proxy's endpoint order ("ip:port" string order); shared by a service port's addresses of one policy, read-only. */
  realServers: readonly IpvsRealServer[];
}

export type IpsetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

export interface IpsetEntry {
  /** The member as `ipset add` takes it: "10.96.0.1,tcp:80", "30080", "10.0.0.1,tcp:80,10.0.0.1". */
  value: string;
  /** The service ports that asked for it (owner strings as on virtual servers), sorted; shared, read-only. */
  owners: readonly string[];
}

export interface Ipset {
  /** kube-proxy's name; the IPv6 sets are named KUBE-6-… (cut to ipset's 31 characters). */
  name: string;
  type: IpsetType;
  /** inet / inet6 for hash types; null for bitmap:port (no family). */
  family: 'inet' | 'inet6' | null;
  hashSize: number;
  maxElem: number;
  /** bitmap:port only: "0-65535". */
  range: string | null;
  /** kube-proxy's description of the set, used as the comment of the iptables rules matching it. */
  comment: string;
  /** Sorted by value; every set is created even when empty (the iptables rules reference them). */
  entries: IpsetEntry[];
}

export interface IpvsSysctl {
  /** Path under /proc/sys with slashes, e.g. "net/ipv4/vs/conntrack". */
  key: string;
  value: string;
  /** Why ipvs mode needs it (for doctor and logs). */
  reason: string;
}

/** ipvsadm --set: IPVS connection timeouts in seconds; 0 keeps the kernel's value. */
export interface IpvsTimeouts {
  tcpSeconds: number;
  tcpFinSeconds: number;
  udpSeconds: number;
}

export interface IpvsRuleSet {
  family: IPFamily;
  /** Sorted by protocol, address, port. */
  virtualServers: IpvsVirtualServer[];
  /** Every set of the mode in kube-proxy's order (ipsetInfo). */
  ipsets: Ipset[];
  /** The constant iptables rules of ipvs mode (their count does not grow with the Services). */
  iptables: IptablesRuleSet;
  /** Addresses to bind on `dummyDevice` (cluster IPs, external and LB IPs not on another interface), sorted. */
  boundAddresses: string[];
  dummyDevice: typeof KUBE_IPVS_DUMMY_DEVICE;
  /** In the order kube-proxy sets them. */
  sysctls: IpvsSysctl[];
  /** null when no timeout is configured (ipvsadm --set is not run). */
  timeouts: IpvsTimeouts | null;
}
