// Builders for ClusterState pieces used by the render tests: the shared ClusterState builders, plus
// render options and a restore-payload reader.
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import type { IptablesRenderOptions } from '../../../src/render/iptables/index.js';
import { endpoint, svcPort } from '../../fixtures/cluster-state.js';

export { endpoint as ep, stateOf, svcPort } from '../../fixtures/cluster-state.js';
export { parsePayload, payloadObject } from '../../fixtures/restore-payload.js';

export function options(extra: Partial<IptablesRenderOptions> = {}): IptablesRenderOptions {
  return {
    family: 'IPv4',
    nodeName: 'test-node',
    nodeIPs: ['192.168.0.2'],
    clusterCIDRs: ['10.0.0.0/8'],
    masqueradeAll: false,
    masqueradeBit: 14,
    nodePortAddresses: [],
    localhostNodePorts: true,
    randomFully: false,
    largeClusterEndpointThreshold: 1000,
    ...extra,
  };
}

/**
 * Options of node "node-a" (10.99.0.2 / fd00:99::2) for one family, as the property tests render
 * them; the cluster-CIDR local detector uses 10.244.0.0/16 / fd00:244::/56 unless detectLocal is false.
 */
export function nodeAOptions(
  family: 'IPv4' | 'IPv6',
  detectLocal: boolean,
  extra: Partial<IptablesRenderOptions> = {},
): IptablesRenderOptions {
  return options({
    family,
    nodeName: 'node-a',
    nodeIPs: family === 'IPv4' ? ['10.99.0.2'] : ['fd00:99::2'],
    clusterCIDRs: detectLocal ? [family === 'IPv4' ? '10.244.0.0/16' : 'fd00:244::/56'] : [],
    ...extra,
  });
}

/** The conditions an EndpointSlice endpoint can be in, as the property tests draw them. */
export type EndpointCondition = 'ready' | 'terminating-serving' | 'terminating' | 'not-ready';

/** Pod `host` of the pod range (10.244.0.<host> or fd00:244::<host>) in the given condition, on `node`. */
export function podEndpoint(
  host: number,
  v6: boolean,
  port: number,
  cond: EndpointCondition,
  node: string | undefined,
): Endpoint {
  return endpoint(v6 ? `fd00:244::${host.toString(16)}` : `10.244.0.${host}`, port, {
    ready: cond === 'ready',
    serving: cond === 'ready' || cond === 'terminating-serving',
    terminating: cond.startsWith('terminating'),
    ...(node === undefined ? {} : { nodeName: node }),
  });
}

/** What the property tests draw for one service port. */
export interface DrawnServicePort {
  type: ServicePort['type'];
  etp: 'Cluster' | 'Local';
  itp: 'Cluster' | 'Local';
  dual: boolean;
  externalIPs: string[];
  ranges: string[];
  affinity: number | undefined;
  endpoints: Endpoint[];
}

/**
 * Service port `index` of a generated state: ns<i>/svc<i>, port 80+i, node port 30000+i (not for
 * ClusterIP), health-check port 32000+i only for LoadBalancer with eTP Local, cluster IP 10.96.0.<i+1>
 * (and fd00:96::<i+1> when dual), source ranges only for LoadBalancer.
 */
export function indexedServicePort(
  index: number,
  portName: string,
  r: DrawnServicePort,
  extra: Partial<ServicePort> = {},
): ServicePort {
  return svcPort(`ns${index}`, `svc${index}`, portName, {
    type: r.type,
    port: 80 + index,
    nodePort: r.type === 'ClusterIP' ? 0 : 30000 + index,
    healthCheckNodePort: r.type === 'LoadBalancer' && r.etp === 'Local' ? 32000 + index : 0,
    clusterIPs: r.dual ? [`10.96.0.${index + 1}`, `fd00:96::${index + 1}`] : [`10.96.0.${index + 1}`],
    externalIPs: r.externalIPs,
    loadBalancerSourceRanges: r.type === 'LoadBalancer' ? r.ranges : [],
    externalTrafficPolicy: r.etp,
    internalTrafficPolicy: r.itp,
    sessionAffinity:
      r.affinity === undefined ? { type: 'None' } : { type: 'ClientIP', timeoutSeconds: r.affinity },
    endpoints: r.endpoints,
    ...extra,
  });
}
