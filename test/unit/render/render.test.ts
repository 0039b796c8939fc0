import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import {
  formatProbability,
  renderIptables,
  renderOptionsFromConfig,
  RenderInputError,
  serializeRuleSet,
  commentToken,
} from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from './fixtures.js';

function chain(rs: IptablesRuleSet, table: 'filter' | 'nat', name: string): string[] | undefined {
  return rs.tables.find((t) => t.name === table)?.chains.find((c) => c.name === name)?.rules;
}
function chainNames(rs: IptablesRuleSet, table: 'filter' | 'nat'): string[] {
  return rs.tables.find((t) => t.name === table)?.chains.map((c) => c.name) ?? [];
}
const SVC1 = 'KUBE-SVC-XPGD46QRK7WJZT7O';
const SVL1 = 'KUBE-SVL-XPGD46QRK7WJZT7O';
const EXT1 = 'KUBE-EXT-XPGD46QRK7WJZT7O';

describe('probabilities', () => {
  test('Go %0.10f formatting, including the round-half-even tie at 1/2048', () => {
    expect(formatProbability(2)).toBe('0.5000000000');
    expect(formatProbability(3)).toBe('0.3333333333');
    expect(formatProbability(7)).toBe('0.1428571429');
    expect(formatProbability(2048)).toBe('0.0004882812');
    expect(formatProbability(1000)).toBe('0.0010000000');
  });

  test('ladder over endpoints in kube-proxy order ("ip:port" string order)', () => {
    const eps = ['10.0.0.2', '10.0.0.10', '10.0.0.3'].map((ip) => ep(ip, 8080));
    const rs = renderIptables(
      stateOf(svcPort('ns1', 'svc1', 'p80', { clusterIPs: ['172.30.0.41'], endpoints: eps })),
      options(),
    );
    const rules = chain(rs, 'nat', SVC1) ?? [];
    expect(rules.slice(1).map((r) => /-> (\S+)"/.exec(r)?.[1])).toEqual([
      '10.0.0.10:8080',
      '10.0.0.2:8080',
      '10.0.0.3:8080',
    ]);
    expect(rules[1]).toContain('--probability 0.3333333333');
    expect(rules[2]).toContain('--probability 0.5000000000');
    expect(rules[3]).not.toContain('--probability');
  });
});

describe('masquerade for cluster IPs', () => {
  const state = stateOf(
    svcPort('ns1', 'svc1', 'p80', { clusterIPs: ['172.30.0.41'], endpoints: [ep('10.1.0.1', 80)] }),
  );
  test('masqueradeAll marks every packet to the cluster IP', () => {
    const rules = chain(renderIptables(state, options({ masqueradeAll: true })), 'nat', SVC1) ?? [];
    expect(rules[0]).toBe(
      `-A ${SVC1} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ`,
    );
  });
  test('no detector and no masqueradeAll: no masquerade rule', () => {
    const rules = chain(renderIptables(state, options({ clusterCIDRs: [] })), 'nat', SVC1) ?? [];
    expect(rules.some((r) => r.includes('KUBE-MARK-MASQ'))).toBe(false);
  });
  test('mark follows masqueradeBit; MASQUERADE gets --random-fully when supported', () => {
    const rs = renderIptables(state, options({ masqueradeBit: 2, randomFully: true }));
    expect(chain(rs, 'nat', 'KUBE-MARK-MASQ')).toEqual(['-A KUBE-MARK-MASQ -j MARK --or-mark 0x4']);
    expect(chain(rs, 'nat', 'KUBE-POSTROUTING')?.[2]).toMatch(/-j MASQUERADE --random-fully$/);
    expect(chain(rs, 'filter', 'KUBE-FORWARD')?.[1]).toContain('--mark 0x4/0x4');
  });
});

