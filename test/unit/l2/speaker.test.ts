import { afterEach, describe, expect, test } from '@jest/globals';
import { LoadBalancerController } from '../../../src/lb/lb-controller.js';
import { rankNodes } from '../../../src/l2/election.js';
import { L2Speaker, interfaceOfNodeIP, peersOf, planInterfaces } from '../../../src/l2/speaker.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';
import { ManualTimers, fakeOpener } from './fakes.js';

const VIP = '10.99.0.200';
const [OWNER, STANDBY] = rankNodes(VIP, ['node1', 'node2']) as [string, string];
const NODE_IP: Record<string, string> = { node1: '10.99.0.11', node2: '10.99.0.12' };
const ad = (name: string, spec: string) => `---
apiVersion: portway.io/v1alpha1
kind: L2Advertisement
metadata: { name: ${name} }
spec: ${spec}
`;

describe('planInterfaces', () => {
  const existing = new Set(['lo', 'eth0', 'eth1']);
  test('no interfaces named: the interface holding the node IP', () => {
    const plan = planInterfaces('node1', stateOf(lbManifests()), existing, 'eth0', ['10.99.0.11']);
    expect(plan).toEqual({ interfaces: ['eth0'], defaults: ['eth0'], problems: [] });
  });

  test('a missing interface names the L2Advertisement and the field; the others still count', () => {
    const state = stateOf(lbManifests({ ads: ad('named', '{ interfaces: [eth1, eth9] }') }));
    const plan = planInterfaces('node1', state, existing, 'eth0', ['10.99.0.11']);
    expect(plan.interfaces).toEqual(['eth1']);
    expect(plan.defaults).toEqual([]);
    expect(plan.problems).toEqual([
      'L2Advertisement named: spec.interfaces[1]: interface "eth9" does not exist on node node1',
    ]);
  });

  test('advertisements not selecting this node are ignored', () => {
    const state = stateOf(
      lbManifests({
        ads: ad('other', '{ nodeSelectors: [{ matchLabels: { role: core } }], interfaces: [eth9] }'),
      }),
    );
    expect(planInterfaces('node1', state, existing, 'eth0', []).problems).toEqual([]);
  });

  test('empty interfaces but no interface holds the node IP', () => {
    const plan = planInterfaces('node1', stateOf(lbManifests()), existing, null, ['10.99.0.11']);
    expect(plan.interfaces).toEqual([]);
    expect(plan.problems[0]).toMatch(
      /^L2Advertisement lan: spec.interfaces is empty and no interface on node node1 holds the node IP \(10.99.0.11\)/,
    );
  });
});

test('interfaceOfNodeIP prefers IPv4; peersOf lists other nodes with an address', () => {
  const addrs = [
    { ifname: 'eth1', address: 'fd00::1' },
    { ifname: 'eth0', address: '10.0.0.1' },
  ];
  expect(interfaceOfNodeIP(addrs, ['fd00::1', '10.0.0.1'])).toBe('eth0');
  expect(interfaceOfNodeIP(addrs, ['192.0.2.1'])).toBeNull();
  const state = stateOf(lbManifests());
  expect(peersOf(state.nodes, 'node1')).toEqual([{ name: 'node2', address: '10.99.0.12' }]);
});

