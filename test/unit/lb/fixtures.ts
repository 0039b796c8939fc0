// Builders for allocator tests.
import type { AddressPool, ServiceInfo } from '../../../src/model/cluster-state.js';
import { parsePoolAddress } from '../../../src/lb/pools.js';

export function svc(nsName: string, over: Partial<ServiceInfo> = {}): ServiceInfo {
  const [namespace = 'default', name = ''] = nsName.includes('/') ? nsName.split('/') : ['default', nsName];
  return {
    namespace,
    name,
    type: 'LoadBalancer',
    labels: {},
    annotations: {},
    selector: { app: name },
    clusterIPs: ['10.96.0.10'],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    loadBalancerIP: '',
    loadBalancerClass: '',
    externalTrafficPolicy: 'Cluster',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }],
    statusIngress: [],
    ...over,
  };
}

export function pool(name: string, addresses: string[], over: Partial<AddressPool> = {}): AddressPool {
  return {
    name,
    addresses: addresses.map(parsePoolAddress),
    autoAssign: true,
    avoidBuggyIPs: false,
    ...over,
  };
}

export const selector = (matchLabels: Record<string, string>) => ({ matchLabels, matchExpressions: [] });
