// "What this node must do" for one Service port in one family: the addresses it takes traffic on, its
// policies, and the endpoints each kind of traffic goes to, decided once for every mode (kube-proxy's
// ServicePort + CategorizeEndpoints + the per-service decisions at the top of syncProxyRules' loop).
// A mode's renderer only turns this record into its tool's input.
import type { Endpoint, IPFamily, ServicePort } from '../model/cluster-state.js';
import { joinHostPort, parseCIDR, type ParsedCIDR } from '../model/ip.js';
import { protocolToken } from '../render/naming.js';
import { categorizeEndpoints, type PlannedEndpoint } from './endpoints.js';
import { checkedIP, checkedPort, RenderInputError } from './input-checks.js';

/**
 * What traffic meets when no endpoint takes it: REJECT when the Service has no endpoint at all,
 * DROP when it has some but none local for a Local policy, '' when endpoints take it.
 */
export type NoEndpointsAction = '' | 'REJECT' | 'DROP';

export interface ServicePortPlan {
  sp: ServicePort;
  family: IPFamily;
  /** "servicePort ns/name:port/proto": names the object in input errors. */
  object: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** The cluster IP of the family (a Service without one gets no plan in this family). */
  clusterIP: string;
  port: number;
  /** 0 = none. */
  nodePort: number;
  /** 0 = none (only LoadBalancer Services with externalTrafficPolicy Local have one). */
  healthCheckNodePort: number;
  externalIPs: string[];
  /** LoadBalancer ingress IPs of the family with ipMode VIP (ipMode Proxy gets no rules). */
  loadBalancerVIPs: string[];
  /** loadBalancerSourceRanges of the family; empty = any source (a /0 means the same). */
  loadBalancerSourceRanges: ParsedCIDR[];
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  /** sessionAffinity ClientIP timeout in seconds (0..86400), null without affinity. */
  affinityTimeoutSeconds: number | null;
  /** Endpoints of the family in kube-proxy's order (by "ip:port" string). */
  endpoints: PlannedEndpoint[];
  /** Has a node port, an external IP or a VIP load-balancer IP of the family. */
  externallyAccessible: boolean;
  usesClusterEndpoints: boolean;
  usesLocalEndpoints: boolean;
  /** Cluster-policy endpoints (ready, topology-narrowed; else serving-terminating). */
  clusterEndpoints: PlannedEndpoint[];
  /** Local-policy endpoints (ready local ones; else serving-terminating local ones). */
  localEndpoints: PlannedEndpoint[];
  /** Union of the two sets, in endpoint order. */
  allReachable: PlannedEndpoint[];
  /** Some endpoint can serve anywhere in the cluster. */
  hasEndpoints: boolean;
  /** Traffic to the cluster IP has an endpoint (internalTrafficPolicy decides which set). */
  hasInternalEndpoints: boolean;
  /** Traffic to node ports, external and LB IPs has an endpoint (externalTrafficPolicy decides). */
  hasExternalEndpoints: boolean;
  internalNoEndpoints: NoEndpointsAction;
  externalNoEndpoints: NoEndpointsAction;
  /** Some VIP LB IP is limited to source ranges (only while the Service has endpoints). */
  usesSourceRanges: boolean;
}

/** What planning a service port needs besides the ServicePort (equal contexts, equal plans). */
export interface ServicePlanContext {
  family: IPFamily;
  nodeName: string;
  /** This node's topology.kubernetes.io/zone ('' when unknown: zone hints are then ignored). */
  nodeZone: string;
}

/** ExternallyAccessible(service) in k8s.io/kubernetes/pkg/api/v1/service: by type, any family. */
function typeIsExternallyAccessible(sp: ServicePort): boolean {
  return (
    sp.type === 'LoadBalancer' ||
    sp.type === 'NodePort' ||
    (sp.type === 'ClusterIP' && sp.externalIPs.length > 0)
  );
}

/** The Service's cluster IP of the family (kube-proxy's per-family proxier ignores Services without one). */
export function familyClusterIP(sp: ServicePort, family: IPFamily): string | undefined {
  return sp.clusterIPs.find((ip) => (family === 'IPv4') === !ip.includes(':'));
}

/** Endpoints of the family of a service port that has a cluster IP of the family (else 0). */
export function familyEndpointCount(sp: ServicePort, family: IPFamily): number {
  if (familyClusterIP(sp, family) === undefined) return 0;
  let n = 0;
  for (const ep of sp.endpoints) if (ep.family === family) n++;
  return n;
}

const byHostPort = (a: PlannedEndpoint, b: PlannedEndpoint): number =>
  a.hostPort < b.hostPort ? -1 : a.hostPort > b.hostPort ? 1 : 0;

/**
 * The plan of one service port in `ctx.family`; null when the Service has no cluster IP of the family
 * (headless and ExternalName Services never reach here: the model has no service ports for them).
 * Throws RenderInputError naming the field of a value no mode can program.
 */