describe('traffic policies', () => {
  const local = 'test-node';
  test('externalTrafficPolicy Local with a local endpoint: EXT falls through to SVL', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      type: 'NodePort',
      nodePort: 30080,
      externalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80, { nodeName: local }), ep('10.1.0.2', 80, { nodeName: 'other' })],
    });
    const rs = renderIptables(stateOf(sp), options());
    expect(chain(rs, 'nat', EXT1)?.at(-1)).toBe(`-A ${EXT1} -j ${SVL1}`);
    expect(chain(rs, 'nat', SVL1)).toHaveLength(1);
    expect(chain(rs, 'nat', SVC1)).toHaveLength(3); // masquerade + 2 endpoints
    expect(chain(rs, 'filter', 'KUBE-EXTERNAL-SERVICES')).toEqual([]);
  });

  test('internalTrafficPolicy Local without local endpoints: cluster IP is DROPped in filter', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      internalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.2', 80, { nodeName: 'other' })],
    });
    const rs = renderIptables(stateOf(sp), options());
    expect(chain(rs, 'filter', 'KUBE-SERVICES')).toEqual([
      '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP',
    ]);
    expect(chainNames(rs, 'nat').filter((n) => n.startsWith('KUBE-S') && n !== 'KUBE-SERVICES')).toEqual([]);
  });

  test('internalTrafficPolicy Local with a local endpoint: cluster IP goes to SVL only', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      internalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80, { nodeName: local }), ep('10.1.0.2', 80, { nodeName: 'other' })],
    });
    const rs = renderIptables(stateOf(sp), options());
    expect(chain(rs, 'nat', 'KUBE-SERVICES')?.[0]).toMatch(new RegExp(`-j ${SVL1}$`));
    expect(chain(rs, 'nat', SVC1)).toBeUndefined();
    expect(chainNames(rs, 'nat').filter((n) => n.startsWith('KUBE-SEP-'))).toHaveLength(1);
  });
});

describe('terminating endpoints', () => {
  test('cluster-wide fallback to serving+terminating endpoints when none is ready', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      endpoints: [
        ep('10.1.0.1', 80, { ready: false, serving: true, terminating: true }),
        ep('10.1.0.2', 80, { ready: false, serving: false, terminating: true }),
      ],
    });
    const rs = renderIptables(stateOf(sp), options());
    const rules = chain(rs, 'nat', SVC1) ?? [];
    expect(rules.filter((r) => r.includes('-j KUBE-SEP-'))).toHaveLength(1);
    expect(rules.join('\n')).toContain('10.1.0.1:80');
  });

  test('ready endpoints win over terminating ones', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80, { ready: false, serving: true, terminating: true }), ep('10.1.0.2', 80)],
    });
    const rules = chain(renderIptables(stateOf(sp), options()), 'nat', SVC1) ?? [];
    expect(rules.filter((r) => r.includes('-j KUBE-SEP-'))).toHaveLength(1);
    expect(rules.join('\n')).toContain('10.1.0.2:80');
  });

  test('local fallback is independent of the cluster choice (eTP=Local)', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      type: 'NodePort',
      nodePort: 30080,
      externalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.41'],
      endpoints: [
        ep('10.1.0.1', 80, { nodeName: 'test-node', ready: false, serving: true, terminating: true }),
        ep('10.1.0.2', 80, { nodeName: 'other' }),
      ],
    });
    const rs = renderIptables(stateOf(sp), options());
    expect(chain(rs, 'nat', SVL1)?.join('\n')).toContain('10.1.0.1:80');
    expect(chain(rs, 'nat', SVC1)?.join('\n')).not.toContain('10.1.0.1:80');
    // Both endpoints are reachable from this node, so both SEP chains exist.
    expect(chainNames(rs, 'nat').filter((n) => n.startsWith('KUBE-SEP-'))).toHaveLength(2);
  });
});

