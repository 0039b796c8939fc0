// Endpoint changes made the way an operator of the manifest mode makes them — by editing the
// EndpointSlice file in the watched directory — change where new connections go within one sync, and
// UDP clients that keep their source port move off a removed endpoint (conntrack entries deleted).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { ECHO_UDP_PORT, type NodeInfo, type PodInfo } from '../harness/topology.js';
import {
  echoHttpPort,
  hasDnat,
  okCount,
  RULES_APPLIED,
  podsHit,
  TrafficEnv,
  type AgentProcess,
  type EndpointSpec,
  type ServiceSpec,
  type TrafficClient,
} from './traffic-env.js';

const TRIES = 30;
/** A change must be in the kernel within debounce (200 ms) + minSyncPeriod (100 ms) + one sync; generous for a loaded CI box. */
const ONE_SYNC_MS = 3000;

let env: TrafficEnv;
let node: NodeInfo;
let pods: PodInfo[];
let agent: AgentProcess;
let client: TrafficClient;
let nodeClient: TrafficClient;

const web: ServiceSpec = {
  name: 'web',
  type: 'NodePort',
  clusterIP: '10.96.1.10',
  ports: [
    echoHttpPort(30090),
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: ECHO_UDP_PORT, nodePort: 30091 },
  ],
};

const ep = (pod: PodInfo, extra: Partial<EndpointSpec> = {}): EndpointSpec => ({
  ip: pod.ip,
  node: 'node1',
  pod: pod.name,
  ...extra,
});

/** Rewrite web's EndpointSlice and wait until node1's rules DNAT to exactly `expected` (by pod IP). */
async function setEndpoints(endpoints: EndpointSpec[], expected: PodInfo[]): Promise<number> {
  const started = Date.now();
  const syncsBefore = agent.count(RULES_APPLIED);
  await env.writeService(web, endpoints);
  const want = new Set(expected.map((p) => p.ip));
  await env.waitForRules(node, `DNAT to exactly ${[...want].join(', ')}`, (nat) =>
    pods.every((p) => hasDnat(nat, 'default/web:http', p.ip) === want.has(p.ip)),
  );
  // The sync logs after its conntrack cleanup, which follows the restore: wait for that too.
  await agent.waitForCount(RULES_APPLIED, syncsBefore + 1);
  return Date.now() - started;
}

beforeAll(async () => {
  env = await TrafficEnv.create({ nodes: 1, podsPerNode: [3], tag: 'epchange' });
  node = env.topo.node(1);
  pods = node.pods;
  await execa('ip', ['-n', node.netns, 'route', 'add', 'default', 'dev', 'eth0']);
  await env.writeService(web, [ep(pods[0]!), ep(pods[1]!)]);
  agent = await env.startAgentAndSync(node, await env.writeConfig(node));
  [client, nodeClient] = await Promise.all([env.client(env.topo.client.netns), env.client(node.netns)]);
}, 60_000);

afterAll(async () => {
  await env?.teardown();
});

const names = (...ps: PodInfo[]) => ps.map((p) => p.name).sort();

describe('TCP: new connections follow the EndpointSlice file', () => {
  it('starts on the two listed endpoints', async () => {
    const counts = await client.spread('tcp', node.ip, 30090, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(names(pods[0]!, pods[1]!));
  });

  it('an added endpoint receives new connections after one sync', async () => {
    const took = await setEndpoints([ep(pods[0]!), ep(pods[1]!), ep(pods[2]!)], pods);
    expect(took).toBeLessThan(ONE_SYNC_MS);
    const counts = await client.spread('tcp', node.ip, 30090, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(names(...pods));
  });

  it('a removed endpoint receives no new connection after one sync', async () => {
    const took = await setEndpoints([ep(pods[0]!), ep(pods[2]!)], [pods[0]!, pods[2]!]);
    expect(took).toBeLessThan(ONE_SYNC_MS);
    const counts = await client.spread('tcp', node.ip, 30090, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(names(pods[0]!, pods[2]!));
  });

  it('a terminating endpoint gets no new connection while a ready one exists, and is the fallback when none does', async () => {
    const terminating = { ready: false, serving: true, terminating: true };
    await setEndpoints([ep(pods[0]!), ep(pods[2]!, terminating)], [pods[0]!]);
    const counts = await client.spread('tcp', node.ip, 30090, TRIES);
    expect(okCount(counts)).toBe(TRIES);
    expect(podsHit(counts)).toEqual(names(pods[0]!));

    // Every endpoint terminating but still serving: kube-proxy falls back to them rather than reject.
    await setEndpoints([ep(pods[0]!, terminating), ep(pods[2]!, terminating)], [pods[0]!, pods[2]!]);
    const fallback = await client.spread('tcp', node.ip, 30090, TRIES);
    expect(okCount(fallback)).toBe(TRIES);
    expect(podsHit(fallback)).toEqual(names(pods[0]!, pods[2]!));
  });
});

describe('UDP: a client that keeps its source port moves off a removed endpoint', () => {
  for (const [label, host, port, sourcePort, from] of [
    ['NodePort from the LAN client', () => node.ip, 30091, 40001, () => client],
    ['ClusterIP from the node', () => web.clusterIP, 53, 40002, () => nodeClient],
  ] as const) {
    it(label, async () => {
      await setEndpoints([ep(pods[0]!), ep(pods[1]!)], [pods[0]!, pods[1]!]);
      const c = from();
      const first = await c.request('udp', host(), port, { sourcePort });
      expect(first.ok).toBe(true);
      // Same source port, same conntrack entry: the same endpoint every time.
      for (let i = 0; i < 5; i++)
        expect((await c.request('udp', host(), port, { sourcePort })).pod).toBe(first.pod);
      const stays = pods.find((p) => p.name !== first.pod && (p === pods[0] || p === pods[1]))!;
      await setEndpoints([ep(stays)], [stays]);
      // The removed pod's server still runs: only a deleted conntrack entry sends the flow elsewhere.
      const after = await c.request('udp', host(), port, { sourcePort });
      expect(after).toMatchObject({ ok: true, pod: stays.name });
      expect(
        agent.records().some((r) => r.msg === 'iptables rules applied' && Number(r.conntrackDeleted) > 0),
      ).toBe(true);
    });
  }
});