export function planServicePort(sp: ServicePort, ctx: ServicePlanContext): ServicePortPlan | null {
  const { family, nodeName } = ctx;
  const protocol = protocolToken(sp.protocol);
  const object = `servicePort ${sp.id}/${protocol}`;
  const clusterIP = familyClusterIP(sp, family);
  // kube-proxy's per-family proxier ignores a Service without a cluster IP of its family.
  if (clusterIP === undefined) return null;
  checkedIP(clusterIP, family, object, 'clusterIPs');
  checkedPort(sp.port, object, 'port');
  const nodePort = checkedPort(sp.nodePort, object, 'nodePort', true);
  checkedPort(sp.healthCheckNodePort, object, 'healthCheckNodePort', true);

  const inFamily = (ip: string): boolean => (family === 'IPv4') === !ip.includes(':');
  const externalIPs = sp.externalIPs
    .filter(inFamily)
    .map((ip) => checkedIP(ip, family, object, 'externalIPs'));
  const loadBalancerVIPs = sp.loadBalancerIngress
    .filter((ing) => ing.ipMode === 'VIP' && inFamily(ing.ip))
    .map((ing) => checkedIP(ing.ip, family, object, 'loadBalancerIngress'));
  let loadBalancerSourceRanges = sp.loadBalancerSourceRanges
    .map((c, i) => {
      const parsed = parseCIDR(c);
      if (parsed === null) throw new RenderInputError(object, `loadBalancerSourceRanges[${i}]`, 'not a CIDR');
      return parsed;
    })
    .filter((c) => c.family === family);
  // A zero-length prefix means "allow any", the same as no ranges at all.
  if (loadBalancerSourceRanges.some((c) => c.prefix === 0)) loadBalancerSourceRanges = [];

  const externalPolicyLocal = sp.externalTrafficPolicy === 'Local' && typeIsExternallyAccessible(sp);
  const internalPolicyLocal = sp.internalTrafficPolicy === 'Local';
  // NeedsHealthCheck: only LoadBalancer Services with externalTrafficPolicy Local.
  const healthCheckNodePort = sp.type === 'LoadBalancer' && externalPolicyLocal ? sp.healthCheckNodePort : 0;

  const isLocal = (ep: Endpoint): boolean => nodeName !== '' && ep.nodeName === nodeName;
  const endpoints: PlannedEndpoint[] = [];
  for (const ep of sp.endpoints) {
    if (ep.family !== family) continue;
    checkedIP(ep.ip, family, object, `endpoints[${ep.ip}].ip`);
    checkedPort(ep.port, object, `endpoints[${ep.ip}].port`);
    endpoints.push({ ep, hostPort: joinHostPort(ep.ip, ep.port), local: isLocal(ep) });
  }
  // kube-proxy sorts endpoints by their "ip:port" string (byEndpoint), not numerically.
  endpoints.sort(byHostPort);

  const affinityTimeoutSeconds =
    sp.sessionAffinity.type === 'ClientIP' ? sp.sessionAffinity.timeoutSeconds : null;
  if (
    affinityTimeoutSeconds !== null &&
    (!Number.isInteger(affinityTimeoutSeconds) ||
      affinityTimeoutSeconds < 0 ||
      affinityTimeoutSeconds > 86400)
  ) {
    // kube-proxy's API validation bounds it so.
    throw new RenderInputError(
      object,
      'sessionAffinity.timeoutSeconds',
      `${String(affinityTimeoutSeconds)} is not 0..86400`,
    );
  }

  const externallyAccessible = nodePort !== 0 || loadBalancerVIPs.length > 0 || externalIPs.length > 0;
  const usesClusterEndpoints = !internalPolicyLocal || externallyAccessible;
  const usesLocalEndpoints = internalPolicyLocal || (externalPolicyLocal && externallyAccessible);
  const { clusterEndpoints, localEndpoints, allReachable, hasAnyEndpoints } = categorizeEndpoints(
    { endpoints },
    usesClusterEndpoints,
    usesLocalEndpoints,
    nodeName,
    ctx.nodeZone,
  );
  const hasEndpoints = hasAnyEndpoints;
  const hasInternalEndpoints = hasEndpoints && (!internalPolicyLocal || localEndpoints.length > 0);
  const hasExternalEndpoints = hasEndpoints && (!externalPolicyLocal || localEndpoints.length > 0);
  const noEndpoints = (has: boolean): NoEndpointsAction => (!hasEndpoints ? 'REJECT' : has ? '' : 'DROP');

  return {
    sp,
    family,
    object,
    protocol,
    clusterIP,
    port: sp.port,
    nodePort,
    healthCheckNodePort,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges,
    externalPolicyLocal,
    internalPolicyLocal,
    affinityTimeoutSeconds,
    endpoints,
    externallyAccessible,
    usesClusterEndpoints,
    usesLocalEndpoints,
    clusterEndpoints,
    localEndpoints,
    allReachable,
    hasEndpoints,
    hasInternalEndpoints,
    hasExternalEndpoints,
    internalNoEndpoints: noEndpoints(hasInternalEndpoints),
    externalNoEndpoints: noEndpoints(hasExternalEndpoints),
    usesSourceRanges: hasEndpoints && loadBalancerVIPs.length > 0 && loadBalancerSourceRanges.length > 0,
  };
}
