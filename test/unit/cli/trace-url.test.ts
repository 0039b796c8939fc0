// `portway trace --url` (dry run): the four hops of a URL through an Ingress, with the rule walks of
// hops 2 and 4, as a process over manifest files and through traceUrl for the failure cases.
import { describe, expect, it, beforeAll } from '@jest/globals';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { traceUrl } from '../../../src/cli/commands/trace-url.js';
import { parseConfig } from '../../../src/config/config.js';
import { rankNodes } from '../../../src/l2/election.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';
import { shopIngress } from '../ingress/ingress-fixture.js';

const root = new URL('../../../', import.meta.url).pathname;
const [OWNER, STANDBY] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];

// demo/web (LoadBalancer, gets 10.99.0.200, pods on node1 and node2) plays the ingress controller;
// demo/shop (ClusterIP 10.96.0.60, port http 80 -> 9000) is the backend of myapp.example.com.
const backend = (port = 'http') => `---
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
  - { addresses: [10.244.1.21], conditions: { ready: true }, nodeName: node1 }
  - { addresses: [10.244.2.21], conditions: { ready: true }, nodeName: node2 }
${shopIngress('shop')}`;
const configObject = {
  nodeName: 'node1',
  nodeIPs: ['10.99.0.11'],
  clusterCIDRs: ['10.244.0.0/16'],
  ingress: { classes: [{ name: 'nginx', service: 'demo/web' }] },
};
const config = parseConfig(configObject);

let dir = '';
const cli = (args: string[]) =>
  execa('node', ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'trace', ...args], { cwd: root, reject: false });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portway-trace-url-'));
  writeFileSync(join(dir, 'cluster.yaml'), lbManifests() + backend());
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify(configObject));
});

