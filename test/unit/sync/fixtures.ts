// Builders for ServicePort values in sync tests: the shared ClusterState builders with a DNS-shaped
// default (UDP port 53 on cluster IP 10.96.0.10).
import { expect } from '@jest/globals';
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import { buildClusterState, parseManifestText, type ClusterState } from '../../../src/model/index.js';
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

/** A Service (one port "p", 80 → 8080) and its EndpointSlice of ready endpoints on node-a, as manifest text. */
export function service(name: string, ip: string, endpoints: string[], protocol = 'TCP', nodePort = 0): string {
  return `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: demo }
spec:
  type: ${nodePort ? 'NodePort' : 'ClusterIP'}
  clusterIP: ${ip}
  ports: [{ name: p, port: 80, targetPort: 8080, protocol: ${protocol}${nodePort ? `, nodePort: ${nodePort}` : ''} }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-1, namespace: demo, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: p, port: 8080, protocol: ${protocol} }]
endpoints: [${endpoints.map((e) => `{ addresses: [${e}], conditions: { ready: true }, nodeName: node-a }`).join(', ')}]
`;
}

/** The ClusterState of manifest texts; a problem in them fails the test. */
export function stateOf(...docs: string[]): ClusterState {
  const loaded = parseManifestText(docs.join('\n---\n'), 'test.yaml');
  const built = buildClusterState(loaded.objects);
  expect([...loaded.problems, ...built.problems]).toEqual([]);
  return built.state;
}
