import { parseIptablesDump } from '../../../src/troubleshoot/iptables-dump.js';
import {
  applyMark,
  PacketWalkError,
  walkPacket,
  type WalkOptions,
} from '../../../src/troubleshoot/packet-walker.js';
import { BLOCKED_CLIENT, EXTERNAL_CLIENT, KUBE_PROXY_RULES, NODE_IP } from './kube-proxy-rules.js';

const dump = parseIptablesDump(KUBE_PROXY_RULES);
const arriving: WalkOptions = { localAddresses: [NODE_IP], locallyGenerated: false };
const fromNode: WalkOptions = { localAddresses: [NODE_IP], locallyGenerated: true };
const tcp = (sourceIP: string, destIP: string, destPort: number) => ({
  protocol: 'TCP',
  sourceIP,
  destIP,
  destPort,
});

describe('walkPacket over kube-proxy-shaped rules', () => {
  it('ClusterIP with one endpoint: DNAT, no masquerade from a pod', () => {
    const o = walkPacket(dump, tcp('10.0.0.2', '172.30.0.41', 80), arriving);
    expect(o.verdict).toBe('ACCEPT');
    expect(o.endpoints).toEqual(['10.180.0.1:80']);
    expect(o.masquerade).toBe(false);
    expect(o.branches).toHaveLength(1);
    expect(o.branches[0]?.delivery).toBe('forward');
  });

  it('ClusterIP with two endpoints: both reachable with the ladder probabilities', () => {
    const o = walkPacket(dump, tcp('10.0.0.2', '172.30.0.44', 80), arriving);
    expect(o.endpoints).toEqual(['10.180.0.4:80', '10.180.0.5:80']);
    expect(o.endpointProbabilities).toEqual([
      { endpoint: '10.180.0.4:80', probability: 0.5 },
      { endpoint: '10.180.0.5:80', probability: 0.5 },
    ]);
    expect(o.masquerade).toBe(false);
    // The statistic rule is recorded with the probability its branch took.
    expect(o.branches[0]?.path.find((s) => s.probability !== undefined)?.probability).toBe(0.5);
  });

  it('three-endpoint ladder 1/3, 1/2, rest gives each endpoint a third (UDP)', () => {
    const o = walkPacket(
      dump,
      { protocol: 'udp', sourceIP: '10.0.0.2', destIP: '172.30.0.47', destPort: 53 },
      arriving,
    );
    expect(o.endpoints).toEqual(['10.180.0.8:53', '10.180.0.9:53', '10.180.0.10:53']);
    for (const e of o.endpointProbabilities) expect(e.probability).toBeCloseTo(1 / 3, 6);
    // The same address over TCP matches no service rule at all.
    expect(walkPacket(dump, tcp('10.0.0.2', '172.30.0.47', 53), arriving).endpoints).toEqual([]);
  });

  it('ClusterIP from outside the pod CIDR is masqueraded through the mark', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, '172.30.0.41', 80), arriving);
    expect(o.endpoints).toEqual(['10.180.0.1:80']);
    expect(o.masquerade).toBe(true);
    expect(o.markedForMasquerade).toBe(true);
    // KUBE-POSTROUTING clears the bit before masquerading, as the kernel rules do.
    expect(o.branches[0]?.mark).toBe(0);
    expect(o.path.map((s) => `${s.table} ${s.chain} ${s.ruleIndex}`)).toEqual([
      'nat PREROUTING 0',
      'nat KUBE-SERVICES 0',
      'nat KUBE-SVC-XPGD46QRK7WJZT7O 0',
      'nat KUBE-MARK-MASQ 0',
      'nat KUBE-SVC-XPGD46QRK7WJZT7O 1',
      'nat KUBE-SEP-SXIVWICOYRO3J4NJ 1',
      'filter FORWARD 0',
      'filter FORWARD 1',
      'filter KUBE-FORWARD 1',
      'nat POSTROUTING 0',
      'nat KUBE-POSTROUTING 1',
      'nat KUBE-POSTROUTING 2',
    ]);
  });

  it('hairpin: an endpoint reaching itself through the service is masqueraded on that branch only', () => {
    const o = walkPacket(dump, tcp('10.180.0.4', '172.30.0.44', 80), arriving);
    expect(o.endpoints).toEqual(['10.180.0.4:80', '10.180.0.5:80']);
    expect(o.branches.map((b) => [b.endpoint, b.masquerade])).toEqual([
      ['10.180.0.4:80', true],
      ['10.180.0.5:80', false],
    ]);
    expect(o.masquerade).toBe(true);
  });

  it('no endpoints: REJECT in filter KUBE-SERVICES', () => {
    const o = walkPacket(dump, tcp('10.0.0.2', '172.30.0.46', 80), arriving);
    expect(o.verdict).toBe('REJECT');
    expect(o.endpoints).toEqual([]);
    expect(o.path.at(-1)?.comment).toBe('ns6/svc6:p80 has no endpoints');
    // Also from the node itself (filter OUTPUT).
    expect(walkPacket(dump, tcp(NODE_IP, '172.30.0.46', 80), fromNode).verdict).toBe('REJECT');
  });

  it('NodePort on the node IP via addrtype LOCAL: DNAT and masquerade', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, NODE_IP, 3003), arriving);
    expect(o.verdict).toBe('ACCEPT');
    expect(o.endpoints).toEqual(['10.180.0.3:80']);
    expect(o.masquerade).toBe(true);
    // A port that is no node port: delivered to the node unchanged.
    const other = walkPacket(dump, tcp(EXTERNAL_CLIENT, NODE_IP, 3999), arriving);
    expect(other.endpoints).toEqual([]);
    expect(other.branches[0]?.delivery).toBe('local');
  });

  it('NodePort on a non-local address is not a node port', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, '192.168.0.99', 3003), arriving);
    expect(o.endpoints).toEqual([]);
    expect(o.masquerade).toBe(false);
  });

  it('eTP=Local without local endpoints: external traffic is dropped, pod and node traffic is not', () => {
    expect(walkPacket(dump, tcp(EXTERNAL_CLIENT, '192.168.99.22', 80), arriving)).toMatchObject({
      verdict: 'DROP',
      endpoints: [],
    });
    expect(walkPacket(dump, tcp(EXTERNAL_CLIENT, '1.2.3.4', 80), arriving)).toMatchObject({
      verdict: 'DROP',
      endpoints: [],
    });
    expect(walkPacket(dump, tcp(EXTERNAL_CLIENT, NODE_IP, 3001), arriving)).toMatchObject({
      verdict: 'DROP',
      endpoints: [],
    });
    // From a pod: short-circuited to the cluster-wide chain, no masquerade.
    expect(walkPacket(dump, tcp('10.0.0.2', '1.2.3.4', 80), arriving)).toMatchObject({
      verdict: 'ACCEPT',
      endpoints: ['10.180.0.2:80'],
      masquerade: false,
    });
    // From the node itself: routed cluster-wide and masqueraded.
    expect(walkPacket(dump, tcp(NODE_IP, '192.168.99.22', 80), fromNode)).toMatchObject({
      verdict: 'ACCEPT',
      endpoints: ['10.180.0.2:80'],
      masquerade: true,
    });
  });

  it('health check node port is accepted on INPUT', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, NODE_IP, 30000), arriving);
    expect(o.verdict).toBe('ACCEPT');
    expect(o.path.at(-1)?.comment).toBe('ns2/svc2:p80 health check node port');
  });

  it('loadBalancerSourceRanges: allowed source reaches endpoints, others are dropped', () => {
    const allowed = walkPacket(dump, tcp(EXTERNAL_CLIENT, '5.6.7.8', 80), arriving);
    expect(allowed.verdict).toBe('ACCEPT');
    expect(allowed.endpoints).toEqual(['10.180.0.6:80', '10.180.0.7:80']);
    expect(allowed.masquerade).toBe(true);
    const blocked = walkPacket(dump, tcp(BLOCKED_CLIENT, '5.6.7.8', 80), arriving);
    expect(blocked.verdict).toBe('DROP');
    expect(blocked.endpoints).toEqual([]);
    expect(blocked.masquerade).toBe(false);
    expect(blocked.path.at(-1)).toMatchObject({
      table: 'filter',
      chain: 'KUBE-PROXY-FIREWALL',
      ruleIndex: 0,
    });
  });

  it('session affinity: no recent entry explores the ladder; a recent entry pins the endpoint', () => {
    expect(walkPacket(dump, tcp('10.0.0.2', '172.30.0.45', 80), arriving).endpoints).toEqual([
      '10.180.0.6:80',
      '10.180.0.7:80',
    ]);
    const pinned = walkPacket(dump, tcp('10.0.0.2', '172.30.0.45', 80), {
      ...arriving,
      recentEntries: ['KUBE-SEP-J77PXRDZVX7PMWMN'],
    });
    expect(pinned.endpointProbabilities).toEqual([{ endpoint: '10.180.0.7:80', probability: 1 }]);
  });

  it('external IP: masqueraded, both endpoints', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, '192.168.99.33', 80), arriving);
    expect(o).toMatchObject({
      verdict: 'ACCEPT',
      endpoints: ['10.180.0.4:80', '10.180.0.5:80'],
      masquerade: true,
    });
  });

  it('locally generated ClusterIP traffic takes nat OUTPUT and is masqueraded (source outside pod CIDR)', () => {
    const o = walkPacket(dump, tcp(NODE_IP, '172.30.0.41', 80), fromNode);
    expect(o).toMatchObject({ verdict: 'ACCEPT', endpoints: ['10.180.0.1:80'], masquerade: true });
    expect(o.path[0]).toMatchObject({ table: 'nat', chain: 'OUTPUT' });
  });

  it('localnet protection: a non-loopback source to 127.0.0.1 is dropped by KUBE-FIREWALL', () => {
    const o = walkPacket(dump, tcp(EXTERNAL_CLIENT, '127.0.0.1', 8080), arriving);
    expect(o.verdict).toBe('DROP');
    expect(o.path.at(-1)?.chain).toBe('KUBE-FIREWALL');
  });

  it('a packet matching nothing is accepted unchanged', () => {
    const o = walkPacket(dump, tcp('10.0.0.2', '10.0.0.3', 80), arriving);
    expect(o).toMatchObject({ verdict: 'ACCEPT', endpoints: [], masquerade: false });
  });
});

