import { allocate } from '../../../src/lb/allocator.js';
import { L2Announcer, type ClusterInputs } from '../../../src/l2/announcer.js';
import { rankNodes } from '../../../src/l2/election.js';
import type { L2Advertisement, ServicePort } from '../../../src/model/cluster-state.js';
import { pool, svc } from '../lb/fixtures.js';
import { buildNeighborSolicitation, parseNeighborAdvertisement } from '../../../src/l2/ndp-frame.js';
import { ManualTimers, fakeNdpOpener, fakeOpener } from './fakes.js';

const VIP = '192.168.1.100';
const [first, second] = rankNodes(VIP, ['node-a', 'node-b']) as [string, string];
const ad = (interfaces: string[] = []): L2Advertisement => ({
  name: 'l2',
  ipAddressPools: [],
  ipAddressPoolSelectors: [],
  nodeSelectors: [],
  interfaces,
});

/** The Service's one port, with one endpoint on node-a (ready unless said otherwise). */
const webPort = (ready = true): ServicePort =>
  ({
    id: 'default/web:http',
    namespace: 'default',
    serviceName: 'web',
    endpoints: [
      {
        ip: '10.0.0.1',
        port: 8080,
        family: 'IPv4',
        ready,
        serving: ready,
        terminating: false,
        nodeName: 'node-a',
      },
    ],
  }) as unknown as ServicePort;

function state(ads: L2Advertisement[] = [ad()], servicePorts: ServicePort[] = [webPort()]): ClusterInputs {
  return {
    services: [svc('web', { loadBalancerIP: VIP })],
    servicePorts,
    nodes: ['node-a', 'node-b'].map((name) => ({ name, addresses: [], ready: true, labels: {} })),
    addressPools: [pool('p', ['192.168.1.0/24'])],
    l2Advertisements: ads,
  };
}

function setup(me: string, opts: { hold?: number; interfaces?: string[] } = {}) {
  const { open, sockets } = fakeOpener();
  const timers = new ManualTimers();
  let alive = new Set(['node-a', 'node-b']);
  const announcer = new L2Announcer({
    nodeName: me,
    interfaces: opts.interfaces ?? ['eth0'],
    openSocket: open,
    aliveNodes: () => alive,
    timers,
    burst: { count: 1, intervalMs: 100 },
    startupHoldMs: opts.hold ?? 0,
  });
  const s = state();
  announcer.start();
  announcer.update(s, allocate(s.services, s.addressPools, {}));
  return {
    announcer,
    sockets,
    timers,
    setAlive: (names: string[]) => ((alive = new Set(names)), announcer.membershipChanged()),
  };
}

describe('L2Announcer', () => {
  test('the owner answers, the other node does not', () => {
    expect(setup(first).announcer.owned()).toEqual({ eth0: [VIP] });
    const other = setup(second);
    expect(other.announcer.owned()).toEqual({ eth0: [] });
    expect(other.announcer.decisions()).toEqual([
      { ip: VIP, owner: first, reason: 'notOwner', eligible: [first, second], interfaces: [] },
    ]);
  });

  test('the standby takes over when the owner is no longer alive, and hands back when it returns', () => {
    const { announcer, sockets, setAlive } = setup(second);
    setAlive([second]);
    expect(announcer.owned()).toEqual({ eth0: [VIP] });
    expect(sockets.get('eth0')?.sent).toHaveLength(2); // gratuitous request + reply
    setAlive([first, second]);
    expect(announcer.owned()).toEqual({ eth0: [] });
  });

  test('startup hold: nothing is announced until the hold ends', () => {
    const { announcer, timers } = setup(first, { hold: 1500 });
    expect(announcer.owned()).toEqual({ eth0: [] });
    expect(announcer.decisions()[0]?.reason).toBe('');
    timers.advance(1500);
    expect(announcer.owned()).toEqual({ eth0: [VIP] });
  });

  test("an advertisement's interface list narrows where the owner answers", () => {
    const { announcer } = setup(first, { interfaces: ['eth0', 'eth1'] });
    const s = state([ad(['eth1'])]);
    announcer.update(s, allocate(s.services, s.addressPools, {}));
    expect(announcer.owned()).toEqual({ eth0: [], eth1: [VIP] });
  });

  test('the owner goes quiet when the Service has no endpoint left that can serve, and answers again after', () => {
    const { announcer } = setup(first);
    const none = state([ad()], [webPort(false)]);
    announcer.update(none, allocate(none.services, none.addressPools, {}));
    expect(announcer.owned()).toEqual({ eth0: [] });
    expect(announcer.decisions()[0]).toMatchObject({ ip: VIP, owner: null, reason: 'noEndpoints' });
    const back = state();
    announcer.update(back, allocate(back.services, back.addressPools, {}));
    expect(announcer.owned()).toEqual({ eth0: [VIP] });
  });

  test('stop closes every socket', () => {
    const { announcer, sockets } = setup(first, { interfaces: ['eth0', 'eth1'] });
    announcer.stop();
    expect([...sockets.values()].every((s) => s.closed)).toBe(true);
  });
});

