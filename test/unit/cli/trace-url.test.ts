// `portway trace --url` (dry run): the four hops of a URL through an Ingress, with the rule walks of
// hops 2 and 4, as a process over manifest files and through traceUrl for the failure cases.
import { describe, expect, it, beforeAll } from '@jest/globals';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatUrlTrace,
  liveHopRules,
  traceUrl,
  type LiveNode,
} from '../../../src/cli/commands/trace-url.js';
import { renderFamily, withAllocatedAddresses } from '../../../src/cli/commands/dry-run.js';
import { serializeRuleSet } from '../../../src/render/iptables/index.js';
import { parseConfig } from '../../../src/config/config.js';
import { rankNodes } from '../../../src/l2/election.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';
import { shopBackend, shopTraceConfig } from '../ingress/ingress-fixture.js';

const root = new URL('../../../', import.meta.url).pathname;
const [OWNER, STANDBY] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];

// demo/web (LoadBalancer, gets 10.99.0.200, pods on node1 and node2) plays the ingress controller;
// demo/shop (ClusterIP 10.96.0.60, port http 80 -> 9000) is the backend of myapp.example.com.
const backend = (port = 'http') => shopBackend(port);
const configObject = shopTraceConfig;
const config = parseConfig(configObject);

let dir = '';
const cli = (args: string[]) =>
  execa('node', ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'trace', ...args], {
    cwd: root,
    reject: false,
  });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portway-trace-url-'));
  writeFileSync(join(dir, 'cluster.yaml'), lbManifests() + backend());
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify(configObject));
});

