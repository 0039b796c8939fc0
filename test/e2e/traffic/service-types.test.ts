// Real connections through the rules the agent programs (not rule text): the agent runs as a process in
// both node namespaces of a two-node topology (node1: two pods, node2: one pod, a client on the LAN) and
// every answer says which pod served it and which source address that pod saw.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { CLIENT_IP, type NodeInfo } from '../harness/topology.js';
import {
  hasDnat,
  okCount,
  podsHit,
  TrafficEnv,
  echoHttpPort,
  type EndpointSpec,
  type ServiceSpec,
  type TrafficClient,
} from './traffic-env.js';

const SECOND_CLIENT_IP = '10.99.0.101';
const EXTERNAL_IP = '198.51.100.10';
const LB_IP = '192.0.2.100';
const LB_FW_IP = '192.0.2.101';
const TRIES = 30;

let env: TrafficEnv;
let node1: NodeInfo;
let node2: NodeInfo;
let client: TrafficClient;
let podClient: TrafficClient; // in node2-pod1
let node1Client: TrafficClient;
let all: EndpointSpec[];

const web: ServiceSpec = { name: 'web', clusterIP: '10.96.0.10', ports: [echoHttpPort()] };
const webNodePort: ServiceSpec = {
  name: 'web-np',
  type: 'NodePort',
  clusterIP: '10.96.0.11',
  ports: [echoHttpPort(30080)],
};
const webExternal: ServiceSpec = {
  name: 'web-ext',
  clusterIP: '10.96.0.12',
  externalIPs: [EXTERNAL_IP],
  ports: [echoHttpPort()],
};
const webLb: ServiceSpec = {
  name: 'web-lb',
  type: 'LoadBalancer',
  clusterIP: '10.96.0.13',
  loadBalancerIngress: [LB_IP],
  ports: [echoHttpPort(30081)],
};
const webLocal: ServiceSpec = {
  name: 'web-local',
  type: 'NodePort',
  clusterIP: '10.96.0.14',
  externalTrafficPolicy: 'Local',
  ports: [echoHttpPort(30082)],
};
const empty: ServiceSpec = {
  name: 'empty',
  type: 'NodePort',
  clusterIP: '10.96.0.15',
  ports: [echoHttpPort(30083)],
};
const webFirewalled: ServiceSpec = {
  name: 'web-fw',
  type: 'LoadBalancer',
  clusterIP: '10.96.0.16',
  loadBalancerIngress: [LB_FW_IP],
  loadBalancerSourceRanges: [`${CLIENT_IP}/32`],
  ports: [echoHttpPort(30084)],
};
const sticky: ServiceSpec = {
  name: 'sticky',
  clusterIP: '10.96.0.17',
  sessionAffinity: { timeoutSeconds: 600 },
  ports: [echoHttpPort()],
};

beforeAll(async () => {
  env = await TrafficEnv.create({ nodes: 2, podsPerNode: [2, 1], tag: 'svctypes' });
  const { topo } = env;
  node1 = topo.node(1);
  node2 = topo.node(2);
  all = topo.pods.map((p) => ({ ip: p.ip, node: `node${p.node}`, pod: p.name }));
  for (const svc of [web, webNodePort, webExternal, webLb, webFirewalled, sticky])
    await env.writeService(svc, all);
  await env.writeService(
    webLocal,
    all.filter((e) => e.pod === 'node1-pod1'),
  ); // one local endpoint, on node1
  await env.writeService(empty, []);
  // The client reaches external and LoadBalancer addresses through node1 (what a router or ARP would do);
  // nodes send service traffic out of eth0 (a node has a default route in real life; these have none).
  await topo.addRoute(topo.client.netns, `${EXTERNAL_IP}/32`, node1.ip);
  await topo.addRoute(topo.client.netns, '192.0.2.0/24', node1.ip);
  await execa('ip', ['-n', topo.client.netns, 'addr', 'add', `${SECOND_CLIENT_IP}/24`, 'dev', 'eth0']);
  // Nodes get a default route out of the LAN (as real nodes have): service traffic they send and
  // forwarded traffic that the firewall rules drop must get past routing first.
  for (const n of topo.nodes) await execa('ip', ['-n', n.netns, 'route', 'add', 'default', 'dev', 'eth0']);
  // REJECT answers with ICMP port-unreachable, which the kernel rate-limits per peer (1/s after a small
  // burst): with ~100 requests a second from one client, a refusal would sometimes come only on the SYN
  // retransmit 1 s later. The limit is the kernel's, not the rules': lift it so "refused at once" is testable.
  for (const n of topo.nodes)
    await execa('ip', ['netns', 'exec', n.netns, 'sysctl', '-q', '-w', 'net.ipv4.icmp_ratelimit=0']);
  await Promise.all(topo.nodes.map(async (n) => env.startAgentAndSync(n, await env.writeConfig(n))));
  [client, podClient, node1Client] = await Promise.all([
    env.client(topo.client.netns),
    env.client(topo.pod('node2-pod1').netns),
    env.client(node1.netns),
  ]);
}, 90_000);