describe('L2Speaker', () => {
  const speakers: L2Speaker[] = [];
  afterEach(async () => {
    for (const s of speakers.splice(0)) await s.stop();
  });

  function makeSpeaker(node: string, aliveness: Map<string, boolean>) {
    const { open, sockets } = fakeOpener();
    const timers = new ManualTimers();
    const logger = new RecordingLogger();
    const speaker = new L2Speaker({
      nodeName: node,
      nodeIPs: [NODE_IP[node] as string],
      logger,
      memberPort: 0,
      memberBindAddress: '127.0.0.1',
      memberProbeIntervalMs: 300,
      memberDownAfterMs: 1000,
      openSocket: open,
      listInterfaces: async () => ['lo', 'eth0', 'eth1'],
      listAddresses: async () => [{ ifname: 'eth0', address: NODE_IP[node] as string }],
      timers,
      now: () => timers.now,
      burst: { count: 1, intervalMs: 100 },
      probe: async (peer) => aliveness.get(peer.name) ?? false,
    });
    speakers.push(speaker);
    return { speaker, sockets, timers, logger };
  }
  const feed = async (speaker: L2Speaker, text: string) => {
    const d = new LoadBalancerController().process(stateOf(text));
    await speaker.update(
      d.state,
      d.allocation ?? { assignments: new Map(), reasons: new Map(), problems: [] },
    );
  };
  const flush = () => new Promise((r) => setImmediate(r));

  test('the owner answers on the node-IP interface with a gratuitous ARP; the standby does not', async () => {
    const alive = new Map([
      [OWNER, true],
      [STANDBY, true],
    ]);
    const owner = makeSpeaker(OWNER, alive);
    const standby = makeSpeaker(STANDBY, alive);
    for (const s of [owner, standby]) {
      await s.speaker.start();
      await feed(s.speaker, lbManifests());
    }
    expect(owner.speaker.owned()).toEqual({ eth0: [VIP] });
    expect(owner.sockets.get('eth0')?.sent).toHaveLength(2); // gratuitous request + reply
    expect(standby.speaker.owned()).toEqual({ eth0: [] });
    expect(standby.speaker.decisions()[0]).toMatchObject({ ip: VIP, owner: OWNER, reason: 'notOwner' });
  });

  test('the standby takes over when member health sees the owner dead', async () => {
    const alive = new Map([[OWNER, true]]);
    const standby = makeSpeaker(STANDBY, alive);
    await standby.speaker.start();
    await feed(standby.speaker, lbManifests());
    expect(standby.speaker.owned()).toEqual({ eth0: [] });
    alive.set(OWNER, false);
    for (let i = 0; i < 5; i++) {
      standby.timers.advance(300);
      await flush();
    }
    expect([...standby.speaker.aliveNodes()]).toEqual([STANDBY]);
    expect(standby.speaker.owned()).toEqual({ eth0: [VIP] });
    expect(standby.logger.records.some((r) => r.message === 'layer2: alive agents changed')).toBe(true);
  });

  test('a missing interface is reported once naming the advertisement; the existing one still answers', async () => {
    const { speaker, logger } = makeSpeaker(OWNER, new Map([[STANDBY, true]]));
    await speaker.start();
    const text = lbManifests({ ads: ad('lan', '{ interfaces: [eth1, eth9] }') });
    await feed(speaker, text);
    await feed(speaker, text);
    expect(speaker.owned()).toEqual({ eth1: [VIP] });
    const errors = logger.records.filter((r) => r.level === 'error').map((r) => r.message);
    expect(errors).toEqual([
      'L2Advertisement lan: spec.interfaces[1]: interface "eth9" does not exist on node ' + OWNER,
    ]);
  });

  test('a socket that cannot be opened is reported with the advertisements using it', async () => {
    const { speaker, logger } = makeSpeaker(OWNER, new Map([[STANDBY, true]]));
    const failing = new L2Speaker({
      ...(speaker as unknown as { opts: ConstructorParameters<typeof L2Speaker>[0] }).opts,
      openSocket: () => {
        throw new Error('native ARP addon not built');
      },
    });
    speakers.push(failing);
    await failing.start();
    await feed(failing, lbManifests());
    expect(failing.owned()).toEqual({});
    expect(logger.records.filter((r) => r.level === 'error').map((r) => r.message)).toEqual([
      'L2Advertisement lan: cannot announce on interface "eth0": native ARP addon not built',
    ]);
  });

  test('interfaces follow the advertisements: a removed interface stops answering', async () => {
    const { speaker, sockets } = makeSpeaker(OWNER, new Map([[STANDBY, true]]));
    await speaker.start();
    await feed(speaker, lbManifests({ ads: ad('lan', '{ interfaces: [eth1] }') }));
    expect(speaker.owned()).toEqual({ eth1: [VIP] });
    await feed(speaker, lbManifests());
    expect(speaker.owned()).toEqual({ eth0: [VIP] });
    expect(sockets.get('eth1')?.closed).toBe(true);
  });

  test('an advertisement naming an interface plus one naming none: both the named and the node-IP interface', async () => {
    const { speaker } = makeSpeaker(OWNER, new Map([[STANDBY, true]]));
    await speaker.start();
    await feed(speaker, lbManifests({ ads: ad('named', '{ interfaces: [eth1] }') + ad('plain', '{}') }));
    expect(speaker.owned()).toEqual({ eth0: [VIP], eth1: [VIP] });
  });
});