describe('portway trace --url', () => {
  it('text: every hop ok, hop 2 walks to the controller pods on the ARP owner, hop 4 to the backend pods', async () => {
    const r = await cli([
      '-f',
      join(dir, 'cluster.yaml'),
      '--config',
      join(dir, 'config.yaml'),
      '--url',
      'http://myapp.example.com/cart',
      '--src',
      '10.99.0.100',
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`hop 1 published address: ok: 10.99.0.200 answered by ${OWNER}\n`);
    expect(r.stdout).toContain(
      `  rules on ${OWNER}: tcp 10.99.0.100 -> 10.99.0.200:80: ACCEPT -> 10.244.1.11:8080 (50.0%), 10.244.2.11:8080 (50.0%)\n`,
    );
    expect(r.stdout).toContain('hop 3 Ingress rule: ok: demo/shop myapp.example.com / (Prefix)\n');
    expect(r.stdout).toContain('hop 4 backend demo/shop:http: ok: 2 ready endpoint(s)\n');
    expect(r.stdout).toMatch(
      /rules on node1: tcp 10\.244\.1\.11 -> 10\.96\.0\.60:80: ACCEPT -> 10\.244\.1\.21:9000 \(50\.0%\), 10\.244\.2\.21:9000 \(50\.0%\)\n/,
    );
    expect(r.stdout).toContain(
      'result: the request reaches the backend (10.244.1.21:9000, 10.244.2.21:9000)',
    );
  });

  it('json: the same hops; bad URLs are refused with exit 2', async () => {
    const args = [
      '-f',
      join(dir, 'cluster.yaml'),
      '--config',
      join(dir, 'config.yaml'),
      '--src',
      '10.99.0.100',
    ];
    const r = await cli([...args, '-o', 'json', '--url', 'http://myapp.example.com/']);
    const json = JSON.parse(r.stdout) as {
      failedAt: number | null;
      hops: Array<{ hop: number; ok: boolean; rules?: { endpoints: string[] } }>;
    };
    expect(json.failedAt).toBeNull();
    expect(json.hops.map((h) => [h.hop, h.ok])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, true],
    ]);
    expect(json.hops[3]!.rules!.endpoints).toEqual(['10.244.1.21:9000', '10.244.2.21:9000']);
    const twoInputs = await cli([
      ...args,
      '--kubeconfig',
      join(dir, 'config.yaml'),
      '--url',
      'http://myapp.example.com/',
    ]);
    expect(twoInputs.exitCode).toBe(2);
    expect(twoInputs.stderr).toContain('--kubeconfig/--master go with --live --url');
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
    expect(
      traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend()), config)
        .hops[1]!.rules,
    ).not.toHaveProperty('ipvsVirtualServer');
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
    const t = traceUrl(
      'http://myapp.example.com/',
      '10.99.0.100',
      stateOf(lbManifests() + backend('web')),
      config,
    );
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noPort: Service demo/shop has no port name "http" (ports: web(80))');
  });

  it('names hop 4 when the backend has no endpoints', () => {
    const noEndpoints = (lbManifests() + backend()).replace(
      / {2}- \{ addresses: \[10\.244\.\d\.21\].*\n/g,
      '',
    );
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(noEndpoints), config);
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noEndpoints: Service demo/shop port 80 has no ready endpoints');
  });

  it('names hop 2 when the client is of the other IP family than the published address', () => {
    const t = traceUrl('http://myapp.example.com/', 'fd00::100', stateOf(lbManifests() + backend()), config);
    expect(t.failedAt).toBe(2);
    expect(t.hops.at(-1)!.detail).toBe(
      '2 ready controller pod(s); but fd00::100 is IPv6 and 10.99.0.200 is IPv4: no route between them',
    );
  });

  it('names hop 1 when the URL port is not a port of the controller Service', () => {
    const t = traceUrl(
      'https://myapp.example.com/',
      '10.99.0.100',
      stateOf(lbManifests() + backend()),
      config,
    );
    expect(t.failedAt).toBe(1);
    expect(t.hops[0]!.detail).toBe(
      'controller Service demo/web has no TCP port 443 for https:// (ports: 80/TCP)',
    );
  });

  it('names hop 2 when the rules on the owner send the packet nowhere (loadBalancerSourceRanges excludes the client)', () => {
    const text = lbManifests().replace(
      '  externalTrafficPolicy:',
      '  loadBalancerSourceRanges: [192.0.2.0/24]\n  externalTrafficPolicy:',
    );
    const t = traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(text + backend()), config);
    expect(t.failedAt).toBe(2);
    expect(t.hops.at(-1)!.detail).toMatch(
      /but the rules on node\d do not send tcp 10\.99\.0\.100 -> 10\.99\.0\.200:80 to any endpoint \(verdict DROP\)$/,
    );
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

// --live: hops 2 and 4 walk this node's kernel (here: a dump as iptables-save prints it) and compare it
// with what the cluster's objects ask for on this node.
describe('trace --live --url: the kernel against the cluster', () => {
  /** The Ingress (the last object) with status.loadBalancer.ingress as the elected agent wrote it. */
  const written = (ip: string) => `status: { loadBalancer: { ingress: [{ ip: ${ip} }] } }\n`;
  const full = stateOf(lbManifests() + backend() + written('10.99.0.200'));
  /** The cluster after the endpoint 10.244.2.21 was removed from demo/shop's slice. */
  const removed = stateOf(
    (lbManifests() + backend() + written('10.99.0.200')).replace(
      / {2}- \{ addresses: \[10\.244\.2\.21\].*\n/,
      '',
    ),
  );
  const kernelOf = (state: typeof full): LiveNode => ({
    name: 'node1',
    dumps: {
      IPv4: serializeRuleSet(renderFamily(withAllocatedAddresses(state, config), config, 'IPv4'), {
        includeBuiltinJumps: true,
      }),
    },
    addresses: ['10.99.0.11'],
  });

  it('kernel and cluster agree: the same hops as the dry run, walked on "node1 (kernel)"', () => {
    const t = traceUrl(
      'http://myapp.example.com/',
      '10.99.0.100',
      full,
      config,
      [],
      liveHopRules(kernelOf(full)),
    );
    const dry = traceUrl('http://myapp.example.com/', '10.99.0.100', full, config);
    expect(t.failedAt).toBeNull();
    expect(t.hops.map((h) => [h.hop, h.ok, h.detail])).toEqual(dry.hops.map((h) => [h.hop, h.ok, h.detail]));
    expect(t.hops[3]!.rules).toMatchObject({
      node: 'node1 (kernel)',
      endpoints: ['10.244.1.21:9000', '10.244.2.21:9000'],
    });
    expect(t.hops[3]!.rules).not.toHaveProperty('differsFromCluster');
    // Hop 2 arrives at the ARP owner: when that is another node, the walk says it used this node's kernel.
    expect(t.hops[1]!.rules!.note === undefined).toBe(OWNER === 'node1');
  });

  it('hop 1 names an Ingress status that is missing or differs from the decided address (the request still passes)', () => {
    const trace = (text: string) =>
      traceUrl(
        'http://myapp.example.com/',
        '10.99.0.100',
        stateOf(text),
        config,
        [],
        liveHopRules(kernelOf(full)),
      );
    const missing = trace(lbManifests() + backend());
    expect(missing.failedAt).toBeNull();
    expect(missing.hops[0]!.detail).toBe(
      `10.99.0.200 answered by ${OWNER}; the status of Ingress demo/shop holds no address yet (written by the elected agent: is one running?)`,
    );
    expect(trace(lbManifests() + backend() + written('10.99.0.201')).hops[0]!.detail).toBe(
      `10.99.0.200 answered by ${OWNER}; the status of Ingress demo/shop says 10.99.0.201, not 10.99.0.200 (not rewritten yet?)`,
    );
    // A dry run compares nothing: manifests rarely carry a status.
    expect(
      traceUrl('http://myapp.example.com/', '10.99.0.100', stateOf(lbManifests() + backend()), config)
        .hops[0]!.detail,
    ).toBe(`10.99.0.200 answered by ${OWNER}`);
  });

  it('an endpoint removed in the cluster but still in the kernel: hop 4 shows the kernel and fails, naming it', () => {
    const t = traceUrl(
      'http://myapp.example.com/',
      '10.99.0.100',
      removed,
      config,
      [],
      liveHopRules(kernelOf(full)),
    );
    expect(t.failedAt).toBe(4);
    const hop4 = t.hops[3]!;
    expect(hop4.rules!.endpoints).toEqual(['10.244.1.21:9000', '10.244.2.21:9000']);
    expect(hop4.rules!.differsFromCluster).toEqual({ kernelOnly: ['10.244.2.21:9000'], clusterOnly: [] });
    expect(hop4.detail).toBe(
      '1 ready endpoint(s); but the kernel on node1 (kernel) still sends 50.0% of new connections to 10.244.2.21:9000, ' +
        'which the cluster no longer has as serving endpoints (stale rules: is portway running and syncing there?)',
    );
    expect(formatUrlTrace({ ...t, src: '10.99.0.100' })).toContain('result: fails at hop 4');
  });

  it('an endpoint added in the cluster but not yet in the kernel: the request gets through, the difference is said', () => {
    const t = traceUrl(
      'http://myapp.example.com/',
      '10.99.0.100',
      full,
      config,
      [],
      liveHopRules(kernelOf(removed)),
    );
    expect(t.failedAt).toBeNull();
    expect(t.hops[3]!.rules!.endpoints).toEqual(['10.244.1.21:9000']);
    expect(t.hops[3]!.detail).toBe(
      '2 ready endpoint(s); kernel differs from the cluster: the cluster has 10.244.2.21:9000 which the kernel lacks (not programmed yet?)',
    );
  });
});
