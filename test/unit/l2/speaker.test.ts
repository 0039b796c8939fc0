import { afterEach, describe, expect, test } from '@jest/globals';
import { LoadBalancerController } from '../../../src/lb/lb-controller.js';
import { rankNodes } from '../../../src/l2/election.js';
import type { NetworkLink } from '../../../src/dataplane/interfaces.js';
import { L2Speaker, peersOf, planInterfaces } from '../../../src/l2/speaker.js';
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

const link = (ifname: string, flags: string[], extra: Partial<NetworkLink> = {}): NetworkLink => ({
  ifname,
  ifindex: 0,
  flags,
  master: null,
  kind: null,
  slaveKind: null,
  linkType: 'ether',
  ...extra,
});
const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const LINKS: NetworkLink[] = [
  link('lo', ['LOOPBACK', 'UP', 'LOWER_UP'], { linkType: 'loopback' }),
  link('eth0', UP),
  link('eth1', ['BROADCAST', 'MULTICAST']),
  link('eth2', UP, { master: 'br0', slaveKind: 'bridge' }),
  link('br0', UP, { kind: 'bridge' }),
];

describe('planInterfaces', () => {
  test('no interfaces named: every suitable interface (not lo, not down, not a bridge port)', () => {
    const plan = planInterfaces('node1', stateOf(lbManifests()), LINKS, null);
    expect(plan.interfaces).toEqual(['br0', 'eth0']);
    expect(plan.defaults).toEqual(['br0', 'eth0']);
    expect(plan.problems).toEqual([]);
    expect(plan.verdicts.filter((v) => v.reason !== '')).toEqual([
      { ifname: 'eth1', reason: 'down' },
      { ifname: 'eth2', reason: 'enslaved', detail: 'br0 (bridge)' },
      { ifname: 'lo', reason: 'loopback' },
    ]);
  });

  test('named interfaces are unchanged: used when they exist, whatever their state; no defaults', () => {
    const state = stateOf(lbManifests({ ads: ad('named', '{ interfaces: [eth1, eth2, eth9] }') }));
    const plan = planInterfaces('node1', state, LINKS, null);
    expect(plan.interfaces).toEqual(['eth1', 'eth2']);
    expect(plan.defaults).toEqual([]);
    expect(plan.problems).toEqual([
      'L2Advertisement named: spec.interfaces[2]: interface "eth9" does not exist on node node1',
    ]);
  });

  test('the exclusion regexp removes interfaces from the defaults', () => {
    const plan = planInterfaces('node1', stateOf(lbManifests()), LINKS, /^br/);
    expect(plan.defaults).toEqual(['eth0']);
  });

  test('advertisements not selecting this node are ignored', () => {
    const state = stateOf(
      lbManifests({
        ads: ad('other', '{ nodeSelectors: [{ matchLabels: { role: core } }], interfaces: [eth9] }'),
      }),
    );
    const plan = planInterfaces('node1', state, LINKS, null);
    expect(plan).toMatchObject({ interfaces: [], defaults: [], problems: [] });
  });

  test('empty interfaces but no suitable interface: a problem naming the advertisement and why each was skipped', () => {
    const links = LINKS.filter((l) => l.ifname !== 'eth0' && l.ifname !== 'br0');
    const plan = planInterfaces('node1', stateOf(lbManifests()), links, null);
    expect(plan.interfaces).toEqual([]);
    expect(plan.problems).toEqual([
      'L2Advertisement lan: spec.interfaces is empty and node node1 has no interface suitable for ARP ' +
        '(up, broadcast, ARP on, not a bridge port or bond slave, not excluded): ' +
        'eth1: down, eth2: enslaved to br0 (bridge), lo: loopback; name the interfaces',
    ]);
  });
});

test('peersOf lists other nodes with an address', () => {
  const state = stateOf(lbManifests());
  expect(peersOf(state.nodes, 'node1')).toEqual([{ name: 'node2', address: '10.99.0.12' }]);
});

