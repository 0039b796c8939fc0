// Behaviour of ipvs mode, not text: render ClusterStates with renderIpvs and walk packets through
// what the node would hold — the mode's iptables rules (with their set matches evaluated against the
// rendered sets), then IPVS (the rendered virtual servers) — as test/unit/render/packet-outcome.test.ts
// does for iptables mode. Each case asserts the real servers reached (with their shares), masquerade,
// or DROP/REJECT, for ClusterIP, NodePort, externalIP, LoadBalancer with source ranges, eTP Local,
// hairpin and no endpoints.
import { describe, expect, it } from '@jest/globals';
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import {
  renderIpvs,
  type IpvsRenderOptions,
  type IpvsVirtualServer,
} from '../../../src/render/ipvs/index.js';
import { parseIptablesDump } from '../../../src/troubleshoot/iptables-dump.js';
import { ipvsDecision, type PacketOutcome } from '../../../src/troubleshoot/packet-walker.js';
import { traceServicePacket } from '../../../src/troubleshoot/trace.js';
import { endpoint as ep, stateOf, svcPort } from '../../fixtures/cluster-state.js';
import { ipvsOptions } from '../../fixtures/ipvs-options.js';

const nodeIP = '192.168.0.2';
const externalClient = '203.0.113.2';
const blockedClient = '198.51.100.7';
const localPod = '10.244.1.2';
const local = (ip: string, extra: Partial<Endpoint> = {}): Endpoint =>
  ep(ip, 8080, { nodeName: 'node-a', ...extra });
const remote = (ip: string, extra: Partial<Endpoint> = {}): Endpoint =>
  ep(ip, 8080, { nodeName: 'node-b', ...extra });
const terminating = { ready: false, serving: true, terminating: true };

const web = (extra: Partial<ServicePort> = {}): ServicePort =>
  svcPort('ns1', 'web', 'http', {
    clusterIPs: ['10.96.0.10'],
    endpoints: [local(localPod), remote('10.244.2.3'), remote('10.244.2.4')],
    ...extra,
  });

interface Flow {
  src: string;
  dst: string;
  dport: number;
  fromNode?: boolean;
  protocol?: string;
}

function walk(ports: ServicePort[], flow: Flow, opts: Partial<IpvsRenderOptions> = {}): PacketOutcome {
  const rs = renderIpvs(stateOf(...ports), ipvsOptions(opts));
  return traceServicePacket(
    rs,
    { protocol: flow.protocol ?? 'TCP', sourceIP: flow.src, destIP: flow.dst, destPort: flow.dport },
    { localAddresses: ipvsOptions(opts).nodeIPs, locallyGenerated: flow.fromNode ?? false },
  ).outcome;
}

/** "verdict: endpoint share, …; masq" — the shares rounded, in kube-proxy tracer spirit. */
function summary(o: PacketOutcome): string {
  const endpoints = o.endpointProbabilities
    .map((e) => `${e.endpoint} ${e.probability.toFixed(2)}`)
    .join(', ');
  const masq = o.branches.filter((b) => b.masquerade).map((b) => b.endpoint ?? 'no endpoint');
  return `${o.verdict}: ${endpoints}; masq ${masq.length === o.branches.length ? 'all' : masq.length === 0 ? 'none' : masq.join(' ')}`;
}

