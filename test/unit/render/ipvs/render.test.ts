// ipvs mode as kube-proxy's pkg/proxy/ipvs/proxier_test.go checks it: for given Services and
// EndpointSlices, the exact virtual servers, real servers and set entries (and the constant rules).
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import type { ClusterState, ServicePort } from '../../../../src/model/cluster-state.js';
import { loadClusterState } from '../../../../src/model/index.js';
import {
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
  type IpvsRenderOptions,
  type IpvsRuleSet,
} from '../../../../src/render/ipvs/index.js';
import { GOLDEN_DIR } from '../../../golden/golden-cases.js';
import { ep, stateOf, svcPort } from '../fixtures.js';

function options(extra: Partial<IpvsRenderOptions> = {}): IpvsRenderOptions {
  return {
    family: 'IPv4',
    nodeName: 'node-a',
    nodeIPs: ['192.168.0.2', '192.168.1.2'],
    clusterCIDRs: ['10.244.0.0/16'],
    nodePortAddresses: [],
    localhostNodePorts: false,
    masqueradeAll: false,
    masqueradeBit: 14,
    randomFully: false,
    scheduler: 'rr',
    schedulerFlags: [],
    strictARP: false,
    timeouts: { tcpSeconds: 0, tcpFinSeconds: 0, udpSeconds: 0 },
    ...extra,
  };
}

/** "TCP 10.96.0.1:80 rr [persistent N] -> ip:port/w, …" per virtual server: compact and exact. */
function virtualServers(rs: IpvsRuleSet): string[] {
  return rs.virtualServers.map((vs) => {
    const flags = vs.flags.length > 0 ? ` -b ${vs.flags.join(',')}` : '';
    const persistent =
      vs.persistenceTimeoutSeconds !== null ? ` persistent ${vs.persistenceTimeoutSeconds}` : '';
    const servers = vs.realServers.map((r) => `${r.address}:${r.port}/${r.weight}`).join(', ');
    return `${vs.protocol} ${vs.address}:${vs.port} ${vs.scheduler}${flags}${persistent} -> ${servers}`;
  });
}

/** Non-empty sets with their members. */
function setEntries(rs: IpvsRuleSet): Record<string, string[]> {
  return Object.fromEntries(
    rs.ipsets.filter((s) => s.entries.length > 0).map((s) => [s.name, s.entries.map((e) => e.value)]),
  );
}

const rulesOf = (rs: IpvsRuleSet): string[] =>
  rs.iptables.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));

const render = (ports: ServicePort[], extra: Partial<IpvsRenderOptions> = {}): IpvsRuleSet =>
  renderIpvs(stateOf(...ports), options(extra));

const web = (extra: Partial<ServicePort> = {}): ServicePort =>
  svcPort('ns1', 'web', 'http', {
    clusterIPs: ['10.96.0.10'],
    endpoints: [
      ep('10.244.1.2', 8080, { nodeName: 'node-a' }),
      ep('10.244.2.3', 8080, { nodeName: 'node-b' }),
    ],
    ...extra,
  });