describe('load balancers and node ports', () => {
  test('ipMode Proxy ingress gets no rules; VIP does', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      nodePort: 30080,
      clusterIPs: ['172.30.0.41'],
      loadBalancerIngress: [
        { ip: '192.0.2.10', ipMode: 'Proxy' },
        { ip: '192.0.2.11', ipMode: 'VIP' },
      ],
      endpoints: [ep('10.1.0.1', 80)],
    });
    const text = serializeRuleSet(renderIptables(stateOf(sp), options()));
    expect(text).not.toContain('192.0.2.10');
    expect(text).toContain('-d 192.0.2.11 --dport 80 -j KUBE-EXT-');
  });

  test('source ranges containing the node IP also allow the VIP as source (hairpin via LB)', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      nodePort: 30080,
      clusterIPs: ['172.30.0.41'],
      loadBalancerIngress: [{ ip: '192.0.2.11', ipMode: 'VIP' }],
      loadBalancerSourceRanges: ['192.168.0.0/16'],
      endpoints: [ep('10.1.0.1', 80)],
    });
    const rs = renderIptables(stateOf(sp), options({ nodeIPs: ['192.168.0.2'] }));
    const fw = chain(rs, 'nat', 'KUBE-FW-XPGD46QRK7WJZT7O') ?? [];
    expect(fw.map((r) => /-s (\S+)/.exec(r)?.[1] ?? '-')).toEqual(['192.168.0.0/16', '192.0.2.11', '-']);
  });

  test('a 0.0.0.0/0 source range means no firewall chain', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      nodePort: 30080,
      clusterIPs: ['172.30.0.41'],
      loadBalancerIngress: [{ ip: '192.0.2.11', ipMode: 'VIP' }],
      loadBalancerSourceRanges: ['0.0.0.0/0', '10.0.0.0/8'],
      endpoints: [ep('10.1.0.1', 80)],
    });
    const rs = renderIptables(stateOf(sp), options());
    expect(chainNames(rs, 'nat').some((n) => n.startsWith('KUBE-FW-'))).toBe(false);
    expect(chain(rs, 'filter', 'KUBE-PROXY-FIREWALL')).toEqual([]);
  });

  test('nodePortAddresses CIDRs: one -d rule per matching node address', () => {
    const state = stateOf(
      svcPort('ns1', 'svc1', 'p80', { clusterIPs: ['172.30.0.41'], endpoints: [ep('10.1.0.1', 80)] }),
    );
    const rs = renderIptables(
      state,
      options({
        nodeIPs: ['192.168.0.2', '10.9.0.1', '192.168.1.7'],
        nodePortAddresses: ['192.168.0.0/16', 'fd00::/8'],
      }),
    );
    const tail = (chain(rs, 'nat', 'KUBE-SERVICES') ?? []).filter((r) => r.endsWith('-j KUBE-NODEPORTS'));
    expect(tail.map((r) => /-d (\S+)/.exec(r)?.[1])).toEqual(['192.168.0.2', '192.168.1.7']);
    // 127.0.0.1 is not in the CIDRs, so no localhost NodePorts and no KUBE-FIREWALL.
    expect(chain(rs, 'filter', 'KUBE-FIREWALL')).toBeUndefined();
  });

  test('nodePortAddresses primary: only the primary node address', () => {
    const state = stateOf();
    const rs = renderIptables(
      state,
      options({ nodeIPs: ['192.168.0.2', '192.168.1.7'], nodePortAddresses: ['primary'] }),
    );
    const tail = (chain(rs, 'nat', 'KUBE-SERVICES') ?? []).filter((r) => r.endsWith('-j KUBE-NODEPORTS'));
    expect(tail).toHaveLength(1);
    expect(tail[0]).toContain('-d 192.168.0.2 ');
  });

  test('nodePortAddresses primary without a (non-loopback) primary IP of the family: every local address', () => {
    // kube-proxy turns "primary" into the host CIDRs of the families that have a node IP; a family
    // left without one gets NewNodePortAddresses' default, the zero CIDR (match all).
    const v6 = renderIptables(
      stateOf(),
      options({ family: 'IPv6', nodeIPs: [], clusterCIDRs: [], nodePortAddresses: ['primary'] }),
    );
    expect(chain(v6, 'nat', 'KUBE-SERVICES')?.at(-1)).toContain(
      '-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS',
    );
    const loopbackPrimary = renderIptables(
      stateOf(),
      options({ nodeIPs: ['127.0.0.1'], nodePortAddresses: ['primary'], localhostNodePorts: false }),
    );
    expect(chain(loopbackPrimary, 'nat', 'KUBE-SERVICES')?.at(-1)).toContain(
      '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS',
    );
  });

  test('localhost NodePorts: any nodePortAddresses CIDR overlapping 127.0.0.0/8 keeps them on', () => {
    // kube-proxy's ContainsIPv4Loopback: the CIDR's address is loopback or it contains 127.0.0.0,
    // so 127.0.0.2/32 (which lacks 127.0.0.1) still keeps localhost NodePorts and KUBE-FIREWALL.
    const rs = renderIptables(
      stateOf(),
      options({ nodeIPs: ['192.168.0.2'], nodePortAddresses: ['127.0.0.2/32', '192.168.0.0/16'] }),
    );
    expect(chain(rs, 'filter', 'KUBE-FIREWALL')).toHaveLength(1);
    expect(rs.builtinJumps.filter((j) => j.spec.includes('KUBE-FIREWALL'))).toHaveLength(2);
    const none = renderIptables(
      stateOf(),
      options({ nodeIPs: ['192.168.0.2'], nodePortAddresses: ['128.0.0.0/8', '192.168.0.0/16'] }),
    );
    expect(chain(none, 'filter', 'KUBE-FIREWALL')).toBeUndefined();
  });

  test('localhost NodePorts off: exclude 127.0.0.0/8; IPv6 always excludes ::1', () => {
    const v4 = renderIptables(stateOf(), options({ localhostNodePorts: false }));
    expect(chain(v4, 'nat', 'KUBE-SERVICES')?.at(-1)).toContain(
      '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS',
    );
    expect(chain(v4, 'filter', 'KUBE-FIREWALL')).toBeUndefined();
    expect(v4.builtinJumps.some((j) => j.spec.includes('KUBE-FIREWALL'))).toBe(false);
    const v6 = renderIptables(
      stateOf(),
      options({ family: 'IPv6', nodeIPs: ['fd00::2'], clusterCIDRs: ['fd00:10::/64'] }),
    );
    expect(chain(v6, 'nat', 'KUBE-SERVICES')?.at(-1)).toContain('! -d ::1/128 -j KUBE-NODEPORTS');
    expect(chain(v6, 'filter', 'KUBE-FIREWALL')).toBeUndefined();
  });
});

