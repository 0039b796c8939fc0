// An Ingress of class nginx routing myapp.example.com/ (Prefix) to demo/<backend>:<port>, shared by the
// URL trace tests (the pure core and the CLI).
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
