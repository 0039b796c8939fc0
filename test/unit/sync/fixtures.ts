// Builders for ServicePort values in sync tests.
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';

export function endpoint(ip: string, over: Partial<Endpoint> = {}): Endpoint {
  return {
    ip,
    port: 53,
    family: ip.includes(':') ? 'IPv6' : 'IPv4',
    ready: true,
    serving: true,
    terminating: false,
    ...over,
  };
}

export function servicePort(id: string, over: Partial<ServicePort> = {}): ServicePort {
  const [ns = 'default', rest = id] = id.split('/');
  const [name = rest, portName = ''] = rest.split(':');
  return {
    id,
    namespace: ns,
    serviceName: name,
    portName,
    protocol: 'UDP',
    type: 'ClusterIP',
    port: 53,
    nodePort: 0,
    healthCheckNodePort: 0,
    clusterIPs: ['10.96.0.10'],
    externalIPs: [],
    loadBalancerIngress: [],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: { type: 'None' },
    ipFamilies: ['IPv4'],
    endpoints: [],
    ...over,
  };
}
