// Cluster mode end to end: the real `portway run --kubeconfig` in a node's network namespace, fed by the
// API stand-in, moving real packets from a client to pods. Needs root.
//
// The stand-in listens on 127.0.0.1 of the root namespace, which a process in the node namespace
// cannot reach; a Unix socket can cross namespaces, so two socat relays carry the connection:
//   node ns 127.0.0.1:PORT ─socat─► /tmp/…/api.sock ─socat─► root ns 127.0.0.1:PORT (stand-in)
// The agent's kubeconfig therefore names the stand-in's own URL, its certificate matches, and the test
// drives the stand-in in-process: objects through its HTTP API, an outage by stopping it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';
import { standInRequest } from '../../stand-in/client.js';
import { Topology, type NetnsProcess } from '../harness/topology.js';
import { DEFAULT_BACKOFF } from '../../../src/sources/api/informer.js';
import { httpEndpointSlice, httpService, readyAddress } from '../../fixtures/k8s-objects.js';

const ROOT = process.cwd();
const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;

const CLUSTER_IP = '10.96.0.50';
const METRICS = '127.0.0.1:10249';
const HEALTHZ = '127.0.0.1:10256';

const service = httpService('demo', 'web', CLUSTER_IP);
const slice = (ips: string[]) =>
  httpEndpointSlice({
    namespace: 'demo',
    name: 'web-1',
    service: 'web',
    endpoints: ips.map((ip) => readyAddress(ip, 'node1')),
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() },
  });
const node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node1', labels: { 'topology.kubernetes.io/zone': 'rack-1' } },
  status: {
    conditions: [{ type: 'Ready', status: 'True' }],
    addresses: [{ type: 'InternalIP', address: '10.99.0.11' }],
  },
};

