// Builders for ClusterState pieces used by the render tests: the shared ClusterState builders, plus
// render options and a restore-payload reader.
import type { Endpoint } from '../../../src/model/cluster-state.js';
import type { IptablesRenderOptions } from '../../../src/render/iptables/index.js';
import { endpoint } from '../../fixtures/cluster-state.js';

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
