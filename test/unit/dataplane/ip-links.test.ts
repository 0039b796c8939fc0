import { describe, expect, test } from '@jest/globals';
import { CommandError, RecordingRunner } from '../../../src/dataplane/exec.js';
import { FakeIpLinks, parseIpLinkJson, RealIpLinks } from '../../../src/dataplane/ip.js';

// Trimmed from real `ip -j -d link show` output (iproute2 6.1): loopback, a bridge and its port, a bond
// and its slave, a NOARP interface, a down one.
const IP_LINK_JSON = JSON.stringify([
  {
    ifindex: 1,
    ifname: 'lo',
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    mtu: 65536,
    link_type: 'loopback',
    address: '00:00:00:00:00:00',
  },
  {
    ifindex: 2,
    ifname: 'br0',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
    link_type: 'ether',
    linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } },
  },
  {
    ifindex: 4,
    link: 'vb',
    ifname: 'va',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    master: 'br0',
    link_type: 'ether',
    linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge', info_slave_data: { state: 'forwarding' } },
  },
  {
    ifindex: 5,
    ifname: 'bond0',
    flags: ['BROADCAST', 'MULTICAST', 'MASTER', 'UP', 'LOWER_UP'],
    link_type: 'ether',
    linkinfo: { info_kind: 'bond' },
  },
  {
    ifindex: 6,
    ifname: 'eno1',
    flags: ['BROADCAST', 'MULTICAST', 'SLAVE', 'UP', 'LOWER_UP'],
    master: 'bond0',
    link_type: 'ether',
    linkinfo: { info_slave_kind: 'bond' },
  },
  {
    ifindex: 3,
    ifname: 'vc',
    flags: ['BROADCAST', 'MULTICAST', 'NOARP', 'M-DOWN'],
    link_type: 'ether',
    linkinfo: { info_kind: 'veth' },
  },
  { ifindex: 7, ifname: 'eth9', flags: ['BROADCAST', 'MULTICAST'], link_type: 'ether' },
]);

describe('ip -j -d link show', () => {
  test('parses name, index, flags, master, kind and slave kind; sorted by index', () => {
    const links = parseIpLinkJson(IP_LINK_JSON);
    expect(links.map((l) => l.ifname)).toEqual(['lo', 'br0', 'vc', 'va', 'bond0', 'eno1', 'eth9']);
    expect(links[0]).toEqual({
      ifname: 'lo',
      ifindex: 1,
      flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
      master: null,
      kind: null,
      slaveKind: null,
      linkType: 'loopback',
    });
    expect(links.find((l) => l.ifname === 'va')).toMatchObject({
      master: 'br0',
      kind: 'veth',
      slaveKind: 'bridge',
    });
    expect(links.find((l) => l.ifname === 'br0')).toMatchObject({
      master: null,
      kind: 'bridge',
      slaveKind: null,
    });
    expect(links.find((l) => l.ifname === 'eno1')).toMatchObject({
      master: 'bond0',
      kind: null,
      slaveKind: 'bond',
    });
    expect(links.find((l) => l.ifname === 'vc')?.flags).toContain('NOARP');
  });

  test('empty output is no links; output that is not an array is an error naming the command', () => {
    expect(parseIpLinkJson('')).toEqual([]);
    expect(() => parseIpLinkJson('{}')).toThrow(/ip -j -d link show: output is not a JSON array/);
    expect(parseIpLinkJson('[{"ifname":"x"}]')).toEqual([]); // no index: not a usable entry
  });

  test('RealIpLinks.listLinks runs `ip -j -d link show` once and parses it', async () => {
    const runner = new RecordingRunner().on('ip -j -d link show', { stdout: IP_LINK_JSON });
    const links = await new RealIpLinks({ runner }).listLinks();
    expect(runner.commandLines()).toEqual(['ip -j -d link show']);
    expect(links).toHaveLength(7);
  });

  test('a failing ip is a CommandError with its stderr', async () => {
    const runner = new RecordingRunner().on('ip', {
      exitCode: 255,
      stderr: 'Cannot open netlink socket: Permission denied\n',
    });
    const err = await new RealIpLinks({ runner }).listLinks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toMatch(
      /ip -j -d link show exited with code 255: Cannot open netlink socket/,
    );
  });

  test('the fake reports its links like the kernel (a dummy is NOARP) and takes extra facts', async () => {
    const fake = new FakeIpLinks({ eth0: ['10.0.0.2/24'] });
    await fake.ensureDummyInterface('kube-ipvs0', { up: true });
    fake.linkFacts.set('eth1', { flags: ['BROADCAST', 'UP'], master: 'br0', slaveKind: 'bridge' });
    const links = await fake.listLinks();
    expect(links.map((l) => [l.ifname, l.flags.includes('NOARP'), l.master])).toEqual([
      ['eth0', false, null],
      ['kube-ipvs0', true, null],
      ['eth1', false, 'br0'],
    ]);
    expect(links.find((l) => l.ifname === 'kube-ipvs0')?.kind).toBe('dummy');
  });
});