describe('portway trace --url', () => {
  it('text: every hop ok, hop 2 walks to the controller pods on the ARP owner, hop 4 to the backend pods', async () => {
    const r = await cli(['-f', join(dir, 'cluster.yaml'), '--config', join(dir, 'config.yaml'),
      '--url', 'http://myapp.example.com/cart', '--src', '10.99.0.100']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`hop 1 published address: ok: 10.99.0.200 answered by ${OWNER}\n`);
    expect(r.stdout).toContain(
      `  rules on ${OWNER}: tcp 10.99.0.100 -> 10.99.0.200:80: ACCEPT -> 10.244.1.11:8080 (50.0%), 10.244.2.11:8080 (50.0%)\n`,
    );
    expect(r.stdout).toContain('hop 3 Ingress rule: ok: demo/shop myapp.example.com / (Prefix)\n');
    expect(r.stdout).toContain('hop 4 backend demo/shop:http: ok: 2 ready endpoint(s)\n');
    expect(r.stdout).toMatch(/rules on node1: tcp 10\.244\.1\.11 -> 10\.96\.0\.60:80: ACCEPT -> 10\.244\.1\.21:9000 \(50\.0%\), 10\.244\.2\.21:9000 \(50\.0%\)\n/);
    expect(r.stdout).toContain('result: the request reaches the backend (10.244.1.21:9000, 10.244.2.21:9000)');
  });

  it('json: the same hops; --live and bad URLs are refused with exit 2', async () => {
    const args = ['-f', join(dir, 'cluster.yaml'), '--config', join(dir, 'config.yaml'), '--src', '10.99.0.100'];
    const r = await cli([...args, '-o', 'json', '--url', 'http://myapp.example.com/']);
    const json = JSON.parse(r.stdout) as { failedAt: number | null; hops: Array<{ hop: number; ok: boolean; rules?: { endpoints: string[] } }> };
    expect(json.failedAt).toBeNull();
    expect(json.hops.map((h) => [h.hop, h.ok])).toEqual([[1, true], [2, true], [3, true], [4, true]]);
    expect(json.hops[3]!.rules!.endpoints).toEqual(['10.244.1.21:9000', '10.244.2.21:9000']);
    const live = await cli(['--live', '--src', '10.99.0.100', '--url', 'http://myapp.example.com/']);
    expect(live.exitCode).toBe(2);
    expect(live.stderr).toContain('trace --url works on manifests only');
    const bad = await cli([...args, '--url', 'myapp.example.com/']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--url must be an http:// or https:// URL (got "myapp.example.com/")');
  });

  it('ipvs mode: hops 2 and 4 walk IPVS virtual servers to the same pods', () => {
    const ipvs = parseConfig({ ...configObject, mode: 'ipvs' });
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend()), ipvs);
    expect(t.failedAt).toBeNull();
    expect(t.hops[1]!.rules).toMatchObject({
      ipvsVirtualServer: 'TCP 10.99.0.200:80',
      endpoints: ['10.244.1.11:8080', '10.244.2.11:8080'],
    });
    expect(t.hops[3]!.rules).toMatchObject({
      ipvsVirtualServer: 'TCP 10.96.0.60:80',
      endpoints: ['10.244.1.21:9000', '10.244.2.21:9000'],
    });
    expect(traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend()), config).hops[1]!.rules)
      .not.toHaveProperty('ipvsVirtualServer');
  });

  it('--down: the owner agent gone, the standby answers ARP and hop 2 is walked there; both gone fails hop 1', () => {
    const state = stateOf(lbManifests() + backend());
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', state, config, [OWNER]);
    expect(t.failedAt).toBeNull();
    expect(t.hops[0]!.detail).toBe(`10.99.0.200 answered by ${STANDBY}`);
    expect(t.hops[1]!.rules!.node).toBe(STANDBY);
    const both = traceUrl('http://myapp.example.com/', '10.99.0.100', state, config, ['node1', 'node2']);
    expect(both.failedAt).toBe(1);
    expect(both.hops[0]!.detail).toMatch(/^10\.99\.0\.200: no node answers ARP \(.+\)$/);
    expect(() => traceUrl('http://myapp.example.com/', '10.99.0.100', state, config, ['node9'])).toThrow(
      '--down: no Node named "node9" in the manifests',
    );
  });

  it('names hop 4 when the backend port name is renamed in the Service and its EndpointSlice', () => {
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend('web')), config);
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noPort: Service demo/shop has no port name "http" (ports: web(80))');
  });

  it('names hop 4 when the backend has no endpoints', () => {
    const noEndpoints = (lbManifests() + backend()).replace(/ {2}- \{ addresses: \[10\.244\.\d\.21\].*\n/g, '');
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(noEndpoints), config);
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noEndpoints: Service demo/shop port 80 has no ready endpoints');
  });

  it('names hop 2 when the client is of the other IP family than the published address', () => {
    const t = traceUrl('http://myapp.example.com/', 'fd00::100', stateOf(lbManifests() + backend()), config);
    expect(t.failedAt).toBe(2);
    expect(t.hops.at(-1)!.detail).toBe('2 ready controller pod(s); but fd00::100 is IPv6 and 10.99.0.200 is IPv4: no route between them');
  });

  it('names hop 1 when the URL port is not a port of the controller Service', () => {
    const t = traceUrl('https://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend()), config);
    expect(t.failedAt).toBe(1);
    expect(t.hops[0]!.detail).toBe('controller Service demo/web has no TCP port 443 for https:// (ports: 80/TCP)');
  });

  it('names hop 2 when the rules on the owner send the packet nowhere (loadBalancerSourceRanges excludes the client)', () => {
    const text = lbManifests().replace('  externalTrafficPolicy:', '  loadBalancerSourceRanges: [192.0.2.0/24]\n  externalTrafficPolicy:');
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(text + backend()), config);
    expect(t.failedAt).toBe(2);
    expect(t.hops.at(-1)!.detail).toMatch(/but the rules on node\d do not send tcp 10\.99\.0\.100 -> 10\.99\.0\.200:80 to any endpoint \(verdict DROP\)$/);
  });

  it('a NodePort controller: hop 1 names the node port, hop 2 walks it on this node', () => {
    const text = lbManifests({ pools: false, ads: '' }).replace('type: LoadBalancer', 'type: NodePort');
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(text + backend()), config);
    expect(t.failedAt).toBeNull();
    expect(t.hops[0]!.detail).toBe('node ports 30050 on 10.99.0.11, 10.99.0.12; port 80 is node port 30050');
    expect(t.hops[1]!.rules).toMatchObject({ node: 'node1', packet: 'tcp 10.99.0.100 -> 10.99.0.11:30050' });
  });

  it('a NodePort controller under nodePortAddresses: published on the matching node, walked on that node', () => {
    const text = lbManifests({ pools: false, ads: '' }).replace('type: LoadBalancer', 'type: NodePort');
    const only2 = parseConfig({ ...configObject, nodePortAddresses: ['10.99.0.12/32'] });
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(text + backend()), only2);
    expect(t.failedAt).toBeNull();
    expect(t.hops[0]!.detail).toBe('node ports 30050 on 10.99.0.12; port 80 is node port 30050');
    expect(t.hops[1]!.rules).toMatchObject({
      node: 'node2',
      packet: 'tcp 10.99.0.100 -> 10.99.0.12:30050',
      endpoints: ['10.244.1.11:8080', '10.244.2.11:8080'],
    });
  });
});
