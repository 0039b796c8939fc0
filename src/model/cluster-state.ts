// The one normalised picture of what the cluster asks for (DESIGN §1). Both sources (the API and a
// directory of manifests) produce exactly this; nothing downstream knows where it came from.
// Every list is sorted and every address canonical, so render() can be byte-deterministic.

export type IPFamily = 'IPv4' | 'IPv6';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type TrafficPolicy = 'Cluster' | 'Local';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

/** One endpoint of one service port, with kube-proxy's condition defaults already applied. */
export interface Endpoint {
  /** Canonical IP (IPv4 dotted quad without leading zeros, IPv6 compressed lower-case). */
  ip: string;
  port: number;
  family: IPFamily;
  /** conditions.ready; unset = true. */
  ready: boolean;
  /**
   * conditions.serving; unset = true (kube-proxy's endpointslicecache: `Serving == nil || *Serving`).
   * For a legacy v1 Endpoints address it follows ready.
   */
  serving: boolean;
  /** conditions.terminating; unset = false. */
  terminating: boolean;
  nodeName?: string;
  zone?: string;
  /**
   * hints.forZones[].name: the zones whose nodes should route to this endpoint (topology-aware
   * routing). Sorted, deduplicated; absent when the slice gives none (never an empty list).
   */
  zoneHints?: string[];
  /** hints.forNodes[].name (trafficDistribution PreferSameNode); sorted, deduplicated, absent when none. */
  nodeHints?: string[];
  /** targetRef name (usually the pod), for display only. */
  targetName?: string;
}

export interface LoadBalancerIngress {
  ip: string;
  /** `Proxy` means the LB delivers traffic with its own source: kube-proxy writes no rules for it. */
  ipMode: 'VIP' | 'Proxy';
}

export type SessionAffinity = { type: 'None' } | { type: 'ClientIP'; timeoutSeconds: number };

/**
 * One port of one Service: kube-proxy's ServicePort. `id` is kube-proxy's ServicePortName.String()
 * ("ns/name:portName", or "ns/name" when the port is unnamed); with the lower-cased protocol it is
 * the input of every hashed chain name, so it must be exactly that string.
 */
export interface ServicePort {
  id: string;
  namespace: string;
  serviceName: string;
  portName: string;
  protocol: Protocol;
  type: Exclude<ServiceType, 'ExternalName'>;
  port: number;
  /** 0 when the port has no node port. */
  nodePort: number;
  /** 0 when there is no health-check node port. */
  healthCheckNodePort: number;
  /** Canonical, any family; render filters by the family it renders. */
  clusterIPs: string[];
  externalIPs: string[];
  loadBalancerIngress: LoadBalancerIngress[];
  /** Canonical masked CIDRs, any family. */
  loadBalancerSourceRanges: string[];
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  sessionAffinity: SessionAffinity;
  ipFamilies: IPFamily[];
  /** Endpoints whose EndpointSlice port name matches portName and protocol; sorted by (family, ip, port), deduplicated. */
  endpoints: Endpoint[];
}

/** Service-level facts the load-balancer allocator and Ingress logic need (ports are in servicePorts). */
export interface ServiceInfo {
  namespace: string;
  name: string;
  type: ServiceType;
  uid?: string;
  /** metadata.creationTimestamp as written (RFC 3339), when given: the older of two conflicting Services wins. */
  creationTimestamp?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  selector: Record<string, string>;
  clusterIPs: string[];
  ipFamilies: IPFamily[];
  ipFamilyPolicy: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  /** spec.loadBalancerIP (deprecated but honoured), canonical or ''. */
  loadBalancerIP: string;
  loadBalancerClass: string;
  externalTrafficPolicy: TrafficPolicy;
  ports: Array<{ name: string; protocol: Protocol; port: number; nodePort: number }>;
  /** status.loadBalancer.ingress as read from the object. */
  statusIngress: LoadBalancerIngress[];
}

export interface NodeInfo {
  name: string;
  /** InternalIP / ExternalIP addresses, canonical. */
  addresses: string[];
  ready: boolean;
  zone?: string;
  labels: Record<string, string>;
  /**
   * spec.podCIDRs (or spec.podCIDR when podCIDRs is empty): canonical masked CIDRs in the Node's
   * order (the first of each family is the one kube-proxy's NodeCIDR detector uses). Absent when none.
   */
  podCIDRs?: string[];
  /**
   * `true` when the Node's NetworkUnavailable condition has status "True" (the first condition of that
   * type, as MetalLB's nodes.IsNetworkUnavailable reads it): the node's network is not configured, so it
   * never announces a LoadBalancer address. Absent for "False", "Unknown" or no such condition — never
   * `false`, so a Node has one representation.
   */
  networkUnavailable?: true;
}

