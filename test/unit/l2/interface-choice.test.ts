import { describe, expect, test } from '@jest/globals';
import type { NetworkLink } from '../../../src/dataplane/interfaces.js';
import {
  DEFAULT_EXCLUDED_INTERFACES,
  chooseAnnounceInterfaces,
  compileInterfaceExclusion,
  describeSkipped,
  judgeInterface,
} from '../../../src/l2/interface-choice.js';

const link = (ifname: string, flags: string[], extra: Partial<NetworkLink> = {}): NetworkLink => ({
  ifname,
  ifindex: 1,
  flags,
  master: null,
  kind: null,
  slaveKind: null,
  linkType: 'ether',
  ...extra,
});
const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const reasonOf = (l: NetworkLink, exclude: RegExp | null = null) => judgeInterface(l, exclude).reason;

describe('judgeInterface (MetalLB updateInterfaces)', () => {
  test('an up, broadcast-capable Ethernet interface is suitable, even without carrier', () => {
    expect(reasonOf(link('eth0', UP))).toBe('');
    expect(reasonOf(link('eth0', ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP']))).toBe('');
  });

  test('administratively down is skipped (LOWER_UP alone does not count)', () => {
    expect(reasonOf(link('eth1', ['BROADCAST', 'MULTICAST']))).toBe('down');
    expect(reasonOf(link('eth1', ['BROADCAST', 'LOWER_UP']))).toBe('down');
  });

  test('loopback is skipped', () => {
    expect(reasonOf(link('lo', ['LOOPBACK', 'UP', 'LOWER_UP'], { linkType: 'loopback' }))).toBe('loopback');
  });

  test('NOARP is skipped (dummy, kube-ipvs0, `arp off`)', () => {
    expect(reasonOf(link('kube-ipvs0', ['BROADCAST', 'NOARP', 'UP'], { kind: 'dummy' }))).toBe('noArp');
    expect(reasonOf(link('eth2', ['BROADCAST', 'MULTICAST', 'NOARP', 'UP', 'LOWER_UP']))).toBe('noArp');
  });

  test('a bridge port is skipped, the bridge itself is suitable', () => {
    const port = link('eth3', UP, { master: 'br0', kind: 'veth', slaveKind: 'bridge' });
    expect(judgeInterface(port, null)).toEqual({
      ifname: 'eth3',
      reason: 'enslaved',
      detail: 'br0 (bridge)',
    });
    expect(reasonOf(link('br0', UP, { kind: 'bridge' }))).toBe('');
  });

  test('a bond slave is skipped, the bond itself is suitable', () => {
    const slave = link('eno1', ['BROADCAST', 'MULTICAST', 'SLAVE', 'UP', 'LOWER_UP'], {
      master: 'bond0',
      slaveKind: 'bond',
    });
    expect(judgeInterface(slave, null)).toEqual({
      ifname: 'eno1',
      reason: 'enslaved',
      detail: 'bond0 (bond)',
    });
    expect(
      reasonOf(link('bond0', ['BROADCAST', 'MULTICAST', 'MASTER', 'UP', 'LOWER_UP'], { kind: 'bond' })),
    ).toBe('');
  });

  test('a VLAN on a bond is suitable; a point-to-point tunnel is not (no BROADCAST)', () => {
    expect(reasonOf(link('bond0.100', UP, { kind: 'vlan' }))).toBe('');
    expect(
      reasonOf(link('wg0', ['POINTOPOINT', 'NOARP', 'UP'], { kind: 'wireguard', linkType: 'none' })),
    ).toBe('noArp');
    expect(
      reasonOf(link('tun0', ['POINTOPOINT', 'MULTICAST', 'UP'], { kind: 'tun', linkType: 'none' })),
    ).toBe('noBroadcast');
  });

  test('exclusion comes first: an excluded interface is skipped whatever its state', () => {
    const exclude = compileInterfaceExclusion(['^veth.*']);
    expect(reasonOf(link('veth1', UP), exclude)).toBe('excluded');
    expect(reasonOf(link('veth1', []), exclude)).toBe('excluded');
    expect(reasonOf(link('eth0', UP), exclude)).toBe('');
  });
});

describe('compileInterfaceExclusion', () => {
  test('patterns are joined as "(a)|(b)" and match anywhere unless anchored, as in MetalLB', () => {
    const re = compileInterfaceExclusion(['^veth', 'ext']);
    expect(re?.source).toBe('(^veth)|(ext)');
    expect(re?.test('veth0')).toBe(true);
    expect(re?.test('myveth')).toBe(false);
    expect(re?.test('lan-ext-1')).toBe(true);
    expect(compileInterfaceExclusion([])).toBeNull();
  });

  test('a bad pattern is an error naming the field, index and text', () => {
    expect(() => compileInterfaceExclusion(['^ok', '[x'], 'loadBalancer.excludeInterfaces')).toThrow(
      /^loadBalancer\.excludeInterfaces\[1\]: "\[x" is not a valid regular expression/,
    );
  });

  test("MetalLB's shipped list: CNI, container and virtual interfaces out; LAN names in", () => {
    const re = compileInterfaceExclusion(DEFAULT_EXCLUDED_INTERFACES);
    for (const name of [
      'lo',
      'veth3f2a',
      'cali12',
      'docker0',
      'cni0',
      'flannel.1',
      'kube-ipvs0',
      'tunl0',
      'virbr0',
    ])
      expect([name, re?.test(name)]).toEqual([name, true]);
    for (const name of ['eth0', 'eno1', 'bond0', 'br0', 'ens3.100', 'lo1', 'enp1s0'])
      expect([name, re?.test(name)]).toEqual([name, false]);
  });
});

test('chooseAnnounceInterfaces: the suitable ones and a verdict for each, sorted by name', () => {
  const links = [
    link('lo', ['LOOPBACK', 'UP'], { linkType: 'loopback' }),
    link('eth0', UP, { master: 'br0', slaveKind: 'bridge' }),
    link('br0', UP, { kind: 'bridge' }),
    link('eth1', UP),
    link('eth2', ['BROADCAST']),
    link('veth9', UP),
  ];
  const choice = chooseAnnounceInterfaces(links, compileInterfaceExclusion(['^veth']));
  expect(choice.suitable).toEqual(['br0', 'eth1']);
  expect(choice.verdicts.map((v) => `${v.ifname}=${v.reason}`)).toEqual([
    'br0=',
    'eth0=enslaved',
    'eth1=',
    'eth2=down',
    'lo=loopback',
    'veth9=excluded',
  ]);
  expect(describeSkipped(choice.verdicts)).toBe(
    'eth0: enslaved to br0 (bridge), eth2: down, lo: loopback, veth9: excluded',
  );
});
