// An Ingress of class nginx routing myapp.example.com/ (Prefix) to demo/<backend>:<port>, and its backend
// demo/shop, shared by the URL trace tests (the pure core, the CLI, and the live trace e2e).
export const shopIngress = (backend: string, port = '{ name: http }'): string => `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: shop, namespace: demo }
spec:
  ingressClassName: nginx
  rules:
    - host: myapp.example.com
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: ${backend}, port: ${port} } } }
`;

/**
 * demo/shop (ClusterIP 10.96.0.60, port `port` 80 -> 9000) with one ready endpoint per address (10.244.1.*
 * on node1, others on node2), and the Ingress routing myapp.example.com/ to it.
 */
export const shopBackend = (port = 'http', endpoints = ['10.244.1.21', '10.244.2.21']): string => `---
apiVersion: v1
kind: Service
metadata: { name: shop, namespace: demo }
spec:
  clusterIP: 10.96.0.60
  selector: { app: shop }
  ports: [{ name: ${port}, port: 80, targetPort: 9000, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: shop-1, namespace: demo, labels: { kubernetes.io/service-name: shop } }
addressType: IPv4
ports: [{ name: ${port}, port: 9000, protocol: TCP }]
endpoints:
${endpoints.map((ip) => `  - { addresses: [${ip}], conditions: { ready: true }, nodeName: ${ip.startsWith('10.244.1.') ? 'node1' : 'node2'} }`).join('\n')}
${shopIngress('shop')}`;

/** The agent configuration of those tests: node1, with class nginx served by demo/web. */
export const shopTraceConfig = {
  nodeName: 'node1',
  nodeIPs: ['10.99.0.11'],
  clusterCIDRs: ['10.244.0.0/16'],
  ingress: { classes: [{ name: 'nginx', service: 'demo/web' }] },
};
