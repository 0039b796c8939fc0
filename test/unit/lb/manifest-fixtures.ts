// A small manifest set for the agent-level LoadBalancer tests: two nodes, one pool, one L2Advertisement
// and a LoadBalancer Service with a pod on each node.
import { buildClusterState, parseManifestText } from '../../../src/model/index.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';

export const POOL_RANGE = '10.99.0.200-10.99.0.210';

export function lbManifests(
  opts: { status?: string; ads?: string; extra?: string; pools?: boolean; etp?: 'Cluster' | 'Local' } = {},
): string {
  const status = opts.status ? `status: { loadBalancer: { ingress: [{ ip: ${opts.status} }] } }\n` : '';
  const pools =
    opts.pools === false
      ? ''
      : `---
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: lan }
spec: { addresses: ["${POOL_RANGE}"] }
`;
  const ads =
    opts.ads ??
    `---
apiVersion: portway.io/v1alpha1
kind: L2Advertisement
metadata: { name: lan }
spec: { ipAddressPools: [lan] }
`;
  return `apiVersion: v1
kind: Node
metadata: { name: node1, labels: { role: edge } }
status:
  addresses: [{ type: InternalIP, address: 10.99.0.11 }]
  conditions: [{ type: Ready, status: "True" }]
---
apiVersion: v1
kind: Node
metadata: { name: node2, labels: { role: edge } }
status:
  addresses: [{ type: InternalIP, address: 10.99.0.12 }]
  conditions: [{ type: Ready, status: "True" }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  externalTrafficPolicy: ${opts.etp ?? 'Cluster'}
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30050, protocol: TCP }]
${status}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: demo, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [10.244.1.11], conditions: { ready: true }, nodeName: node1 }
  - { addresses: [10.244.2.11], conditions: { ready: true }, nodeName: node2 }
${pools}${ads}${opts.extra ?? ''}`;
}

export function stateOf(text: string): ClusterState {
  const loaded = parseManifestText(text, 'test.yaml');
  if (loaded.problems.length > 0) throw new Error(JSON.stringify(loaded.problems));
  const built = buildClusterState(loaded.objects);
  if (built.problems.length > 0) throw new Error(JSON.stringify(built.problems));
  return built.state;
}