describe('renderIpvs: virtual servers, real servers, set entries', () => {
  it('ClusterIP: one virtual server, a real server per endpoint, the address bound to kube-ipvs0', () => {
    const rs = render([web()]);
    expect(virtualServers(rs)).toEqual(['TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1']);
    expect(setEntries(rs)).toEqual({
      'KUBE-LOOP-BACK': ['10.244.1.2,tcp:8080,10.244.1.2'],
      'KUBE-CLUSTER-IP': ['10.96.0.10,tcp:80'],
      'KUBE-IPVS-IPS': ['10.96.0.10'],
    });
    expect(rs.boundAddresses).toEqual(['10.96.0.10']);
    expect(rs.virtualServers[0]?.realServers.every((r) => r.forwarding === 'masquerade')).toBe(true);
  });

  it('a Service without endpoints still gets its virtual server, with no real servers', () => {
    expect(virtualServers(render([web({ endpoints: [] })]))).toEqual(['TCP 10.96.0.10:80 rr -> ']);
  });

  it('NodePort: a virtual server per node address (not loopback), the port in the protocol bitmap set', () => {
    const rs = render(
      [
        web({ type: 'NodePort', nodePort: 30080 }),
        svcPort('ns1', 'dns', 'udp', {
          protocol: 'UDP',
          type: 'NodePort',
          port: 53,
          nodePort: 30053,
          clusterIPs: ['10.96.0.53'],
        }),
        svcPort('ns1', 'sig', 'sctp', {
          protocol: 'SCTP',
          type: 'NodePort',
          port: 9,
          nodePort: 30009,
          clusterIPs: ['10.96.0.9'],
        }),
      ],
      { nodeIPs: ['192.168.0.2', '192.168.1.2', '127.0.0.1'] },
    );
    expect(virtualServers(rs)).toEqual([
      'TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'TCP 192.168.0.2:30080 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'TCP 192.168.1.2:30080 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'UDP 10.96.0.53:53 rr -> ',
      'UDP 192.168.0.2:30053 rr -> ',
      'UDP 192.168.1.2:30053 rr -> ',
      'SCTP 10.96.0.9:9 rr -> ',
      'SCTP 192.168.0.2:30009 rr -> ',
      'SCTP 192.168.1.2:30009 rr -> ',
    ]);
    const sets = setEntries(rs);
    expect(sets['KUBE-NODE-PORT-TCP']).toEqual(['30080']);
    expect(sets['KUBE-NODE-PORT-UDP']).toEqual(['30053']);
    // SCTP has no bitmap set: one ip,port member per node address.
    expect(sets['KUBE-NODE-PORT-SCTP-HASH']).toEqual(['192.168.0.2,sctp:30009', '192.168.1.2,sctp:30009']);
    // Node addresses are never bound to kube-ipvs0.
    expect(rs.boundAddresses).toEqual(['10.96.0.9', '10.96.0.10', '10.96.0.53']);
  });

  it('nodePortAddresses limits the NodePort virtual servers to the matching node addresses', () => {
    const rs = render([web({ type: 'NodePort', nodePort: 30080 })], {
      nodePortAddresses: ['192.168.1.0/24'],
    });
    expect(rs.virtualServers.map((vs) => `${vs.address}:${vs.port}`)).toEqual([
      '10.96.0.10:80',
      '192.168.1.2:30080',
    ]);
  });

  it('externalIPs: masqueraded set for Cluster policy, the -LOCAL set for Local; a node address is not bound', () => {
    const cluster = render([web({ externalIPs: ['203.0.113.7', '192.168.0.2'] })]);
    expect(virtualServers(cluster)).toEqual([
      'TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'TCP 192.168.0.2:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'TCP 203.0.113.7:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
    ]);
    expect(setEntries(cluster)['KUBE-EXTERNAL-IP']).toEqual(['192.168.0.2,tcp:80', '203.0.113.7,tcp:80']);
    expect(cluster.boundAddresses).toEqual(['10.96.0.10', '203.0.113.7']);
    const local = render([web({ externalIPs: ['203.0.113.7'], externalTrafficPolicy: 'Local' })]);
    expect(setEntries(local)['KUBE-EXTERNAL-IP-LOCAL']).toEqual(['203.0.113.7,tcp:80']);
    expect(setEntries(local)['KUBE-EXTERNAL-IP']).toBeUndefined();
    expect(virtualServers(local)).toContain('TCP 203.0.113.7:80 rr -> 10.244.1.2:8080/1');
  });

  it('LoadBalancer with source ranges holding the node: FW set, source CIDRs, the VIP as allowed source', () => {
    const lb = web({
      type: 'LoadBalancer',
      nodePort: 30080,
      loadBalancerIngress: [
        { ip: '198.51.100.9', ipMode: 'VIP' },
        { ip: '198.51.100.10', ipMode: 'Proxy' },
      ],
      loadBalancerSourceRanges: ['192.168.0.0/24', '203.0.113.0/24'],
    });
    const rs = render([lb]);
    // ipMode Proxy: the load balancer proxies to node ports itself, no virtual server for its IP.
    expect(rs.virtualServers.map((vs) => vs.address)).toEqual([
      '10.96.0.10',
      '192.168.0.2',
      '192.168.1.2',
      '198.51.100.9',
    ]);
    expect(setEntries(rs)).toMatchObject({
      'KUBE-LOAD-BALANCER': ['198.51.100.9,tcp:80'],
      'KUBE-LOAD-BALANCER-FW': ['198.51.100.9,tcp:80'],
      'KUBE-LOAD-BALANCER-SOURCE-CIDR': [
        '198.51.100.9,tcp:80,192.168.0.0/24',
        '198.51.100.9,tcp:80,203.0.113.0/24',
      ],
      'KUBE-LOAD-BALANCER-SOURCE-IP': ['198.51.100.9,tcp:80,198.51.100.9'],
    });
    expect(rulesOf(rs).filter((r) => r.includes('KUBE-IPVS-OUT-FILTER'))).toEqual([]);
    expect(rulesOf(rs)).toContain(
      '-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL',
    );
  });

  it('LoadBalancer whose source ranges leave the node out: the node cannot reach the VIP (KUBE-IPVS-OUT-FILTER)', () => {
    const rs = render([
      web({
        type: 'LoadBalancer',
        nodePort: 30080,
        loadBalancerIngress: [{ ip: '198.51.100.9', ipMode: 'VIP' }],
        loadBalancerSourceRanges: ['203.0.113.0/24'],
      }),
    ]);
    expect(setEntries(rs)['KUBE-LOAD-BALANCER-SOURCE-IP']).toBeUndefined();
    expect(rulesOf(rs).filter((r) => r.startsWith('-A KUBE-IPVS-OUT-FILTER'))).toEqual([
      '-A KUBE-IPVS-OUT-FILTER -s 198.51.100.9 -m ipvs --vaddr 198.51.100.9 --vproto tcp --vport 80 -j DROP',
    ]);
  });

  it('externalTrafficPolicy Local: external addresses take the local endpoints, the -LOCAL sets skip masquerade', () => {
    const rs = render([
      web({
        type: 'LoadBalancer',
        nodePort: 30080,
        healthCheckNodePort: 32000,
        externalTrafficPolicy: 'Local',
        loadBalancerIngress: [{ ip: '198.51.100.9', ipMode: 'VIP' }],
      }),
    ]);
    expect(virtualServers(rs)).toEqual([
      'TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/1',
      'TCP 192.168.0.2:30080 rr -> 10.244.1.2:8080/1',
      'TCP 192.168.1.2:30080 rr -> 10.244.1.2:8080/1',
      'TCP 198.51.100.9:80 rr -> 10.244.1.2:8080/1',
    ]);
    expect(setEntries(rs)).toMatchObject({
      'KUBE-LOAD-BALANCER-LOCAL': ['198.51.100.9,tcp:80'],
      'KUBE-NODE-PORT-LOCAL-TCP': ['30080'],
      'KUBE-NODE-PORT-TCP': ['30080'],
      'KUBE-HEALTH-CHECK-NODE-PORT': ['32000'],
    });
  });

  it('externalTrafficPolicy Local without a local endpoint: the cluster endpoints (kubernetes#97081)', () => {
    const rs = render([
      web({
        type: 'NodePort',
        nodePort: 30080,
        externalTrafficPolicy: 'Local',
        endpoints: [ep('10.244.2.3', 8080, { nodeName: 'node-b' })],
      }),
    ]);
    expect(virtualServers(rs)).toContain('TCP 192.168.0.2:30080 rr -> 10.244.2.3:8080/1');
  });

  it('internalTrafficPolicy Local: the cluster IP takes only local endpoints, and none without one', () => {
    expect(virtualServers(render([web({ internalTrafficPolicy: 'Local' })]))).toEqual([
      'TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1',
    ]);
    const none = render([
      web({ internalTrafficPolicy: 'Local', endpoints: [ep('10.244.2.3', 8080, { nodeName: 'node-b' })] }),
    ]);
    expect(virtualServers(none)).toEqual(['TCP 10.96.0.10:80 rr -> ']);
  });

  it('sessionAffinity ClientIP: persistent virtual servers with the affinity timeout', () => {
    const rs = render([
      web({
        type: 'NodePort',
        nodePort: 30080,
        sessionAffinity: { type: 'ClientIP', timeoutSeconds: 10800 },
      }),
    ]);
    expect(rs.virtualServers.map((vs) => vs.persistenceTimeoutSeconds)).toEqual([10800, 10800, 10800]);
    expect(serializeIpvs(rs).split('\n')[0]).toBe('-A -t 10.96.0.10:80 -s rr -p 10800');
  });

  it('terminating endpoints get weight 0 while ready ones exist, weight 1 when they are all that serve', () => {
    const terminating = { ready: false, serving: true, terminating: true, nodeName: 'node-b' };
    const mixed = render([
      web({
        endpoints: [ep('10.244.1.2', 8080, { nodeName: 'node-a' }), ep('10.244.2.3', 8080, terminating)],
      }),
    ]);
    expect(virtualServers(mixed)).toEqual(['TCP 10.96.0.10:80 rr -> 10.244.1.2:8080/1, 10.244.2.3:8080/0']);
    const onlyTerminating = render([web({ endpoints: [ep('10.244.2.3', 8080, terminating)] })]);
    expect(virtualServers(onlyTerminating)).toEqual(['TCP 10.96.0.10:80 rr -> 10.244.2.3:8080/1']);
    // Neither ready nor terminating: not a real server at all.
    const notReady = render([web({ endpoints: [ep('10.244.2.3', 8080, { ready: false, serving: false })] })]);
    expect(virtualServers(notReady)).toEqual(['TCP 10.96.0.10:80 rr -> ']);
  });

  it('headless and ExternalName Services get nothing', async () => {
    const { state } = await loadClusterState([join(GOLDEN_DIR, 'headless-externalname', 'input.yaml')]);
    const rs = renderIpvs(state, options());
    expect(rs.virtualServers).toEqual([]);
    expect(setEntries(rs)).toEqual({});
    expect(rs.boundAddresses).toEqual([]);
  });

  it('IPv6: KUBE-6- set names (cut to 31 characters), inet6 sets, bracketed ipvsadm addresses', () => {
    const v6 = svcPort('ns1', 'web6', 'http', {
      clusterIPs: ['fd00:96::10'],
      type: 'LoadBalancer',
      nodePort: 30080,
      loadBalancerIngress: [{ ip: '2001:db8::9', ipMode: 'VIP' }],
      loadBalancerSourceRanges: ['2001:db8:1::/48'],
      endpoints: [ep('fd00:244::2', 8080, { nodeName: 'node-a' })],
    });
    const rs = renderIpvs(
      stateOf(v6),
      options({ family: 'IPv6', nodeIPs: ['fd00:99::2', 'fe80::1'], clusterCIDRs: ['fd00:244::/56'] }),
    );
    expect(virtualServers(rs)).toEqual([
      'TCP 2001:db8::9:80 rr -> fd00:244::2:8080/1',
      'TCP fd00:96::10:80 rr -> fd00:244::2:8080/1',
      'TCP fd00:99::2:30080 rr -> fd00:244::2:8080/1',
    ]);
    expect(setEntries(rs)).toMatchObject({
      'KUBE-6-LOOP-BACK': ['fd00:244::2,tcp:8080,fd00:244::2'],
      'KUBE-6-CLUSTER-IP': ['fd00:96::10,tcp:80'],
      'KUBE-6-LOAD-BALANCER-SOURCE-CID': ['2001:db8::9,tcp:80,2001:db8:1::/48'],
      'KUBE-6-NODE-PORT-TCP': ['30080'],
    });
    expect(rs.ipsets.map((s) => s.name)).toContain('KUBE-6-NODE-PORT-LOCAL-SCTP-HAS');
    expect(rs.ipsets.find((s) => s.name === 'KUBE-6-CLUSTER-IP')?.family).toBe('inet6');
    expect(serializeIpvs(rs)).toContain('-a -t [fd00:96::10]:80 -r [fd00:244::2]:8080 -m -w 1\n');
    expect(rulesOf(rs)[0]).toBe(
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x004000/0x004000 -j ACCEPT',
    );
    expect(rulesOf(rs)).toContain('-A KUBE-SERVICES -s ::1/128 -j RETURN');
  });
});

