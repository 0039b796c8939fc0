// A payload in the shape kube-proxy's iptables mode writes, built-in chains and jumps included, shared
// by the troubleshoot tests. It is kube-proxy's TestOverallIPTablesRules expectation
// (test/fixtures/kube-proxy-overall.ts) with the changes below, so that the walker meets a two-endpoint
// affinity ladder, a three-step ladder and --random-fully.
// Node 192.168.0.2, pod CIDR 10.0.0.0/8, masquerade bit 0x4000.
//   ns1/svc1:p80  ClusterIP 172.30.0.41:80 → 10.180.0.1:80
//   ns2/svc2:p80  LoadBalancer eTP=Local, 172.30.0.42, externalIP 192.168.99.22, LB 1.2.3.4,
//                 nodePort 3001, health check 30000, no local endpoint (cluster-wide 10.180.0.2:80)
//   ns3/svc3:p80  NodePort 3003 → 10.180.0.3:80
//   ns4/svc4:p80  ClusterIP 172.30.0.44 + externalIP 192.168.99.33 → 10.180.0.4:80, 10.180.0.5:80
//   ns5/svc5:p80  LoadBalancer 5.6.7.8 nodePort 3002, sourceRanges 203.0.113.0/25, ClientIP
//                 affinity → 10.180.0.6:80, 10.180.0.7:80   (kube-proxy's test: one endpoint)
//   ns6/svc6:p80  ClusterIP 172.30.0.46, no endpoints
//   ns7/svc7:p53  UDP ClusterIP 172.30.0.47:53 → 10.180.0.8/9/10:53 (three-step ladder; not in kube-proxy's test)
import { KUBE_PROXY_OVERALL_RULES } from '../../fixtures/kube-proxy-overall.js';
import { parsePayload } from '../../fixtures/restore-payload.js';

export const NODE_IP = '192.168.0.2';
export const EXTERNAL_CLIENT = '203.0.113.2';
export const BLOCKED_CLIENT = '203.0.113.130';

/** The built-in chains (policy ACCEPT) and kube-proxy's jumps into its own chains from them. */
const BUILTINS: Record<string, { chains: string[]; jumps: string[] }> = {
  filter: {
    chains: ['INPUT', 'FORWARD', 'OUTPUT'],
    jumps: [
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-A INPUT -j KUBE-FIREWALL',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -j KUBE-FIREWALL',
    ],
  },
  nat: {
    chains: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
    jumps: [
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ],
  },
};

/** A KUBE-SEP chain as kube-proxy writes it: hairpin masquerade, then DNAT (recording affinity). */
function endpointChain(
  chain: string,
  service: string,
  protocol: 'tcp' | 'udp',
  destination: string,
  { affinity = false } = {},
): Record<string, string[]> {
  const ip = destination.slice(0, destination.lastIndexOf(':'));
  const recent = affinity ? ` -m recent --set --name ${chain} --mask 255.255.255.255 --rsource` : '';
  return {
    [chain]: [
      `-A ${chain} -m comment --comment ${service} -s ${ip} -j KUBE-MARK-MASQ`,
      `-A ${chain} -m comment --comment ${service} -m ${protocol} -p ${protocol}${recent} -j DNAT --to-destination ${destination}`,
    ],
  };
}

/** nat chains that replace kube-proxy's (same name) or are added to them. */
const NAT_CHAINS: Record<string, string[]> = {
  'KUBE-POSTROUTING': [
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ],
  // svc5 with two affinity endpoints, the recent match as iptables-save prints it.
  ...endpointChain('KUBE-SEP-I77PXRDZVX7PMWMN', 'ns5/svc5:p80', 'tcp', '10.180.0.6:80', { affinity: true }),
  ...endpointChain('KUBE-SEP-J77PXRDZVX7PMWMN', 'ns5/svc5:p80', 'tcp', '10.180.0.7:80', { affinity: true }),
  'KUBE-SVC-NUKIZ6OKUXPJNT4C': [
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.6:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap --mask 255.255.255.255 --rsource -j KUBE-SEP-I77PXRDZVX7PMWMN',
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.7:80" -m recent --name KUBE-SEP-J77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap --mask 255.255.255.255 --rsource -j KUBE-SEP-J77PXRDZVX7PMWMN',
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.6:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-I77PXRDZVX7PMWMN',
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.7:80" -j KUBE-SEP-J77PXRDZVX7PMWMN',
  ],
  // svc7: UDP with three endpoints. The hashes are made up (readable), not kube-proxy's.
  ...endpointChain('KUBE-SEP-DNS1AAAAAAAAAAAA', 'ns7/svc7:p53', 'udp', '10.180.0.8:53'),
  ...endpointChain('KUBE-SEP-DNS2AAAAAAAAAAAA', 'ns7/svc7:p53', 'udp', '10.180.0.9:53'),
  ...endpointChain('KUBE-SEP-DNS3AAAAAAAAAAAA', 'ns7/svc7:p53', 'udp', '10.180.0.10:53'),
  'KUBE-SVC-DNSDNSDNSDNSDNS7': [
    '-A KUBE-SVC-DNSDNSDNSDNSDNS7 -m comment --comment "ns7/svc7:p53 cluster IP" -m udp -p udp -d 172.30.0.47 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-DNSDNSDNSDNSDNS7 -m comment --comment "ns7/svc7:p53 -> 10.180.0.10:53" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-DNS3AAAAAAAAAAAA',
    '-A KUBE-SVC-DNSDNSDNSDNSDNS7 -m comment --comment "ns7/svc7:p53 -> 10.180.0.8:53" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DNS1AAAAAAAAAAAA',
    '-A KUBE-SVC-DNSDNSDNSDNSDNS7 -m comment --comment "ns7/svc7:p53 -> 10.180.0.9:53" -j KUBE-SEP-DNS2AAAAAAAAAAAA',
  ],
};

/** svc7's KUBE-SERVICES rule, placed before the last (node ports) rule as kube-proxy orders it. */
const SVC7_SERVICES_RULE =
  '-A KUBE-SERVICES -m comment --comment "ns7/svc7:p53 cluster IP" -m udp -p udp -d 172.30.0.47 --dport 53 -j KUBE-SVC-DNSDNSDNSDNSDNS7';

function buildPayload(): string {
  const tables = parsePayload(KUBE_PROXY_OVERALL_RULES);
  const nat = tables.get('nat');
  const services = nat?.get('KUBE-SERVICES');
  if (!nat || !services) throw new Error('kube-proxy-overall fixture lacks nat KUBE-SERVICES');
  for (const [chain, rules] of Object.entries(NAT_CHAINS)) nat.set(chain, rules);
  services.splice(services.length - 1, 0, SVC7_SERVICES_RULE);

  const lines = ['# Generated by hand for portway tests'];
  for (const [table, chains] of tables) {
    const builtins = BUILTINS[table] ?? { chains: [], jumps: [] };
    // Built-in chains first, then ours in ascending name order, as iptables-save lists them.
    const own = [...chains.keys()].sort();
    lines.push(`*${table}`);
    lines.push(...builtins.chains.map((c) => `:${c} ACCEPT [0:0]`), ...own.map((c) => `:${c} - [0:0]`));
    lines.push(...builtins.jumps, ...own.flatMap((c) => chains.get(c) ?? []));
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

export const KUBE_PROXY_RULES = buildPayload();