/** An Ingress backend: a Service and port (number or name, as written), or a resource portway cannot check. */
export type IngressBackend =
  | { service: { name: string; port: number | string } }
  | { resource: { apiGroup: string; kind: string; name: string } };

export type IngressPathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

export interface IngressPath {
  path: string;
  pathType: IngressPathType;
  backend: IngressBackend;
}

export interface IngressRule {
  /** '' matches every host; `*.example.com` matches exactly one label in front of example.com. */
  host: string;
  paths: IngressPath[];
}

export interface IngressInfo {
  namespace: string;
  name: string;
  uid?: string;
  /** spec.ingressClassName as written, '' when unset. */
  ingressClassName: string;
  /** The legacy `kubernetes.io/ingress.class` annotation, '' when unset (spec.ingressClassName wins). */
  classAnnotation: string;
  defaultBackend?: IngressBackend;
  rules: IngressRule[];
  /** status.loadBalancer.ingress entries with an IP as read, ports only when written. */
  statusIngress: Array<{ ip: string; ports?: Array<{ port: number; protocol: Protocol }> }>;
  /** status.loadBalancer.ingress hostnames as read (portway never writes them, but must not erase them unseen). */
  statusHostnames: string[];
}

/** networking.k8s.io/v1 IngressClass, parsed. */
export interface IngressClassInfo {
  name: string;
  controller: string;
  /** Annotated `ingressclass.kubernetes.io/is-default-class: "true"`. */
  isDefault: boolean;
}

/** portway.io/v1alpha1 IPAddressPool, parsed. */
export interface AddressPool {
  name: string;
  /** metadata.labels, for L2Advertisement ipAddressPoolSelectors (always set by the model). */
  labels?: Record<string, string>;
  /** Ranges as written (CIDR or a-b), normalised: canonical first/last address. */
  addresses: Array<{ first: string; last: string; family: IPFamily; text: string }>;
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  serviceAllocation?: {
    priority?: number;
    namespaces: string[];
    namespaceSelectors: LabelSelector[];
    serviceSelectors: LabelSelector[];
  };
}

export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values: string[] }>;
}

/** portway.io/v1alpha1 L2Advertisement, parsed. */
export interface L2Advertisement {
  name: string;
  ipAddressPools: string[];
  ipAddressPoolSelectors: LabelSelector[];
  nodeSelectors: LabelSelector[];
  interfaces: string[];
}

/** A malformed input object, reported and skipped; names the file, the object and the field. */
export interface InputProblem {
  /** File path (manifest mode) or 'api' (cluster mode). */
  source: string;
  kind: string;
  /** "namespace/name", "name" for cluster-scoped objects, or "" when even the name is missing. */
  object: string;
  /** Dotted path of the offending field, e.g. "spec.ports[0].port". */
  field: string;
  message: string;
  /**
   * The object's last good version stays in effect (an update made it invalid; the agent's sources),
   * instead of the object being skipped.
   */
  kept?: boolean;
}

export interface ClusterState {
  /** Sorted by (id, protocol). Headless, ExternalName and service-proxy-name-labelled Services have none. */
  servicePorts: ServicePort[];
  /** Every valid Service (including headless/ExternalName), sorted by namespace/name. */
  services: ServiceInfo[];
  nodes: NodeInfo[];
  ingresses: IngressInfo[];
  /** Sorted by name; empty when no IngressClass objects are given. */
  ingressClasses: IngressClassInfo[];
  addressPools: AddressPool[];
  l2Advertisements: L2Advertisement[];
  /** Namespace labels, for pool namespaceSelectors (empty when Namespace objects are not given). */
  namespaceLabels: Record<string, Record<string, string>>;
}

export const emptyClusterState = (): ClusterState => ({
  servicePorts: [],
  services: [],
  nodes: [],
  ingresses: [],
  ingressClasses: [],
  addressPools: [],
  l2Advertisements: [],
  namespaceLabels: {},
});

/** kube-proxy's ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
export function servicePortId(namespace: string, name: string, portName: string): string {
  return portName === '' ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}