describe('families and large clusters', () => {
  test('dual-stack service renders each family with its own addresses', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41', 'fd00:30::41'],
      ipFamilies: ['IPv4', 'IPv6'],
      endpoints: [ep('10.1.0.1', 80), ep('fd00:10::1', 80)],
    });
    const v6 = serializeRuleSet(
      renderIptables(
        stateOf(sp),
        options({ family: 'IPv6', nodeIPs: ['fd00::2'], clusterCIDRs: ['fd00:10::/64'] }),
      ),
    );
    expect(v6).toContain('-d fd00:30::41 --dport 80');
    expect(v6).toContain('--to-destination [fd00:10::1]:80');
    expect(v6).not.toContain('172.30.0.41');
    expect(v6).not.toContain('10.1.0.1');
  });

  test('a service without a cluster IP of the family gets nothing in that family', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80)],
    });
    const v6 = renderIptables(stateOf(sp), options({ family: 'IPv6', nodeIPs: [], clusterCIDRs: [] }));
    expect(serializeRuleSet(v6)).not.toContain('svc1');
  });

  test('above the endpoint threshold, per-endpoint comments are dropped', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80), ep('10.1.0.2', 80)],
    });
    const rs = renderIptables(stateOf(sp), options({ largeClusterEndpointThreshold: 1 }));
    expect(chain(rs, 'nat', SVC1)?.[1]).toMatch(/^-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic/);
    expect(chain(rs, 'nat', 'KUBE-SEP-SXIVWICOYRO3J4NJ')).toBeUndefined();
    const sep = rs.tables[1]?.chains.find((c) => c.role === 'endpoint');
    expect(sep?.rules.every((r) => !r.includes('--comment'))).toBe(true);
    // The cluster IP rule keeps its comment.
    expect(chain(rs, 'nat', 'KUBE-SERVICES')?.[0]).toContain('"ns1/svc1:p80 cluster IP"');
  });
});