describe('L2Speaker', () => {
  const speakers: L2Speaker[] = [];
  afterEach(async () => {
    for (const s of speakers.splice(0)) await s.stop();
  });

  function makeSpeaker(
    node: string,
    aliveness: Map<string, boolean>,
    overrides: Partial<ConstructorParameters<typeof L2Speaker>[0]> = {},
  ) {
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
      // eth0 is the one suitable interface (eth1 is down, eth2 a bridge port): the default answers there.
      listLinks: async () => LINKS.filter((l) => l.ifname !== 'br0'),
      timers,
      now: () => timers.now,
      burst: { count: 1, intervalMs: 100 },
      probe: async (peer) => aliveness.get(peer.name) ?? false,
      ...overrides,
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

  test('the owner answers on the suitable interface with a gratuitous ARP; the standby does not', async () => {
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

  test('an advertisement naming an interface plus one naming none: both the named and the default interfaces', async () => {
    const { speaker } = makeSpeaker(OWNER, new Map([[STANDBY, true]]));
    await speaker.start();
    await feed(speaker, lbManifests({ ads: ad('named', '{ interfaces: [eth1] }') + ad('plain', '{}') }));
    expect(speaker.owned()).toEqual({ eth0: [VIP], eth1: [VIP] });
  });

  test('two suitable interfaces: the owner answers and sends gratuitous ARP on both', async () => {
    const links = [...LINKS, link('eth3', UP)];
    const { speaker, sockets } = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      listLinks: async () => links,
    });
    await speaker.start();
    await feed(speaker, lbManifests());
    expect(speaker.owned()).toEqual({ br0: [VIP], eth0: [VIP], eth3: [VIP] });
    for (const i of ['br0', 'eth0', 'eth3']) expect(sockets.get(i)?.sent).toHaveLength(2);
    expect(sockets.has('eth2')).toBe(false);
    expect(sockets.has('eth1')).toBe(false);
  });

  test('links are read on every update: one going down stops answering, one coming up starts', async () => {
    let links = [link('eth0', UP), link('eth1', UP)];
    const { speaker, sockets } = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      listLinks: async () => links,
    });
    await speaker.start();
    await feed(speaker, lbManifests());
    expect(speaker.owned()).toEqual({ eth0: [VIP], eth1: [VIP] });
    links = [link('eth0', UP), link('eth1', ['BROADCAST']), link('eth4', UP)];
    await feed(speaker, lbManifests());
    expect(speaker.owned()).toEqual({ eth0: [VIP], eth4: [VIP] });
    expect(sockets.get('eth1')?.closed).toBe(true);
  });

  test("MetalLB's shipped exclusion list is the default; excludeInterfaces replaces it", async () => {
    const links = [
      link('eth0', UP),
      link('veth12ab', UP),
      link('cali0', UP),
      link('docker0', UP, { kind: 'bridge' }),
    ];
    const byDefault = makeSpeaker(OWNER, new Map([[STANDBY, true]]), { listLinks: async () => links });
    await byDefault.speaker.start();
    await feed(byDefault.speaker, lbManifests());
    expect(Object.keys(byDefault.speaker.owned())).toEqual(['eth0']);
    const none = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      listLinks: async () => links,
      excludeInterfaces: [],
    });
    await none.speaker.start();
    await feed(none.speaker, lbManifests());
    expect(Object.keys(none.speaker.owned()).sort()).toEqual(['cali0', 'docker0', 'eth0', 'veth12ab']);
    expect(() => makeSpeaker(OWNER, new Map(), { excludeInterfaces: ['^ok$', 'bad('] })).toThrow(
      /^excludeInterfaces\[1\]: "bad\(" is not a valid regular expression/,
    );
  });

  test('an interface deleted and created again under the same name (new ifindex) gets a new socket', async () => {
    // A packet socket is bound to an ifindex: once that interface is gone it never hears anything again,
    // even when an interface with the same name comes back between two link reads (MetalLB keys its
    // responders by index for this reason).
    let links = [link('eth0', UP, { ifindex: 2 })];
    const { speaker, sockets, timers } = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      linkRefreshMs: 10_000,
      listLinks: async () => links,
    });
    await speaker.start();
    await feed(speaker, lbManifests());
    const first = sockets.get('eth0');
    expect(first?.sent).toHaveLength(2);
    timers.advance(10_000);
    await flush();
    await speaker.idle();
    expect(sockets.get('eth0')).toBe(first); // same index: the socket is kept
    links = [link('eth0', UP, { ifindex: 9 })];
    timers.advance(10_000);
    await flush();
    await speaker.idle();
    const second = sockets.get('eth0');
    expect(second).not.toBe(first);
    expect(first?.closed).toBe(true);
    expect(second?.closed).toBe(false);
    expect(second?.sent).toHaveLength(2); // the new interface gets the gratuitous ARP too
    expect(speaker.owned()).toEqual({ eth0: [VIP] });
  });

  test('stop() while start() is still starting member health: nothing is left running', async () => {
    let reads = 0;
    const { speaker, sockets, timers } = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      linkRefreshMs: 10_000,
      listLinks: async () => {
        reads++;
        return [link('eth0', UP)];
      },
    });
    const starting = speaker.start();
    await speaker.stop();
    await starting;
    await feed(speaker, lbManifests());
    timers.advance(30_000);
    await flush();
    await speaker.idle();
    expect(sockets.size).toBe(0);
    expect(speaker.owned()).toEqual({});
    expect(reads).toBe(1); // the update's own read; no refresh timer survived the stop
    expect(timers.size).toBe(0);
  });

  test('links are re-read every linkRefreshMs without a cluster change; stop() ends it', async () => {
    let links = [link('eth0', UP)];
    let reads = 0;
    const { speaker, timers } = makeSpeaker(OWNER, new Map([[STANDBY, true]]), {
      linkRefreshMs: 10_000,
      listLinks: async () => {
        reads++;
        return links;
      },
    });
    await speaker.start();
    await feed(speaker, lbManifests());
    expect(speaker.owned()).toEqual({ eth0: [VIP] });
    links = [link('eth0', UP), link('eth5', UP)];
    timers.advance(9_999);
    await speaker.idle();
    expect(speaker.owned()).toEqual({ eth0: [VIP] });
    timers.advance(1);
    await flush();
    await speaker.idle();
    expect(speaker.owned()).toEqual({ eth0: [VIP], eth5: [VIP] });
    await speaker.stop();
    const before = reads;
    timers.advance(30_000);
    await flush();
    expect(reads).toBe(before);
  });
});
