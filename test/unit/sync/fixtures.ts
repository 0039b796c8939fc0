// Builders for ServicePort values in sync tests: the shared ClusterState builders with a DNS-shaped
// default (UDP port 53 on cluster IP 10.96.0.10).
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import {
  endpoint as readyEndpoint,
  servicePort as defaultServicePort,
} from '../../fixtures/cluster-state.js';

export function endpoint(ip: string, over: Partial<Endpoint> = {}): Endpoint {
  return readyEndpoint(ip, 53, over);
}

export function servicePort(id: string, over: Partial<ServicePort> = {}): ServicePort {
  return defaultServicePort(id, { protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'], ...over });
}