describe('ipvs mode packet flows', () => {
  describe('ClusterIP', () => {
    it('from off the cluster: every real server, a third each, masqueraded (KUBE-CLUSTER-IP, ! -s pod CIDR)', () => {
      const o = walk([web()], { src: externalClient, dst: '10.96.0.10', dport: 80 });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
      expect(o.ipvs?.virtualServer).toBe('TCP 10.96.0.10:80');
      expect(o.ipvs?.owner).toBe('ns1/web:http/tcp');
      // The set match is shown with the entry that matched.
      expect(
        o.path.find((s) => s.chain === 'KUBE-SERVICES' && s.setMatches !== undefined)?.setMatches,
      ).toEqual([{ set: 'KUBE-CLUSTER-IP', entry: '10.96.0.10,tcp:80' }]);
    });

    it('from a pod on another node: not masqueraded', () => {
      const o = walk([web()], { src: '10.244.3.9', dst: '10.96.0.10', dport: 80 });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq none',
      );
    });

    it('from the node itself (nat OUTPUT): reaches the real servers, masqueraded', () => {
      const o = walk([web()], { src: nodeIP, dst: '10.96.0.10', dport: 80, fromNode: true });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
    });

    it('a port of the bound address that no virtual server serves: rejected by KUBE-IPVS-FILTER', () => {
      const o = walk([web()], { src: externalClient, dst: '10.96.0.10', dport: 22 });
      expect(o.verdict).toBe('REJECT');
      expect(o.path.at(-1)?.rule).toContain('--match-set KUBE-IPVS-IPS dst -j REJECT');
      expect(o.ipvs).toBeUndefined();
    });

    it('UDP to a TCP service port: no virtual server for UDP, rejected', () => {
      const o = walk([web()], { src: externalClient, dst: '10.96.0.10', dport: 80, protocol: 'UDP' });
      expect(o.verdict).toBe('REJECT');
    });
  });

  describe('hairpin (KUBE-LOOP-BACK)', () => {
    it('a local pod reaching itself through the Service is masqueraded; to other real servers it is not', () => {
      const o = walk([web()], { src: localPod, dst: '10.96.0.10', dport: 80 });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq 10.244.1.2:8080',
      );
      const hairpin = o.branches.find((b) => b.endpoint === '10.244.1.2:8080');
      expect(hairpin?.path.at(-1)?.setMatches).toEqual([
        { set: 'KUBE-LOOP-BACK', entry: '10.244.1.2,tcp:8080,10.244.1.2' },
      ]);
    });
  });

  describe('NodePort', () => {
    const np = (extra: Partial<ServicePort> = {}) => web({ type: 'NodePort', nodePort: 30080, ...extra });

    it('from outside: every real server, masqueraded (KUBE-NODE-PORT-TCP)', () => {
      const o = walk([np()], { src: externalClient, dst: nodeIP, dport: 30080 });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
      expect(
        o.path.some(
          (s) => s.setMatches?.[0]?.set === 'KUBE-NODE-PORT-TCP' && s.setMatches[0].entry === '30080',
        ),
      ).toBe(true);
    });

    it('externalTrafficPolicy Local: only the local real server, source kept (KUBE-NODE-PORT-LOCAL-TCP)', () => {
      const o = walk([np({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })], {
        src: externalClient,
        dst: nodeIP,
        dport: 30080,
      });
      expect(summary(o)).toBe('ACCEPT: 10.244.1.2:8080 1.00; masq none');
    });

    it("a port that is no node port: no virtual server, the packet is the node's (no endpoint)", () => {
      const o = walk([np()], { src: externalClient, dst: nodeIP, dport: 30081 });
      expect(summary(o)).toBe('ACCEPT: ; masq none');
      expect(o.ipvs).toBeUndefined();
    });
  });

  describe('externalIPs', () => {
    it('from outside: every real server, masqueraded (KUBE-EXTERNAL-IP)', () => {
      const o = walk([web({ externalIPs: ['192.0.2.50'] })], {
        src: externalClient,
        dst: '192.0.2.50',
        dport: 80,
      });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
    });

    it('externalTrafficPolicy Local: local real server only, not masqueraded (KUBE-EXTERNAL-IP-LOCAL)', () => {
      const o = walk([web({ externalIPs: ['192.0.2.50'], externalTrafficPolicy: 'Local' })], {
        src: externalClient,
        dst: '192.0.2.50',
        dport: 80,
      });
      expect(summary(o)).toBe('ACCEPT: 10.244.1.2:8080 1.00; masq none');
    });
  });

  describe('LoadBalancer', () => {
    const lb = (extra: Partial<ServicePort> = {}) =>
      web({
        type: 'LoadBalancer',
        nodePort: 30080,
        loadBalancerIngress: [{ ip: '192.0.2.100', ipMode: 'VIP' }],
        ...extra,
      });

    it('no source ranges: every real server, masqueraded (KUBE-LOAD-BALANCER)', () => {
      const o = walk([lb()], { src: externalClient, dst: '192.0.2.100', dport: 80 });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
    });

    it('source ranges: an allowed client reaches the real servers (KUBE-LOAD-BALANCER-SOURCE-CIDR)', () => {
      const o = walk([lb({ loadBalancerSourceRanges: ['203.0.113.0/25'] })], {
        src: externalClient,
        dst: '192.0.2.100',
        dport: 80,
      });
      expect(summary(o)).toBe(
        'ACCEPT: 10.244.1.2:8080 0.33, 10.244.2.3:8080 0.33, 10.244.2.4:8080 0.33; masq all',
      );
      expect(o.path.flatMap((s) => s.setMatches ?? [])).toContainEqual({
        set: 'KUBE-LOAD-BALANCER-SOURCE-CIDR',
        entry: '192.0.2.100,tcp:80,203.0.113.0/25',
      });
    });

    it('source ranges: another client is dropped in KUBE-SOURCE-RANGES-FIREWALL, before IPVS', () => {
      const o = walk([lb({ loadBalancerSourceRanges: ['203.0.113.0/25'] })], {
        src: blockedClient,
        dst: '192.0.2.100',
        dport: 80,
      });
      expect(summary(o)).toBe('DROP: ; masq none');
      expect(o.path.at(-1)).toMatchObject({
        table: 'filter',
        chain: 'KUBE-SOURCE-RANGES-FIREWALL',
        rule: '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
      });
      expect(o.ipvs).toBeUndefined();
    });

    it('source ranges without the node: the node itself is dropped too', () => {
      const o = walk([lb({ loadBalancerSourceRanges: ['203.0.113.0/25'] })], {
        src: nodeIP,
        dst: '192.0.2.100',
        dport: 80,
        fromNode: true,
      });
      expect(o.verdict).toBe('DROP');
    });

    it('externalTrafficPolicy Local: the local real server only, not masqueraded (KUBE-LOAD-BALANCER-LOCAL)', () => {
      const o = walk([lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })], {
        src: externalClient,
        dst: '192.0.2.100',
        dport: 80,
      });
      expect(summary(o)).toBe('ACCEPT: 10.244.1.2:8080 1.00; masq none');
    });

    it('the health-check node port is accepted by KUBE-NODE-PORT (filter)', () => {
      const o = walk([lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })], {
        src: externalClient,
        dst: nodeIP,
        dport: 32000,
      });
      expect(o.verdict).toBe('ACCEPT');
      expect(o.path.flatMap((s) => s.setMatches ?? [])).toContainEqual({
        set: 'KUBE-HEALTH-CHECK-NODE-PORT',
        entry: '32000',
      });
    });
  });

  describe('no endpoints, terminating endpoints', () => {
    it('no endpoints: the virtual server has no real servers, IPVS answers port unreachable (REJECT)', () => {
      const o = walk([web({ endpoints: [] })], { src: externalClient, dst: '10.96.0.10', dport: 80 });
      expect(o.verdict).toBe('REJECT');
      expect(o.ipvs?.noRealServer).toBe('the virtual server has no real servers (no endpoints)');
      expect(o.endpoints).toEqual([]);
    });

    it('a terminating endpoint beside ready ones gets weight 0: no new connections, shown with share 0', () => {
      const o = walk([web({ endpoints: [remote('10.244.2.3'), remote('10.244.2.4', terminating)] })], {
        src: externalClient,
        dst: '10.96.0.10',
        dport: 80,
      });
      expect(summary(o)).toBe('ACCEPT: 10.244.2.3:8080 1.00; masq all');
      expect(o.ipvs?.realServers).toEqual([
        { realServer: '10.244.2.3:8080', weight: 1, share: 1 },
        { realServer: '10.244.2.4:8080', weight: 0, share: 0 },
      ]);
    });
  });

  describe('schedulers and persistence', () => {
    it('sessionAffinity ClientIP: persistence with the timeout in the decision and the explanation', () => {
      const rs = renderIpvs(
        stateOf(web({ sessionAffinity: { type: 'ClientIP', timeoutSeconds: 600 } })),
        ipvsOptions(),
      );
      const result = traceServicePacket(
        rs,
        { protocol: 'TCP', sourceIP: externalClient, destIP: '10.96.0.10', destPort: 80 },
        { localAddresses: [nodeIP], locallyGenerated: false },
      );
      expect(result.outcome.ipvs?.persistenceTimeoutSeconds).toBe(600);
      expect(result.explanation).toContain(
        'persistence: 600 s (sessionAffinity ClientIP): once 203.0.113.2 has a connection',
      );
      expect(result.explanation).toContain('  ipvs virtual server: TCP 10.96.0.10:80 -s rr -p 600');
    });

    it('lc: the candidates without fixed shares, and the explanation says the choice depends on load', () => {
      const rs = renderIpvs(stateOf(web()), ipvsOptions({ scheduler: 'lc' }));
      const result = traceServicePacket(
        rs,
        { protocol: 'TCP', sourceIP: externalClient, destIP: '10.96.0.10', destPort: 80 },
        { localAddresses: [nodeIP], locallyGenerated: false },
      );
      expect(result.outcome.ipvs?.sharesKnown).toBe(false);
      expect(result.outcome.ipvs?.realServers.map((r) => r.share)).toEqual([null, null, null]);
      expect(result.outcome.endpoints).toEqual(['10.244.1.2:8080', '10.244.2.3:8080', '10.244.2.4:8080']);
      expect(result.explanation).toContain('scheduler lc: least connection: the choice depends on load');
      expect(result.explanation).toContain('  10.244.2.3:8080 weight 1: a candidate');
      expect(result.explanation).toContain('(no fixed shares: lc picks by load or hash)');
      expect(result.explanation).not.toMatch(/33\.3%/);
    });

    it('rr ignores weights above 0, wrr shares by weight, weight 0 gets nothing', () => {
      const vs = (scheduler: 'rr' | 'wrr'): IpvsVirtualServer => ({
        address: '10.96.0.10',
        port: 80,
        protocol: 'TCP',
        scheduler,
        flags: [],
        persistenceTimeoutSeconds: null,
        kind: 'clusterIP',
        owner: 'ns1/web:http/tcp',
        realServers: [3, 1, 0].map((weight, i) => ({
          address: `10.244.2.${i + 1}`,
          port: 8080,
          weight,
          forwarding: 'masquerade' as const,
        })),
      });
      expect(ipvsDecision(vs('rr')).realServers.map((r) => r.share)).toEqual([0.5, 0.5, 0]);
      expect(ipvsDecision(vs('wrr')).realServers.map((r) => r.share)).toEqual([0.75, 0.25, 0]);
    });
  });

  it('IPv6: KUBE-6- sets match, real servers bracketed', () => {
    const v6 = svcPort('ns1', 'web6', 'http', {
      clusterIPs: ['fd00:96::10'],
      ipFamilies: ['IPv6'],
      endpoints: [ep('fd00:244::2', 8080, { nodeName: 'node-b' })],
    });
    const o = walk(
      [v6],
      { src: '2001:db8::7', dst: 'fd00:96::10', dport: 80 },
      { family: 'IPv6', nodeIPs: ['fd00:99::2'], clusterCIDRs: ['fd00:244::/56'] },
    );
    expect(summary(o)).toBe('ACCEPT: [fd00:244::2]:8080 1.00; masq all');
    expect(o.path.flatMap((s) => s.setMatches ?? [])).toContainEqual({
      set: 'KUBE-6-CLUSTER-IP',
      entry: 'fd00:96::10,tcp:80',
    });
  });
});

describe('iptables-dump: the match modules of ipvs mode', () => {
  it('parses -m physdev and -m ipvs', () => {
    const dump = parseIptablesDump(
      [
        '*filter',
        ':KUBE-X - [0:0]',
        '-A KUBE-X -m physdev ! --physdev-is-in -j ACCEPT',
        '-A KUBE-X -s 192.0.2.100 -m ipvs --vaddr 192.0.2.100 --vproto tcp --vport 80 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const rules = dump.tables.get('filter')?.chains.get('KUBE-X')?.rules ?? [];
    expect(rules[0]?.matches).toEqual([{ kind: 'physdev', negated: true, which: 'isIn' }]);
    expect(rules[1]?.matches.slice(1)).toMatchObject([
      { kind: 'ipvs', option: 'vaddr', negated: false },
      { kind: 'ipvs', option: 'vproto', protocol: 'tcp' },
      { kind: 'ipvs', option: 'vport', port: 80 },
    ]);
  });
});
