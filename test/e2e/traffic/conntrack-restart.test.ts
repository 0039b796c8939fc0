// A UDP endpoint removed while the agent is not running: the agent's first sync after start has no
// record of that change, so only its sweep of the listed conntrack table (as kube-proxy ≥ 1.31 does)
// moves a client that keeps its source port off the removed endpoint.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { ECHO_UDP_PORT, type NodeInfo, type PodInfo } from '../harness/topology.js';
import { TrafficEnv, type AgentProcess, type EndpointSpec, type ServiceSpec, type TrafficClient } from './traffic-env.js';

let env: TrafficEnv;
let node: NodeInfo;
let pods: PodInfo[];
let agent: AgentProcess;
let configPath: string;
let client: TrafficClient;
let nodeClient: TrafficClient;

const dns: ServiceSpec = {
  name: 'dns',
  type: 'NodePort',
  clusterIP: '10.96.3.10',
  ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: ECHO_UDP_PORT, nodePort: 30111 }],
};
const ep = (pod: PodInfo): EndpointSpec => ({ ip: pod.ip, node: 'node1', pod: pod.name });

beforeAll(async () => {
  env = await TrafficEnv.create({ nodes: 1, podsPerNode: [2], tag: 'ctrestart' });
  node = env.topo.node(1);
  pods = node.pods;
  await execa('ip', ['-n', node.netns, 'route', 'add', 'default', 'dev', 'eth0']);
  configPath = await env.writeConfig(node);
  [client, nodeClient] = await Promise.all([env.client(env.topo.client.netns), env.client(node.netns)]);
}, 60_000);

afterAll(async () => {
  await env?.teardown();
});

describe('UDP: an endpoint removed while the agent was stopped', () => {
  for (const [label, host, port, sourcePort, from] of [
    ['NodePort from the LAN client', () => node.ip, 30111, 40011, () => client],
    ['ClusterIP from the node', () => dns.clusterIP, 53, 40012, () => nodeClient],
  ] as const) {
    it(`${label}: the first sync after start moves the flow to a live endpoint`, async () => {
      await env.writeService(dns, pods.map(ep));
      agent = await env.startAgentAndSync(node, configPath);
      const c = from();
      const first = await c.request('udp', host(), port, { sourcePort });
      expect(first.ok).toBe(true);
      for (let i = 0; i < 3; i++) expect((await c.request('udp', host(), port, { sourcePort })).pod).toBe(first.pod);
      expect(await agent.stop()).toBe(0);

      const stays = pods.find((p) => p.name !== first.pod)!;
      await env.writeService(dns, [ep(stays)]);
      agent = await env.startAgentAndSync(node, configPath);
      // The removed pod's server still runs: only a deleted conntrack entry sends the flow elsewhere.
      expect(await c.request('udp', host(), port, { sourcePort })).toMatchObject({ ok: true, pod: stays.name });
      expect(await agent.stop()).toBe(0);
    });
  }
});