describe('renderIpvs: scheduler, sysctls, constant iptables rules', () => {
  it('the scheduler and its flags go on every virtual server; mh gets mh-port as kube-proxy sets it', () => {
    expect(virtualServers(render([web()], { scheduler: 'sh', schedulerFlags: ['sh-fallback'] }))[0]).toMatch(
      /^TCP 10.96.0.10:80 sh -b sh-fallback ->/,
    );
    expect(virtualServers(render([web()], { scheduler: 'mh' }))[0]).toMatch(
      /^TCP 10.96.0.10:80 mh -b mh-port ->/,
    );
    expect(() => render([web()], { scheduler: 'rr', schedulerFlags: ['sh-port'] })).toThrow(
      'options: schedulerFlags: "sh-port" is a flag of sh, not of rr',
    );
    expect(() => render([web()], { scheduler: 'fastest' as 'rr' })).toThrow(
      'options: scheduler: "fastest" is not an IPVS scheduler',
    );
  });

  it('sysctls as kube-proxy sets them: conn_reuse_mode=0 only on 4.1 ≤ kernel < 5.9, ARP ones with strictARP', () => {
    const keys = (extra: Partial<IpvsRenderOptions>): string[] =>
      render([], extra).sysctls.map((s) => `${s.key}=${s.value}`);
    expect(keys({})).toEqual([
      'net/ipv4/vs/conntrack=1',
      'net/ipv4/vs/expire_nodest_conn=1',
      'net/ipv4/vs/expire_quiescent_template=1',
      'net/ipv4/ip_forward=1',
    ]);
    expect(keys({ kernelVersion: '5.4.0-150-generic' })).toContain('net/ipv4/vs/conn_reuse_mode=0');
    expect(keys({ kernelVersion: '5.9.0' })).not.toContain('net/ipv4/vs/conn_reuse_mode=0');
    expect(keys({ kernelVersion: '3.10.0' })).not.toContain('net/ipv4/vs/conn_reuse_mode=0');
    expect(keys({ strictARP: true }).slice(-2)).toEqual([
      'net/ipv4/conf/all/arp_ignore=1',
      'net/ipv4/conf/all/arp_announce=2',
    ]);
  });

  it('the iptables rules do not grow with the number of Services', () => {
    const many = (n: number): ClusterState =>
      stateOf(
        ...Array.from({ length: n }, (_, i) =>
          svcPort('ns', `s${i}`, 'p', {
            type: 'LoadBalancer',
            nodePort: 30000 + i,
            clusterIPs: [`10.96.${i >> 8}.${i & 255}`],
            externalIPs: [`203.0.${i >> 8}.${i & 255}`],
            loadBalancerIngress: [{ ip: `198.51.${i >> 8}.${i & 255}`, ipMode: 'VIP' }],
            endpoints: [ep(`10.244.${i >> 8}.${i & 255}`, 8080, { nodeName: 'node-a' })],
          }),
        ),
      );
    const one = rulesOf(renderIpvs(many(1), options()));
    const thousand = renderIpvs(many(1000), options());
    expect(rulesOf(thousand)).toEqual(one);
    expect(thousand.virtualServers).toHaveLength(1000 * 5);
  });

  it('masqueradeAll and a missing local-traffic detector change only the cluster-IP masquerade rule', () => {
    const masq = (extra: Partial<IpvsRenderOptions>): string | undefined =>
      rulesOf(render([web()], extra)).find(
        (r) =>
          (r.includes('KUBE-CLUSTER-IP dst') && r.endsWith('KUBE-MARK-MASQ')) ||
          r.includes('KUBE-CLUSTER-IP src'),
      );
    expect(masq({})).toBe(
      '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ',
    );
    expect(masq({ masqueradeAll: true })).toMatch(/KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ$/);
    expect(masq({ clusterCIDRs: [] })).toMatch(/KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ$/);
  });

  it('serializes the sets as ipset restore input, every set created even when empty', () => {
    const text = serializeIpsets(render([web({ type: 'NodePort', nodePort: 30080 })]));
    const lines = text.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('create'))).toHaveLength(17);
    expect(lines).toContain(
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment -exist',
    );
    expect(lines).toContain('create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 comment -exist');
    expect(lines.filter((l) => l.startsWith('add'))).toEqual([
      'add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2',
      'add KUBE-CLUSTER-IP 10.96.0.10,tcp:80',
      'add KUBE-NODE-PORT-TCP 30080',
      'add KUBE-IPVS-IPS 10.96.0.10',
    ]);
  });

  it('is deterministic: the same state renders the same structure', () => {
    const ports = [
      web({ type: 'NodePort', nodePort: 30080 }),
      svcPort('ns0', 'a', 'p', { clusterIPs: ['10.96.0.1'] }),
    ];
    expect(render(ports)).toEqual(render([...ports].reverse()));
  });
});
