import { rankNodes } from '../../../src/l2/election.js';
import { LoadBalancerController } from '../../../src/lb/lb-controller.js';
import { decideAllOwners } from '../../../src/cli/commands/status.js';
import { traceIngressUrl } from '../../../src/ingress/url-trace.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';
import { shopIngress } from './ingress-fixture.js';

const [OWNER] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];
const CLASSES = [{ name: 'nginx', service: 'demo/web' }];

const ingress = shopIngress;

function trace(text: string, url: string) {
  const decision = new LoadBalancerController({}).process(stateOf(text));
  const owners = decideAllOwners(decision.state, decision.allocation!);
  return traceIngressUrl(url, decision.state, CLASSES, owners);
}

describe('traceIngressUrl', () => {
  it('a working path: address and ARP owner, controller pods, the rule, the backend endpoints', () => {
    const t = trace(lbManifests() + ingress('web'), 'http://myapp.example.com/cart?x=1');
    expect(t.failedAt).toBeNull();
    expect(t.hops.map((h) => [h.hop, h.ok])).toEqual([[1, true], [2, true], [3, true], [4, true]]);
    expect(t.hops[0]!.detail).toBe(`10.99.0.200 answered by ${OWNER}`);
    expect(t.hops[2]!.detail).toBe('demo/shop myapp.example.com / (Prefix)');
  });

  it('names the failing hop: port name not found', () => {
    const t = trace(lbManifests() + ingress('web', '{ name: web }'), 'http://myapp.example.com/');
    expect(t.failedAt).toBe(4);
    expect(t.hops[3]!.detail).toBe('noPort: Service demo/web has no port name "web" (ports: http(80))');
  });

  it('names the failing hop: no Ingress routes the host', () => {
    const t = trace(lbManifests() + ingress('web'), 'http://other.example.com/');
    expect(t.failedAt).toBe(1);
    expect(t.hops[0]!.detail).toBe('no Ingress of a class in ingress.classes routes other.example.com/');
  });

  it('names the failing hop: no node answers ARP (no ready controller endpoint, eTP Local)', () => {
    const text = lbManifests({ etp: 'Local' }).replace(/conditions: \{ ready: true \}/g, 'conditions: { ready: false }');
    const t = trace(text + ingress('web'), 'http://myapp.example.com/');
    expect(t.failedAt).toBe(1);
    expect(t.hops[0]!.detail).toBe('10.99.0.200: no node answers ARP (noLocalEndpoints)');
  });
});