async function until<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = 15_000,
  logs?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${logs ? `\n${logs()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

maybe('portway run --kubeconfig: API objects to traffic, and through an API outage', () => {
  let topo: Topology;
  let api: StandInApiServer;
  let dir: string;
  let agent: NetnsProcess;
  let rootRelay: ChildProcess;
  let backend = 'nft';
  const nodeNs = () => topo.node(1).netns;
  const logs = () => agent.output().split('\n').slice(-25).join('\n');

  const create = async (path: string, body: unknown) => {
    const res = await standInRequest(api, 'POST', path, body);
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const replace = async (path: string, body: unknown) => {
    const res = await standInRequest(api, 'PUT', path, body);
    if (res.status !== 200) throw new Error(`PUT ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const remove = async (path: string) => {
    const res = await standInRequest(api, 'DELETE', path);
    if (res.status !== 200) throw new Error(`DELETE ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const SERVICES = '/api/v1/namespaces/demo/services';
  const SLICES = '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices';

  const scrape = async (address: string, path: string) => {
    const res = await topo.exec(nodeNs(), 'curl', [
      '-s',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      '--max-time',
      '3',
      `http://${address}${path}`,
    ]);
    const lines = res.stdout.split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  };
  const metric = async (series: string): Promise<number | undefined> => {
    const { body } = await scrape(METRICS, '/metrics');
    const line = body.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  /** nat + filter as the kernel prints them, packet counters removed (traffic changes those). */
  const rules = async () => {
    const out: string[] = [];
    for (const table of ['nat', 'filter']) {
      const res = await topo.exec(nodeNs(), `iptables-${backend}-save`, ['-t', table]);
      out.push(res.stdout.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, ''));
    }
    return out.join('\n');
  };
  const request = () => topo.tcpRequest(topo.client.netns, CLUSTER_IP, 80, { timeoutMs: 1500 });
  const podsAnswering = async (tries: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < tries; i++) seen.add((await request()).pod);
    return [...seen].sort();
  };

  beforeAll(async () => {
    topo = await Topology.create({ nodes: 1, podsPerNode: 2, ipv6: false, tag: 'apitraffic' });
    // The client reaches service addresses through node1 (as a router would).
    await topo.addRoute(topo.client.netns, '10.96.0.0/16', topo.node(1).ip);
    api = new StandInApiServer();
    await api.start();
    api.put(node);
    dir = await mkdtemp(join(tmpdir(), 'portway-api-e2e-'));
    const sock = join(dir, 'api.sock');
    rootRelay = spawn('socat', [`UNIX-LISTEN:${sock},fork`, `TCP:127.0.0.1:${api.port}`], {
      stdio: 'ignore',
    });
    await until(
      'root relay socket',
      async () => ((await execa('test', ['-S', sock], { reject: false })).exitCode === 0 ? true : null),
      5000,
    );
    topo.start(nodeNs(), 'socat', [
      `TCP-LISTEN:${api.port},bind=127.0.0.1,fork,reuseaddr`,
      `UNIX-CONNECT:${sock}`,
    ]);
    await writeKubeconfig(api, join(dir, 'kubeconfig'));
    await writeFile(
      join(dir, 'config.yaml'),
      [
        'nodeName: node1',
        `nodeIPs: [${topo.node(1).ip}]`,
        'clusterCIDRs: [10.244.0.0/16]',
        'iptables: { minSyncPeriod: 100ms, syncPeriod: 30s }',
        'loadBalancer: { layer2: false }',
        '',
      ].join('\n'),
    );
    agent = topo.start(nodeNs(), process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'run',
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      '--config',
      join(dir, 'config.yaml'),
      '--metrics-bind-address',
      METRICS,
      '--healthz-bind-address',
      HEALTHZ,
    ]);
    await agent.waitFor(/iptables rules applied/, 30_000);
    backend = /"backend":"(nft|legacy)"/.exec(agent.output())?.[1] ?? 'nft';
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    rootRelay?.kill('SIGTERM');
    await topo?.teardown();
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('says how it runs: cluster mode, node, API server, family', () => {
    const line =
      agent
        .output()
        .split('\n')
        .find((l) => l.includes('portway agent starting')) ?? '';
    expect(JSON.parse(line)).toMatchObject({
      mode: 'cluster',
      nodeName: 'node1',
      api: api.url,
      families: ['IPv4'],
    });
    expect(agent.output()).toContain('ready=true zone=rack-1');
  });

  it('a Service and EndpointSlice created through the API carry traffic to both pods; deleting them stops it', async () => {
    await expect(request()).rejects.toThrow();
    await create(SERVICES, service);
    await create(SLICES, slice(topo.node(1).pods.map((p) => p.ip)));
    await until('traffic to the service', async () => (await request()).pod, 15_000, logs);
    expect(await podsAnswering(16)).toEqual(['node1-pod1', 'node1-pod2']);

    // One endpoint left: only that pod answers.
    await replace(`${SLICES}/web-1`, slice([topo.node(1).pods[0]!.ip]));
    await until(
      'only pod1',
      async () => ((await podsAnswering(6)).join() === 'node1-pod1' ? true : null),
      15_000,
      logs,
    );

    await remove(`${SLICES}/web-1`);
    await remove(`${SERVICES}/web`);
    await until(
      'traffic stops',
      async () =>
        await request().then(
          () => null,
          () => true,
        ),
      15_000,
      logs,
    );
    // Then the Service's REJECT rule goes too: nothing of it is left in the kernel.
    await until(
      'no rule mentions the service',
      async () => (!(await rules()).includes(CLUSTER_IP) ? true : null),
      15_000,
      logs,
    );
    expect(await metric('kubeproxy_network_programming_duration_seconds_count')).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('an API outage changes nothing in the kernel, traffic keeps flowing, and metrics say disconnected', async () => {
    await create(SERVICES, service);
    await create(SLICES, slice(topo.node(1).pods.map((p) => p.ip)));
    await until('traffic to the service', async () => (await request()).pod, 15_000, logs);
    expect(await metric('portway_api_connected')).toBe(1);
    const before = await rules();

    await api.stop();
    await until(
      'metrics show the outage',
      async () => ((await metric('portway_api_connected')) === 0 ? true : null),
      15_000,
      logs,
    );
    await new Promise((r) => setTimeout(r, 3000)); // a few seconds of outage
    expect(await metric('portway_api_disconnected_since_timestamp_seconds')).toBeGreaterThan(1e9);
    expect(await rules()).toBe(before);
    expect(await podsAnswering(16)).toEqual(['node1-pod1', 'node1-pod2']);
    // The rules are the last good ones: the proxy itself stays healthy (kube-proxy's behaviour), so
    // load balancers keep sending traffic to a node that forwards it correctly.
    expect((await scrape(HEALTHZ, '/healthz')).status).toBe(200);

    await api.start(); // same port, same objects
    // Each informer retries on its own backoff, capped at DEFAULT_BACKOFF.maxMs (30 s): after a long
    // outage on a loaded box the last one may legitimately come back only that long after the restart.
    await until(
      'reconnected',
      async () => ((await metric('portway_api_connected')) === 1 ? true : null),
      DEFAULT_BACKOFF.maxMs + 15_000,
      logs,
    );
    expect(await rules()).toBe(before);
    // Changes flow again after the outage.
    await replace(`${SLICES}/web-1`, slice([topo.node(1).pods[1]!.ip]));
    await until(
      'only pod2',
      async () => ((await podsAnswering(6)).join() === 'node1-pod2' ? true : null),
      15_000,
      logs,
    );
  }, 120_000);

  it('SIGTERM stops the agent cleanly and leaves the rules in place', async () => {
    const before = await rules();
    await agent.stop();
    expect(agent.child.exitCode).toBe(0);
    expect(agent.output()).toContain('stopping; rules stay in place');
    expect(await rules()).toBe(before);
    expect(await podsAnswering(3)).toEqual(['node1-pod2']);
  }, 30_000);
});