describe('safety and determinism', () => {
  test('quotes, backslashes and control characters never reach a rule line', () => {
    expect(commentToken('ns/svc:p80')).toBe('ns/svc:p80');
    expect(commentToken('a "b"\nc\\d\u0007')).toBe('"a bcd"');
    expect(commentToken('')).toBe('""');
    expect(commentToken('x'.repeat(400)).length).toBe(255);
    expect(commentToken('x y'.repeat(200)).length).toBe(257);
    const sp = svcPort('ns"1\n-A INPUT -j ACCEPT', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      endpoints: [ep('10.1.0.1', 80)],
    });
    const text = serializeRuleSet(renderIptables(stateOf(sp), options()));
    for (const line of text.split('\n')) {
      expect(line.startsWith('-A INPUT')).toBe(false);
      // Only the outer quotes of comment tokens remain.
      const quotes = (line.match(/"/g) ?? []).length;
      expect(quotes % 2).toBe(0);
    }
    expect(text).not.toContain('ns"1');
  });

  test('a malformed address is an error naming the object and field', () => {
    const sp = svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      externalIPs: ['1.2.3.4 -j ACCEPT'],
    });
    expect(() => renderIptables(stateOf(sp), options())).toThrow(RenderInputError);
    expect(() => renderIptables(stateOf(sp), options())).toThrow(
      /servicePort ns1\/svc1:p80\/tcp: externalIPs/,
    );
  });

  test('same input → byte-identical output', () => {
    const mk = () =>
      stateOf(
        svcPort('ns1', 'svc1', 'p80', {
          clusterIPs: ['172.30.0.41'],
          endpoints: [ep('10.1.0.3', 80), ep('10.1.0.1', 80)],
        }),
        svcPort('ns2', 'svc2', 'p53', {
          protocol: 'UDP',
          port: 53,
          clusterIPs: ['172.30.0.53'],
          endpoints: [ep('10.1.0.9', 53)],
        }),
      );
    expect(serializeRuleSet(renderIptables(mk(), options()))).toBe(
      serializeRuleSet(renderIptables(mk(), options())),
    );
  });
});

describe('serialisation', () => {
  test('built-in jumps are written as -I lines after the rules, kube-proxy style', () => {
    const text = serializeRuleSet(renderIptables(stateOf(), options()));
    expect(text).toContain(
      '-I INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    );
    expect(text).toContain(
      '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    );
    expect(text).toContain('-I INPUT -j KUBE-FIREWALL');
    expect(text.startsWith('*filter\n:KUBE-SERVICES - [0:0]\n')).toBe(true);
    expect(text.endsWith('COMMIT\n')).toBe(true);
    const noJumps = serializeRuleSet(renderIptables(stateOf(), options()), { includeBuiltinJumps: false });
    expect(noJumps).not.toMatch(/^-I /m);
  });
});

describe('renderOptionsFromConfig', () => {
  test("picks the family's CIDRs and the config knobs", () => {
    const config = parseConfig({
      nodeName: 'n1',
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10::/56'],
      masqueradeAll: true,
      iptables: { localhostNodePorts: false, masqueradeRandomFully: false },
    });
    const o = renderOptionsFromConfig(config, 'IPv6', ['fd00::2', '192.168.0.2']);
    expect(o).toMatchObject({
      family: 'IPv6',
      nodeName: 'n1',
      nodeIPs: ['fd00::2'],
      clusterCIDRs: ['fd00:10::/56'],
      masqueradeAll: true,
      masqueradeBit: 14,
      localhostNodePorts: false,
      randomFully: false,
      largeClusterEndpointThreshold: 1000,
    });
  });
  test('two cluster CIDRs of one family are refused with the field named', () => {
    const config = { ...defaultConfig(), clusterCIDRs: ['10.0.0.0/16', '10.1.0.0/16'] };
    expect(() => renderOptionsFromConfig(config, 'IPv4', [])).toThrow(/clusterCIDRs/);
  });
});
