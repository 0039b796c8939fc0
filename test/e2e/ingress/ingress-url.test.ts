// Ingress end to end with real HTTP (issue 12): portway does not implement L7, so a few lines of node http
// in two pods play the ingress controller (routing by Host header to the backend Service's cluster IP).
// The controller is exposed by a LoadBalancer Service whose address the agents (`portway run` in the node
// namespaces, from the same manifests) allocate and announce by ARP. A client on the LAN asks for
// myapp.example.com at the published address; `portway trace --url` must predict the backend pods the
// client actually reaches, and breaking hop 4 (the backend's endpoints, its port name) must be named
// by `trace` and by `status`; with the owner's agent killed, `trace --down OWNER` names the node that
// answers ARP instead (a dry run cannot see the agent die).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { rankNodes } from '../../../src/l2/election.js';
import { type NetnsProcess, CLIENT_IP, ECHO_TCP_PORT, execInNetns } from '../harness/topology.js';
import { arping, requireNativeAddon } from '../l2/topology.js';
import { pollFor } from '../../fixtures/polling.js';
import {
  ROOT,
  TrafficEnv,
  endpointSliceObject,
  serviceObject,
  type AgentProcess,
  type ServiceSpec,
} from '../traffic/traffic-env.js';

const VIP = '10.99.0.200';
const HOST = 'myapp.example.com';
const PROXY_PORT = 8090;
const [OWNER, STANDBY] = rankNodes(VIP, ['node1', 'node2']) as [string, string];

// The ingress controller: pod 1 of each node. The backend demo/shop: pod 2 of each node (echo servers).
const controller: ServiceSpec = {
  name: 'ingress-controller',
  namespace: 'ingress',
  type: 'LoadBalancer',
  clusterIP: '10.96.0.80',
  ports: [{ name: 'http', port: 80, targetPort: PROXY_PORT, nodePort: 30080 }],
};
const shop = (portName = 'http'): ServiceSpec => ({
  name: 'shop',
  namespace: 'demo',
  clusterIP: '10.96.0.60',
  ports: [{ name: portName, port: 80, targetPort: ECHO_TCP_PORT }],
});

// Route by Host header to "clusterIP:port"; the echo server answers one line per connection ("<pod> <client>").
const PROXY_SOURCE = `
import { createServer } from 'node:http';
import { connect } from 'node:net';
const routes = JSON.parse(process.argv[2]);
createServer((req, res) => {
  const target = routes[(req.headers.host ?? '').split(':')[0]];
  if (!target) { res.writeHead(404); res.end('no route\\n'); return; }
  const [host, port] = target.split(':');
  const sock = connect({ host, port: Number(port), timeout: 2000 });
  let line = '';
  sock.on('data', (d) => { line += d; });
  sock.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(line); });
  const fail = (why) => { sock.destroy(); if (!res.headersSent) { res.writeHead(502); res.end('backend ' + why + '\\n'); } };
  sock.on('timeout', () => fail('timeout'));
  sock.on('error', (e) => fail(e.code));
}).listen(${PROXY_PORT}, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;

let env: TrafficEnv;
const agents: AgentProcess[] = [];
const proxies: NetnsProcess[] = [];
let configPath = '';

const ingressManifest = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: test-proxy }
spec: { controller: example.com/test-proxy }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: shop, namespace: demo }
spec:
  ingressClassName: test-proxy
  rules:
    - host: ${HOST}
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: shop, port: { name: http } } } }
`;

const clusterManifest = `apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: lan }
spec: { addresses: ["${VIP}-10.99.0.210"] }
---
apiVersion: portway.io/v1alpha1
kind: L2Advertisement
metadata: { name: lan }
spec: { ipAddressPools: [lan] }
${[1, 2]
  .map(
    (k) => `---
apiVersion: v1
kind: Node
metadata: { name: node${k} }
status:
  addresses: [{ type: InternalIP, address: 10.99.0.${10 + k} }]
  conditions: [{ type: Ready, status: "True" }]
