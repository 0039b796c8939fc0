// The mode-neutral proxy layer: what this node must do for each Service port and for itself, decided
// once and consumed by every mode's renderer (src/render/iptables, src/render/ipvs).
export { proxyOptionsFromConfig, type ProxyOptions } from './options.js';
export {
  checkedCIDR,
  checkedIP,
  checkedMasqueradeBit,
  checkedPort,
  RenderInputError,
} from './input-checks.js';
export {
  acceptsLocalhostNodePorts,
  isLoopback,
  IPV4_LOOPBACK_CIDR,
  IPV6_LOOPBACK_CIDR,
  resolveNodePortAddresses,
  type NodePortAddressing,
} from './node-ports.js';
export { localTrafficDetectorOf, nodeZoneOf, type LocalTrafficDetector } from './local-traffic.js';
export {
  availableForTopology,
  categorizeEndpoints,
  topologyModeFromHints,
  type EndpointCategories,
  type PlannedEndpoint,
  type TopologyMode,
} from './endpoints.js';
export {
  familyClusterIP,
  familyEndpointCount,
  planServicePort,
  type NoEndpointsAction,
  type ServicePlanContext,
  type ServicePortPlan,
} from './service-port.js';
export { planNode, planServicePorts, type NodePlan, type ProxyPlan } from './node-plan.js';