describe('walkPacket kernel semantics', () => {
  const run = (body: string, opts: Partial<WalkOptions> = {}, packet = tcp('10.0.0.2', '10.96.0.1', 80)) =>
    walkPacket(parseIptablesDump(body), packet, {
      localAddresses: [NODE_IP],
      locallyGenerated: false,
      ...opts,
    });

  it('a built-in chain with DROP policy drops what falls off its end', () => {
    const o = run('*filter\n:FORWARD DROP [0:0]\nCOMMIT\n');
    expect(o.verdict).toBe('DROP');
    expect(o.path).toEqual([{ table: 'filter', chain: 'FORWARD', ruleIndex: -1, rule: ':FORWARD DROP' }]);
  });

  it('RETURN from a user chain resumes the caller; falling off a user chain returns too', () => {
    const o = run(
      [
        '*filter',
        ':A - [0:0]',
        ':B - [0:0]',
        '-A FORWARD -j A',
        '-A FORWARD -j B',
        '-A FORWARD -j REJECT',
        '-A A -j RETURN',
        '-A A -j DROP',
        '-A B -p udp -j DROP',
        'COMMIT',
      ].join('\n'),
    );
    expect(o.verdict).toBe('REJECT');
  });

  it('goto: when the target returns, processing resumes in the caller of the chain that did the goto', () => {
    const text = [
      '*filter',
      ':A - [0:0]',
      ':B - [0:0]',
      '-A FORWARD -j A',
      '-A FORWARD -j REJECT',
      '-A A -g B',
      '-A A -j DROP',
      '-A B -j RETURN',
      'COMMIT',
    ].join('\n');
    expect(run(text).verdict).toBe('REJECT');
    // With -j instead of -g, B returns into A, which drops.
    expect(run(text.replace('-g B', '-j B')).verdict).toBe('DROP');
  });

  it('ACCEPT in a user chain ends the whole hook, later hooks still run', () => {
    const o = run(
      [
        '*nat',
        ':A - [0:0]',
        '-A PREROUTING -j A',
        '-A PREROUTING -j DNAT --to-destination 10.1.1.1:81',
        '-A A -j ACCEPT',
        '-A POSTROUTING -j MASQUERADE',
        'COMMIT',
      ].join('\n'),
    );
    expect(o).toMatchObject({ verdict: 'ACCEPT', endpoints: [], masquerade: true });
  });

  it('DNAT without a port keeps the destination port; IPv6 endpoints are bracketed', () => {
    expect(run('*nat\n-A PREROUTING -j DNAT --to-destination 10.1.1.1\nCOMMIT\n').endpoints).toEqual([
      '10.1.1.1:80',
    ]);
    const v6 = run(
      '*nat\n-A PREROUTING -d fd00::1 -j DNAT --to-destination [fd00::10]:8080\nCOMMIT\n',
      {},
      tcp('fd00::5', 'fd00::1', 80),
    );
    expect(v6.endpoints).toEqual(['[fd00::10]:8080']);
  });

  it('filter rules see the DNATed destination and the DNAT conntrack state', () => {
    const o = run(
      [
        '*nat',
        '-A PREROUTING -j DNAT --to-destination 10.1.1.1:8080',
        'COMMIT',
        '*filter',
        '-A FORWARD -d 10.1.1.1 -p tcp --dport 8080 -m conntrack --ctstate DNAT -j REJECT',
        'COMMIT',
      ].join('\n'),
    );
    expect(o.verdict).toBe('REJECT');
    expect(o.endpoints).toEqual([]); // rejected: never reaches the endpoint
    expect(o.branches[0]?.endpoint).toBe('10.1.1.1:8080');
  });

  it('marks: --set-xmark, --and-mark and a mask decide later --mark matches', () => {
    expect(applyMark(0x4000, 'set-xmark', 0x8000, 0x8000)).toBe(0xc000);
    expect(applyMark(0xc000, 'and', 0x4000, 0xffffffff)).toBe(0x4000);
    expect(applyMark(0xffff, 'set-mark', 0x1, 0xff)).toBe(0xff01);
    // How iptables-save prints --or-mark 0x4000 and --xor-mark 0x4000.
    expect(applyMark(0x1, 'set-xmark', 0x4000, 0x4000)).toBe(0x4001);
    expect(applyMark(0x4001, 'set-xmark', 0x4000, 0x0)).toBe(0x1);
    const o = run(
      [
        '*nat',
        '-A PREROUTING -j MARK --set-xmark 0x8000/0x8000',
        'COMMIT',
        '*filter',
        '-A FORWARD -m mark --mark 0x8000/0x8000 -j DROP',
        'COMMIT',
      ].join('\n'),
    );
    expect(o.verdict).toBe('DROP');
    expect(run('*filter\n-A FORWARD -m mark --mark 0x8000/0x8000 -j DROP\nCOMMIT\n').verdict).toBe('ACCEPT');
  });

  it('interfaces: -i is evaluated from the known ingress; a + suffix is a prefix', () => {
    const text = '*filter\n-A FORWARD -i cni+ -j DROP\nCOMMIT\n';
    const via = (inInterface: string) =>
      walkPacket(parseIptablesDump(text), { ...tcp('10.0.0.2', '10.96.0.1', 80), inInterface }, arriving);
    expect(via('cni0').verdict).toBe('DROP');
    expect(via('eth0').verdict).toBe('ACCEPT');
    // Exact names match exactly (no implicit prefix).
    const exact = '*filter\n-A FORWARD -i br0 -j DROP\nCOMMIT\n';
    const viaExact = (inInterface: string) =>
      walkPacket(parseIptablesDump(exact), { ...tcp('10.0.0.2', '10.96.0.1', 80), inInterface }, arriving);
    expect(viaExact('br0').verdict).toBe('DROP');
    expect(viaExact('br01').verdict).toBe('ACCEPT');
  });

  it('interfaces: an unknown ingress is reported, never taken as a match (positive or negated)', () => {
    for (const rule of ['-A FORWARD -i cni+ -j DROP', '-A FORWARD ! -i br0 -j DROP']) {
      const text = `*filter\n${rule}\nCOMMIT\n`;
      expect(() => run(text)).toThrow(PacketWalkError);
      expect(() => run(text)).toThrow(/input interface .*-i (cni\+|br0).*not known/);
    }
    // A rule that fails on another match does not need the interface.
    expect(run('*filter\n-A FORWARD -s 192.0.2.0/24 ! -i br0 -j DROP\nCOMMIT\n').verdict).toBe('ACCEPT');
    // And rules the packet never reaches do not either.
    expect(run('*filter\n-A INPUT ! -i br0 -j DROP\nCOMMIT\n').verdict).toBe('ACCEPT');
  });

  it('interfaces: packets from the node have no input interface in OUTPUT, and lo in INPUT', () => {
    const nat = ['*nat', ':KUBE-MARK-MASQ - [0:0]', '-A OUTPUT ! -i br0 -j KUBE-MARK-MASQ'];
    const text = [...nat, '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000', 'COMMIT'].join('\n') + '\n';
    // No interface is known, yet it is not a guess: OUTPUT has none, so "! -i br0" holds.
    expect(run(text, { locallyGenerated: true }).markedForMasquerade).toBe(true);
    const positive = '*nat\n:KUBE-MARK-MASQ - [0:0]\n-A OUTPUT -i br0 -j KUBE-MARK-MASQ\nCOMMIT\n';
    expect(run(positive, { locallyGenerated: true }).markedForMasquerade).toBe(false);
    // Sent to the node's own address, it comes back in on lo.
    const input = '*filter\n-A INPUT -i lo -j DROP\nCOMMIT\n';
    expect(run(input, { locallyGenerated: true }, tcp(NODE_IP, NODE_IP, 80)).verdict).toBe('DROP');
  });

  it('interfaces: POSTROUTING has no input interface, even for a forwarded packet', () => {
    const text = '*nat\n-A POSTROUTING -i eth0 -j MASQUERADE\nCOMMIT\n';
    const o = walkPacket(parseIptablesDump(text), { ...tcp('10.0.0.2', '10.96.0.1', 80), inInterface: 'eth0' }, arriving);
    expect(o.masquerade).toBe(false);
    // The same packet with an unknown ingress walks without error: POSTROUTING never needs it.
    expect(run(text).masquerade).toBe(false);
  });

  it('ipset matches hash:ip,port and hash:net members', () => {
    const text = [
      '*nat',
      ':KUBE-MARK-MASQ - [0:0]',
      '-A PREROUTING -m set --match-set KUBE-CLUSTER-IP dst,dst -m set ! --match-set KUBE-POD-NETS src -j KUBE-MARK-MASQ',
      '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
      '-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE',
      'COMMIT',
    ].join('\n');
    const ipsets = { 'KUBE-CLUSTER-IP': ['10.96.0.1,tcp:80'], 'KUBE-POD-NETS': ['10.244.0.0/16'] };
    expect(run(text, { ipsets }, tcp('192.0.2.9', '10.96.0.1', 80)).masquerade).toBe(true);
    expect(run(text, { ipsets }, tcp('10.244.1.1', '10.96.0.1', 80)).masquerade).toBe(false);
    expect(run(text, { ipsets }, tcp('192.0.2.9', '10.96.0.1', 81)).masquerade).toBe(false);
    expect(() => run(text)).toThrow('rule matches ipset KUBE-CLUSTER-IP, but its contents were not given');
  });

  it('rejects bad packets and impossible targets clearly', () => {
    expect(() => run('*nat\nCOMMIT\n', {}, tcp('not-an-ip', '10.0.0.1', 80))).toThrow(PacketWalkError);
    expect(() => run('*nat\nCOMMIT\n', {}, tcp('10.0.0.1', 'fd00::1', 80))).toThrow('is not an IPv4 address');
    expect(() => run('*filter\n-A FORWARD -j DNAT --to-destination 10.0.0.1\nCOMMIT\n')).toThrow(
      'DNAT reached from filter FORWARD',
    );
    expect(() => run('*filter\n:A - [0:0]\n-A FORWARD -j A\n-A A -j A\nCOMMIT\n')).toThrow('nest deeper');
  });
});
