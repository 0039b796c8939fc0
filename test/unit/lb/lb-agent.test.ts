import { afterEach, describe, expect, test } from '@jest/globals';
import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import { FakeSysctl } from '../../../src/dataplane/sysctl.js';
import type { NetworkLink } from '../../../src/dataplane/interfaces.js';
import { LoadBalancerAgent } from '../../../src/lb/lb-agent.js';
import { ARP_ANNOUNCE, ARP_IGNORE } from '../../../src/l2/strict-arp.js';
import { rankNodes } from '../../../src/l2/election.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { fakeOpener } from '../l2/fakes.js';
import { lbManifests, stateOf } from './manifest-fixtures.js';

const VIP = '10.99.0.200';
const OWNER = rankNodes(VIP, ['node1', 'node2'])[0] as string;
const agents: LoadBalancerAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

const upLink = (ifname: string, ifindex: number): NetworkLink => ({
  ifname,
  ifindex,
  flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
  master: null,
  kind: 'veth',
  slaveKind: null,
  linkType: 'ether',
});

function makeAgent(
  config = defaultConfig(),
  sysctl = new FakeSysctl(),
  memberPort: number | null = 0,
  links: NetworkLink[] = [upLink('eth0', 2)],
) {
  const logger = new RecordingLogger();
  const { open, sockets } = fakeOpener();
  const agent = new LoadBalancerAgent({
    config,
    nodeName: OWNER,
    nodeIPs: [OWNER === 'node1' ? '10.99.0.11' : '10.99.0.12'],
    logger,
    sysctl,
    listLinks: async () => links,
    speaker: {
      ...(memberPort !== null ? { memberPort } : {}),
      openSocket: open,
      memberBindAddress: '127.0.0.1',
      probe: async () => true,
      startupHoldMs: 0,
    },
  });
  agents.push(agent);
  return { agent, logger, sockets };
}

describe('LoadBalancerAgent', () => {
  test('process() returns the state with allocated ingress IPs, before and without start()', () => {
    const { agent } = makeAgent();
    const out = agent.process(stateOf(lbManifests()));
    expect(out.servicePorts[0]?.loadBalancerIngress).toEqual([{ ip: VIP, ipMode: 'VIP' }]);
    expect(agent.layer2()).toBeNull();
  });

  test('start(): layer2 announces the owned address on the suitable interface', async () => {
    const { agent } = makeAgent();
    agent.process(stateOf(lbManifests()));
    await agent.start();
    await agent.settled();
    expect(agent.layer2()?.owned()).toEqual({ eth0: [VIP] });
  });

  test('loadBalancer.excludeInterfaces reaches the speaker: unset = MetalLB default list, else as given', async () => {
    const links = [upLink('eth0', 2), upLink('lan1', 3), upLink('veth1a2b', 4)];
    const byDefault = makeAgent(defaultConfig(), new FakeSysctl(), 0, links).agent;
    byDefault.process(stateOf(lbManifests()));
    await byDefault.start();
    await byDefault.settled();
    expect(byDefault.layer2()?.owned()).toEqual({ eth0: [VIP], lan1: [VIP] }); // veth* excluded by default
    const configured = makeAgent(
      parseConfig({ loadBalancer: { excludeInterfaces: ['^eth0$'] } }),
      new FakeSysctl(),
      0,
      links,
    ).agent;
    configured.process(stateOf(lbManifests()));
    await configured.start();
    await configured.settled();
    expect(configured.layer2()?.owned()).toEqual({ lan1: [VIP], veth1a2b: [VIP] });
  });

  test('layer2 starts only once an L2Advertisement exists, and then follows the states', async () => {
    const { agent } = makeAgent();
    agent.process(stateOf(lbManifests({ ads: '' })));
    await agent.start();
    expect(agent.layer2()).toBeNull();
    agent.process(stateOf(lbManifests()));
    await agent.settled();
    expect(agent.layer2()?.owned()).toEqual({ eth0: [VIP] });
  });

  test('layer2: false never starts member health or sockets', async () => {
    const { agent, sockets } = makeAgent(parseConfig({ loadBalancer: { layer2: false } }));
    agent.process(stateOf(lbManifests()));
    await agent.start();
    expect(agent.layer2()).toBeNull();
    expect(sockets.size).toBe(0);
  });

  test('strictARP: set when ipvs.strictARP, and a warning at start-up when it cannot be made right', async () => {
    const good = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0' });
    const on = parseConfig({ ipvs: { strictARP: true }, loadBalancer: { layer2: false } });
    await makeAgent(on, good).agent.start();
    expect(good.writes).toEqual([
      { key: ARP_IGNORE, value: '1' },
      { key: ARP_ANNOUNCE, value: '2' },
    ]);
    const missing = new FakeSysctl({ [ARP_IGNORE]: '1' });
    const { agent, logger } = makeAgent(on, missing);
    await agent.start();
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual([
      expect.stringMatching(
        /^strictARP: net\/ipv4\/conf\/all\/arp_announce is missing, strictARP needs 2 .*more than one node may answer ARP/,
      ),
    ]);
  });

  test('strictARP not wanted (iptables mode, default): sysctls untouched', async () => {
    const sysctl = new FakeSysctl({ [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0' });
    await makeAgent(
      { ...defaultConfig(), loadBalancer: { ...defaultConfig().loadBalancer, layer2: false } },
      sysctl,
    ).agent.start();
    expect(sysctl.writes).toEqual([]);
  });

  test('a member port already in use is logged and the agent keeps allocating', async () => {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const { agent, logger } = makeAgent(
        parseConfig({ loadBalancer: { memberPort: port, memberBindAddress: '127.0.0.1' } }),
        new FakeSysctl(),
        null,
      );
      agent.process(stateOf(lbManifests()));
      await agent.start();
      expect(agent.layer2()).toBeNull();
      expect(logger.records.find((r) => r.level === 'error')?.message).toMatch(/cannot start member health/);
      expect(agent.process(stateOf(lbManifests())).servicePorts[0]?.loadBalancerIngress[0]?.ip).toBe(VIP);
    } finally {
      server.close();
    }
  });
});
