// Input shared by the agent e2e tests: one NodePort Service, enough to make the agent program chains,
// set ip_forward and route_localnet, and write kubelet's KUBE-FIREWALL.
export const NODEPORT_SERVICE_YAML = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP }]
`;