describe('L2Announcer with IPv6 addresses (NDP)', () => {
  const VIP6 = '2001:db8::100';
  const [first6, second6] = rankNodes(VIP6, ['node-a', 'node-b']) as [string, string];

  function dualStack(): ClusterInputs {
    return {
      services: [
        svc('web', {
          ipFamilies: ['IPv4', 'IPv6'],
          ipFamilyPolicy: 'RequireDualStack',
          annotations: { 'portway.io/loadBalancerIPs': `${VIP},${VIP6}` },
        }),
      ],
      servicePorts: [webPort()],
      nodes: ['node-a', 'node-b'].map((name) => ({ name, addresses: [], ready: true, labels: {} })),
      addressPools: [pool('p', ['192.168.1.0/24', '2001:db8::/64'])],
      l2Advertisements: [ad()],
    };
  }

  function setup6(me: string, opts: { failNdpOn?: string[] } = {}) {
    const arp = fakeOpener();
    const ndp = fakeNdpOpener(opts.failNdpOn ? { failOn: opts.failNdpOn } : {});
    const timers = new ManualTimers();
    const log: Array<Record<string, unknown>> = [];
    let alive = new Set(['node-a', 'node-b']);
    const announcer = new L2Announcer({
      nodeName: me,
      interfaces: ['eth0'],
      openSocket: arp.open,
      openNdpSocket: ndp.open,
      aliveNodes: () => alive,
      timers,
      burst: { count: 2, intervalMs: 100 },
      log: (e) => log.push(e),
    });
    const s = dualStack();
    announcer.start();
    announcer.update(s, allocate(s.services, s.addressPools, {}));
    return {
      announcer,
      arp: arp.sockets,
      ndp: ndp.sockets,
      timers,
      log,
      setAlive: (names: string[]) => ((alive = new Set(names)), announcer.membershipChanged()),
    };
  }

  test('the IPv6 address is elected on its own hash and answered by NDP, the IPv4 one by ARP', () => {
    const { announcer, arp, ndp } = setup6(first6);
    expect(announcer.decisions().map((d) => [d.ip, d.reason, d.owner])).toEqual([
      [VIP, first6 === first ? '' : 'notOwner', first],
      [VIP6, '', first6],
    ]);
    expect(announcer.owned().eth0).toContain(VIP6);
    expect(ndp.get('eth0')?.groups).toEqual(new Set(['33:33:ff:00:01:00']));
    // The ARP responder never sees the IPv6 address.
    expect(arp.get('eth0')?.sent.every((f) => f.readUInt16BE(12) === 0x0806)).toBe(true);
  });

  test('a node that does not own the IPv6 address opens no NDP socket', () => {
    const { announcer, ndp } = setup6(second6);
    expect(announcer.owned().eth0).not.toContain(VIP6);
    expect(ndp.size).toBe(0);
  });

  test('takeover sends the unsolicited advertisement burst; losing the address leaves the group and goes quiet', () => {
    const { announcer, ndp, timers, setAlive } = setup6(second6);
    setAlive([second6]);
    const socket = ndp.get('eth0');
    expect(announcer.owned().eth0).toContain(VIP6);
    expect(socket?.sent.map((f) => parseNeighborAdvertisement(f))).toEqual([
      expect.objectContaining({ targetIp: VIP6, dstIp: 'ff02::1', override: true, solicited: false }),
    ]);
    timers.advance(100);
    expect(socket?.sent).toHaveLength(2);
    setAlive([first6, second6]);
    expect(announcer.owned().eth0).not.toContain(VIP6);
    expect(socket?.groups.size).toBe(0);
    const asked = buildNeighborSolicitation('02:00:00:00:00:01', '2001:db8::10', VIP6);
    socket?.deliver(asked, false);
    timers.advance(1000);
    expect(socket?.sent).toHaveLength(2);
  });

  test('an NDP socket that cannot be opened is logged once and tried again; ARP is unaffected', () => {
    const { announcer, log, arp, setAlive } = setup6(first6, { failNdpOn: ['eth0'] });
    setAlive(['node-a', 'node-b']);
    expect(log.filter((e) => e.msg === 'cannot open NDP socket')).toEqual([
      { msg: 'cannot open NDP socket', interface: 'eth0', error: expect.stringMatching(/EPERM/) },
    ]);
    expect(announcer.owned().eth0).not.toContain(VIP6);
    expect(arp.get('eth0')?.closed).toBe(false);
  });

  test('stop closes the NDP sockets too', () => {
    const { announcer, ndp } = setup6(first6);
    announcer.stop();
    expect(ndp.get('eth0')?.closed).toBe(true);
  });
});
