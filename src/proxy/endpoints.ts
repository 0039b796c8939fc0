// Which endpoints serve a Service port on this node (kube-proxy's proxy.CategorizeEndpoints and its
// topology helpers): ready, serving-and-terminating fallback, traffic policies Local, topology hints.
import type { Endpoint } from '../model/cluster-state.js';

/** One endpoint of a service port in the family, as every mode addresses it. */
export interface PlannedEndpoint {
  ep: Endpoint;
  /** "ip:port" ("[ip6]:port"): kube-proxy's endpoint string, which also orders endpoints. */
  hostPort: string;
  /** On this node (nodeName equals the node's). */
  local: boolean;
}

/** What CategorizeEndpoints decides for one service port. */
export interface EndpointCategories {
  clusterEndpoints: PlannedEndpoint[];
  localEndpoints: PlannedEndpoint[];
  /** Every endpoint one of the two sets uses, in the service port's endpoint order. */
  allReachable: PlannedEndpoint[];
  /** Some endpoint can serve anywhere in the cluster (ready, or serving while terminating). */
  hasAnyEndpoints: boolean;
}

/** kube-proxy's topology modes: '' = no topology (every endpoint is a candidate). */
export type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

/**
 * kube-proxy's topologyModeFromHints, over the ready endpoints only: PreferSameNode when every one
 * has node hints and one is hinted for this node (kube-proxy's PreferSameTrafficDistribution gate:
 * on by default since 1.34, GA and locked on in 1.35); else PreferSameZone when every one has zone
 * hints and one is hinted for this node's zone; else ''. A partial set of hints (the controller is
 * mid-update, or some endpoints have no zone) means no topology at all, never a partial filter.
 */
export function topologyModeFromHints(
  endpoints: readonly PlannedEndpoint[],
  nodeName: string,
  zone: string,
): TopologyMode {
  let hasReadyEndpoints = false;
  let allHaveNodeHints = true;
  let hasEndpointForNode = false;
  let allHaveZoneHints = true;
  let hasEndpointForZone = false;
  for (const { ep } of endpoints) {
    if (!ep.ready) continue;
    hasReadyEndpoints = true;
    if (ep.nodeHints === undefined || ep.nodeHints.length === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.includes(nodeName)) hasEndpointForNode = true;
    if (ep.zoneHints === undefined || ep.zoneHints.length === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.includes(zone)) hasEndpointForZone = true;
  }
  if (!hasReadyEndpoints) return '';
  if (allHaveNodeHints && hasEndpointForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasEndpointForZone) return 'PreferSameZone';
  return '';
}

/** kube-proxy's availableForTopology (no fallback here: it is in the choice of the mode). */
export function availableForTopology(
  ep: Endpoint,
  mode: TopologyMode,
  nodeName: string,
  zone: string,
): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return ep.nodeHints?.includes(nodeName) ?? false;
    case 'PreferSameZone':
      return ep.zoneHints?.includes(zone) ?? false;
  }
}

/**
 * proxy.CategorizeEndpoints: the cluster-policy endpoints (ready ones, narrowed by topology hints),
 * the local-policy endpoints (never narrowed by topology), each falling back to serving-and-
 * terminating endpoints when it has no ready one. `zone` is this node's zone ('' when unknown).
 */
export function categorizeEndpoints(
  svc: { endpoints: readonly PlannedEndpoint[] },
  usesClusterEndpoints: boolean,
  usesLocalEndpoints: boolean,
  nodeName: string,
  zone: string,
): EndpointCategories {
  let clusterEndpoints: PlannedEndpoint[] = [];
  let localEndpoints: PlannedEndpoint[] = [];
  let hasAnyEndpoints = false;
  let useServingTerminating = false;
  let topologyMode: TopologyMode = '';
  const servingTerminating = (e: PlannedEndpoint): boolean => e.ep.serving && e.ep.terminating;

  if (usesClusterEndpoints) {
    topologyMode = topologyModeFromHints(svc.endpoints, nodeName, zone);
    clusterEndpoints = svc.endpoints.filter(
      (e) => e.ep.ready && availableForTopology(e.ep, topologyMode, nodeName, zone),
    );
    // No ready endpoint anywhere (a mode is only chosen when one is ready for this node or zone):
    // fall back to serving-and-terminating ones, regardless of topology, as kube-proxy does.
    if (clusterEndpoints.length === 0) clusterEndpoints = svc.endpoints.filter(servingTerminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints)
    return { clusterEndpoints, localEndpoints, allReachable: clusterEndpoints, hasAnyEndpoints };

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const e of svc.endpoints) {
    if (e.ep.ready) {
      hasAnyEndpoints = true;
      if (e.local) hasLocalReady = true;
    } else if (servingTerminating(e)) {
      hasAnyEndpoints = true;
      if (e.local) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) {
    localEndpoints = svc.endpoints.filter((e) => e.local && e.ep.ready);
  } else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    localEndpoints = svc.endpoints.filter((e) => e.local && servingTerminating(e));
  }
  if (!usesClusterEndpoints)
    return { clusterEndpoints, localEndpoints, allReachable: localEndpoints, hasAnyEndpoints };
  if (topologyMode === '' && !useServingTerminating) {
    // Without topology, clusterEndpoints holds every ready endpoint: a superset of localEndpoints.
    return { clusterEndpoints, localEndpoints, allReachable: clusterEndpoints, hasAnyEndpoints };
  }
  // Topology may have left out a local ready endpoint, or the local policy fell back to terminating
  // ones: take the union, in the service's endpoint order (kube-proxy uses map order; ours is stable).
  const chosen = new Set<PlannedEndpoint>([...clusterEndpoints, ...localEndpoints]);
  const allReachable = svc.endpoints.filter((e) => chosen.has(e));
  return { clusterEndpoints, localEndpoints, allReachable, hasAnyEndpoints };
}
