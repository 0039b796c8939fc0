import { allocate } from '../../../src/lb/allocator.js';
import { L2Announcer, type ClusterInputs } from '../../../src/l2/announcer.js';
import { rankNodes } from '../../../src/l2/election.js';
import type { L2Advertisement, ServicePort } from '../../../src/model/cluster-state.js';
import { pool, svc } from '../lb/fixtures.js';
import { ManualTimers, fakeOpener } from './fakes.js';

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