`,
  )
  .join('')}`;

const pod = (node: number, j: number) => env.topo.nodes[node - 1]!.pods[j - 1]!;

async function writeShop(portName: string, ready: boolean): Promise<void> {
  const s = shop(portName);
  const endpoints = ready ? [1, 2].map((n) => ({ ip: pod(n, 2).ip, node: `node${n}`, pod: pod(n, 2).name })) : [];
  await env.writeManifest('shop.yaml', [serviceObject(s), endpointSliceObject(s, endpoints)]);
}

const cli = (args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, reject: false });

interface TraceJson {
  failedAt: number | null;
  hops: Array<{ hop: number; ok: boolean; detail: string; rules?: { node: string; endpoints: string[] } }>;
}
async function traceUrl(down: string[] = []): Promise<TraceJson> {
  const r = await cli(['trace', '-f', env.manifests, '--config', configPath, '--url', `http://${HOST}/cart`,
    '--src', CLIENT_IP, '-o', 'json', ...(down.length > 0 ? ['--down', ...down] : [])]);
  if (r.exitCode !== 0) throw new Error(`trace --url exited ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as TraceJson;
}
async function statusText(): Promise<string> {
  const r = await cli(['status', '--manifests', env.manifests, '--config', configPath]);
  if (r.exitCode !== 0) throw new Error(`status exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** One HTTP request from the client namespace to the published address with Host: myapp.example.com. */
async function httpGet(): Promise<{ code: number; body: string }> {
  const r = await execInNetns(env.topo.client.netns, 'curl', [
    '-s', '-m', '3', '-o', '-', '-w', '\\n%{http_code}', '--resolve', `${HOST}:80:${VIP}`, `http://${HOST}/cart`,
  ]);
  const lines = r.stdout.trimEnd().split('\n');
  const code = Number(lines.pop());
  return { code: Number.isNaN(code) ? 0 : code, body: lines.join('\n') };
}

/** Until the client's ARP request for the published address is answered by `node`'s interface. */
async function waitForArpFrom(node: string): Promise<void> {
  const link = (await execa('ip', ['-n', env.topo.node(node).netns, '-j', 'link', 'show', 'eth0'])).stdout;
  await pollFor(`${node} to answer ARP for the published address`, 30_000, async () => {
    const r = await arping(env.topo.client.netns, VIP, 1, 0.2);
    return r.macs[0] !== undefined && link.includes(r.macs[0]) ? true : null;
  }, logs);
}

const logs = () => agents.map((a) => `--- ${a.node.name}\n${a.tail(15)}`).join('\n');

beforeAll(async () => {
  requireNativeAddon();
  env = await TrafficEnv.create({ nodes: 2, podsPerNode: 2, ipv6: false, tag: 'ingressurl' });
  const proxyScript = join(env.dir, 'proxy.mjs');
  await writeFile(proxyScript, PROXY_SOURCE);
  const routes = JSON.stringify({ [HOST]: `${shop().clusterIP}:80` });
  for (const n of [1, 2]) {
    const p = env.topo.start(pod(n, 1).netns, process.execPath, [proxyScript, routes]);
    proxies.push(p);
    await p.waitFor(/ready/, 20_000);
  }
  await env.writeManifest('cluster.yaml', clusterManifest);
  await env.writeManifest('ingress.yaml', ingressManifest);
  await env.writeManifest('controller.yaml', [
    serviceObject(controller),
    endpointSliceObject(controller, [1, 2].map((n) => ({ ip: pod(n, 1).ip, node: `node${n}`, pod: pod(n, 1).name }))),
  ]);
  await writeShop('http', true);
  const extra = {
    iptables: { minSyncPeriod: '0s', syncPeriod: '30s' },
    loadBalancer: { memberPort: 7473 },
    ingress: { classes: [{ name: 'test-proxy', service: 'ingress/ingress-controller' }] },
  };
  for (const node of env.topo.nodes) {
    const path = await env.writeConfig(node, { extra });
    if (node.name === 'node1') configPath = path;
    agents.push(env.startAgent(node, path));
  }
  for (const a of agents) await a.waitForCount(/layer2: started/, 1, 60_000);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await env?.teardown();
});

describe('Ingress with real HTTP through the published address', () => {
  it('the client reaches myapp.example.com; trace --url predicts the owner and the backend pods it hits', async () => {
    await waitForArpFrom(OWNER);
    const hit = new Set<string>();
    await pollFor('HTTP answers from both backend pods', 30_000, async () => {
      const r = await httpGet();
      if (r.code === 200) hit.add(r.body.split(' ')[0]!);
      return hit.size >= 2 ? true : null;
    }, logs);
    for (let i = 0; i < 6; i++) {
      const r = await httpGet();
      expect(r.code).toBe(200);
      hit.add(r.body.split(' ')[0]!);
    }

    const t = await traceUrl();
    expect(t.failedAt).toBeNull();
    expect(t.hops[0]!.detail).toBe(`${VIP} answered by ${OWNER}`);
    expect(t.hops[1]!.rules!.node).toBe(OWNER);
    expect(t.hops[1]!.rules!.endpoints).toEqual([`${pod(1, 1).ip}:${PROXY_PORT}`, `${pod(2, 1).ip}:${PROXY_PORT}`]);
    // The backend set trace predicts is exactly the set of pods the client's requests reached.
    const predicted = t.hops[3]!.rules!.endpoints.map((e) => e.split(':')[0]).sort();
    const reached = [...hit].map((name) => [1, 2].map((n) => pod(n, 2)).find((p) => p.name === name)!.ip).sort();
    expect(reached).toEqual(predicted);
    expect(await statusText()).toContain(`published: ${VIP} (ARP: ${OWNER})`);
  }, 120_000);

  it('the backend loses its endpoints: the client gets 502, trace and status name hop 4', async () => {
    await writeShop('http', false);
    await pollFor('the controller to fail to reach the backend', 30_000, async () =>
      (await httpGet()).code === 502 ? true : null, logs);
    const t = await traceUrl();
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noEndpoints: Service demo/shop port 80 has no ready endpoints');
    expect(await statusText()).toMatch(/myapp\.example\.com\/ \(Prefix\) -> demo\/shop:http -> noEndpoints: Service demo\/shop port 80 has no ready endpoints/);
  }, 60_000);

  it('the backend port is renamed: trace and status name hop 4 (the Ingress asks for port name http)', async () => {
    await writeShop('web', true);
    await pollFor('the backend to answer again', 30_000, async () => ((await httpGet()).code === 200 ? true : null), logs);
    const t = await traceUrl();
    expect(t.failedAt).toBe(4);
    expect(t.hops.at(-1)!.detail).toBe('noPort: Service demo/shop has no port name "http" (ports: web(80))');
    expect(await statusText()).toContain('-> demo/shop:http -> noPort: Service demo/shop has no port name "http" (ports: web(80))');
  }, 60_000);

  // Last: a dead agent leaves its node's rules as they were, which the steps above must not meet.
  it("the owner's agent is killed: the standby answers ARP, the client still gets through, trace --down names it", async () => {
    const owner = agents.find((a) => a.node.name === OWNER)!;
    owner.child.kill('SIGKILL');
    await waitForArpFrom(STANDBY);
    await pollFor('HTTP through the standby', 30_000, async () => ((await httpGet()).code === 200 ? true : null), logs);
    const t = await traceUrl([OWNER]);
    expect(t.hops[0]!.detail).toBe(`${VIP} answered by ${STANDBY}`);
    expect(t.hops[1]!.rules!.node).toBe(STANDBY);
    const none = await traceUrl(['node1', 'node2']);
    expect(none.failedAt).toBe(1);
    expect(none.hops[0]!.detail).toMatch(new RegExp(`^${VIP.replace(/\./g, '\\.')}: no node answers ARP`));
  }, 60_000);
});