afterAll(async () => {
  await env?.teardown();
});

const allPods = () => all.map((e) => e.pod ?? '').sort();

describe('ClusterIP', () => {
  it('from a pod reaches every ready backend', async () => {
    const counts = await podClient.spread('tcp', web.clusterIP, 80, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(allPods());
  });

  it('from the node itself reaches every ready backend', async () => {
    const counts = await node1Client.spread('tcp', web.clusterIP, 80, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(allPods());
  });
});

describe('traffic from outside the cluster', () => {
  it('NodePort on the node address reaches every backend, masqueraded (externalTrafficPolicy Cluster)', async () => {
    const results = await Promise.all(
      Array.from({ length: TRIES }, () => client.request('tcp', node1.ip, 30080)),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect([...new Set(results.map((r) => r.pod))].sort()).toEqual(allPods());
    // The backend sees the node (its LAN address, or its pod-link address for a local pod), never the client.
    for (const r of results) expect([node1.ip, node1.podGateway]).toContain(r.client);
  });

  it('externalIPs routed to a node reach every backend', async () => {
    const counts = await client.spread('tcp', EXTERNAL_IP, 80, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(allPods());
  });

  it('a LoadBalancer ingress IP (status.loadBalancer.ingress) routed to a node reaches every backend', async () => {
    const counts = await client.spread('tcp', LB_IP, 80, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(allPods());
  });

  it('externalTrafficPolicy Local keeps the client source address and uses local endpoints only', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => client.request('tcp', node1.ip, 30082)),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    for (const r of results) {
      expect(r.pod).toBe('node1-pod1');
      expect(r.client).toBe(CLIENT_IP);
    }
  });

  it('externalTrafficPolicy Local on a node without local endpoints drops (no answer, no refusal)', async () => {
    const r = await client.request('tcp', node2.ip, 30082, { timeoutMs: 800 });
    expect(r).toMatchObject({ ok: false, error: 'timeout' });
  });

  it('loadBalancerSourceRanges let the listed client in and keep another address out', async () => {
    const allowed = await client.spread('tcp', LB_FW_IP, 80, 6, { source: CLIENT_IP });
    expect(okCount(allowed)).toBe(6);
    const denied = await client.request('tcp', LB_FW_IP, 80, { source: SECOND_CLIENT_IP, timeoutMs: 800 });
    expect(denied).toMatchObject({ ok: false, error: 'timeout' });
    // The same second address is not blocked in general: only this Service's firewall drops it.
    expect(await client.request('tcp', LB_IP, 80, { source: SECOND_CLIENT_IP })).toMatchObject({ ok: true });
  });
});

describe('a Service without endpoints', () => {
  it('refuses connections at once (REJECT), from a pod and on its NodePort', async () => {
    for (const [c, host, port] of [
      [podClient, empty.clusterIP, 80],
      [client, node1.ip, 30083],
    ] as const) {
      const r = await c.request('tcp', host, port, { timeoutMs: 3000 });
      expect({ host, port, ...r, fast: r.ms < 500 }).toMatchObject({
        ok: false,
        error: 'ECONNREFUSED',
        fast: true,
      });
    }
  });
});

describe('sessionAffinity ClientIP', () => {
  it('sticks to one backend; removing that backend moves the client to another one, which sticks', async () => {
    const first = await podClient.spread('tcp', sticky.clusterIP, 80, 12, {}, 1);
    expect(okCount(first)).toBe(12);
    expect(podsHit(first)).toHaveLength(1);
    const chosen = podsHit(first)[0]!;

    const remaining = all.filter((e) => e.pod !== chosen);
    const chosenIp = all.find((e) => e.pod === chosen)!.ip;
    expect(hasDnat(await env.iptablesSave(node2), 'default/sticky:http', chosenIp)).toBe(true);
    const started = Date.now();
    await env.writeService(sticky, remaining);
    await env.waitForRules(
      node2,
      `no DNAT to ${chosenIp} for sticky`,
      (nat) => !hasDnat(nat, 'default/sticky:http', chosenIp),
    );
    const moved = Date.now() - started;

    const after = await podClient.spread('tcp', sticky.clusterIP, 80, 12, {}, 1);
    expect(okCount(after)).toBe(12);
    expect(podsHit(after)).toHaveLength(1);
    expect(podsHit(after)[0]).not.toBe(chosen);
    expect(moved).toBeLessThan(5000);
  });
});
