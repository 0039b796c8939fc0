import { describe, expect, test } from '@jest/globals';
import { formatStatusReport, statusReportJson } from '../../../src/cli/commands/status.js';
import { parseConfig } from '../../../src/config/config.js';
import { rankNodes } from '../../../src/l2/election.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';

const [OWNER] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];

// demo/web (a LoadBalancer Service that gets 10.99.0.200) plays the ingress controller.
const ingresses = `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: shop, namespace: demo }
spec:
  ingressClassName: nginx
  rules:
    - host: myapp.example.com
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: web, port: { name: http } } } }
          - { path: /api, pathType: Exact, backend: { service: { name: api, port: { number: 80 } } } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: other, namespace: demo, annotations: { kubernetes.io/ingress.class: traefik } }
spec:
  defaultBackend: { service: { name: web, port: { name: nope } } }
`;
const config = parseConfig({ ingress: { classes: [{ name: 'nginx', service: 'demo/web' }] } });

describe('portway status: the Ingress view', () => {
  test('text: address with its ARP owner, each host/path to Service:port to endpoints or the reason', () => {
    const text = formatStatusReport(stateOf(lbManifests() + ingresses), config);
    expect(text).toContain('Ingresses: 2');
    expect(text).toContain(`  demo/shop: class nginx (spec)\n    published: 10.99.0.200 (ARP: ${OWNER})\n`);
    expect(text).toMatch(/myapp\.example\.com\/ \(Prefix\) -> demo\/web:http -> \d+ ready endpoints?\n/);
    expect(text).toContain(
      '    myapp.example.com/api (Exact) -> demo/api:80 -> noService: Service demo/api not found\n',
    );
    expect(text).toContain(
      '  demo/other: class traefik (annotation)\n    class traefik is not in ingress.classes: its controller publishes the address\n',
    );
    expect(text).toContain('    (defaultBackend) -> demo/web:nope -> noPort: Service demo/web has no port name "nope" (ports: http(80))\n');
  });

  test('json: the same decisions, one document for every view', () => {
    const json = statusReportJson(stateOf(lbManifests() + ingresses), config) as {
      loadBalancer: { services: Array<{ service: string; addresses: string[] }> };
      layer2: { addresses: Array<{ ip: string; owner: string }> };
      ingresses: Array<{ ingress: string; published: boolean; addresses: unknown[]; routes: Array<{ state: string }> }>;
    };
    expect(json.loadBalancer.services).toEqual([{ service: 'demo/web', addresses: ['10.99.0.200'], pool: 'lan', reason: '' }]);
    expect(json.layer2.addresses).toMatchObject([{ ip: '10.99.0.200', owner: OWNER }]);
    expect(json.ingresses.map((i) => [i.ingress, i.published])).toEqual([['demo/other', false], ['demo/shop', true]]);
    expect(json.ingresses[1]!.addresses).toEqual([{ ip: '10.99.0.200', arpOwner: OWNER, arpReason: '' }]);
    expect(json.ingresses[1]!.routes.map((r) => r.state)).toEqual(['ok', 'noService']);
  });
});
