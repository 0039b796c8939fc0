// Behaviour, not text: render ClusterStates shaped like kube-proxy's iptables tests
// (pkg/proxy/iptables/proxier_test.go), serialise them with the built-in jumps, parse the payload
// and walk packets through it with the troubleshoot walker. Each case asserts the outcome
// kube-proxy's packet-flow tests assert: the endpoint set, masquerade yes/no, DROP/REJECT.
//
// Output notation follows kube-proxy's tracer: "ip:port, ip:port" (endpoints, any order),
// "DROP" / "REJECT", "ACCEPT" (accepted by a kube-proxy filter rule, e.g. a health check node
// port), or "" (no service rule applied: the packet passes unchanged).
//
// Where portway's walker is more faithful than kube-proxy's tracer (it follows the kernel's hooks:
// a node's own packets take nat OUTPUT / filter OUTPUT, and FORWARD's KUBE-FORWARD mark ACCEPT
// comes before KUBE-SERVICES), a packet's direction is chosen as the kernel would see it: a source
// that is one of the node's addresses (or loopback) is locally generated.
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import { ipFamilyOf } from '../../../src/model/ip.js';
import {
  renderIptables,
  serializeRuleSet,
  type IptablesRenderOptions,
} from '../../../src/render/iptables/index.js';
import { parseIptablesDump } from '../../../src/troubleshoot/iptables-dump.js';
import { walkPacket, type PacketOutcome } from '../../../src/troubleshoot/packet-walker.js';
import { overallServicePorts } from '../../fixtures/kube-proxy-overall.js';
import { ep, options, stateOf, svcPort } from './fixtures.js';

// kube-proxy's test constants.
const testNodeName = 'test-node';
const testNodeIP = '192.168.0.2';
const testNodeIPAlt = '192.168.1.2';
const testNodeIPv6 = '2001:db8::1';
const testNodeIPv6Alt = '2001:db8:1::2';
const testExternalClient = '203.0.113.2';
const testExternalClientBlocked = '203.0.113.130';
const testNodeIPs = [testNodeIP, testNodeIPAlt, testNodeIPv6, testNodeIPv6Alt];

interface FlowCase {
  name: string;
  sourceIP: string;
  destIP: string;
  destPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  output: string;
  masq?: boolean;
}

const KUBE_FILTER_CHAINS = new Set([
  'KUBE-SERVICES',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-PROXY-FIREWALL',
]);

/** The outcome in kube-proxy's tracer notation (endpoints sorted, so order does not matter). */
function kubeProxyOutput(o: PacketOutcome): string {
  if (o.verdict !== 'ACCEPT') return o.verdict;
  if (o.endpoints.length > 0) return [...o.endpoints].sort().join(', ');
  const acceptedByRule = o.path.some(
    (s) => s.table === 'filter' && KUBE_FILTER_CHAINS.has(s.chain) && / -j ACCEPT$/.test(s.rule),
  );
  return acceptedByRule ? 'ACCEPT' : '';
}

function sortOutput(output: string): string {
  return output === '' ? '' : output.split(', ').sort().join(', ');
}

function renderPayload(ports: ServicePort[], opts: Partial<IptablesRenderOptions> = {}): string {
  const rs = renderIptables(
    stateOf(...ports),
    options({ nodeName: testNodeName, nodeIPs: [testNodeIP, testNodeIPAlt], ...opts }),
  );
  return serializeRuleSet(rs, { includeBuiltinJumps: true });
}

function runPacketFlowTests(payload: string, cases: FlowCase[]): void {
  const dump = parseIptablesDump(payload);
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const locallyGenerated =
      testNodeIPs.includes(c.sourceIP) || c.sourceIP === '::1' || c.sourceIP.startsWith('127.');
    const outcome = walkPacket(
      dump,
      { protocol: c.protocol ?? 'TCP', sourceIP: c.sourceIP, destIP: c.destIP, destPort: c.destPort },
      {
        localAddresses: testNodeIPs.filter((ip) => ipFamilyOf(ip) === ipFamilyOf(c.sourceIP)),
        locallyGenerated,
      },
    );
    const got = { output: kubeProxyOutput(outcome), masq: outcome.masquerade };
    const want = { output: sortOutput(c.output), masq: c.masq ?? false };
    if (got.output !== want.output || got.masq !== want.masq) {
      // Show the rules that decided it, like kube-proxy's "By matching:".
      throw new Error(
        `${c.name}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}\nBy matching:\n` +
          outcome.path.map((s) => `  ${s.table} ${s.rule}`).join('\n'),
      );
    }
  });
}

const local = (ip: string, port = 80, extra: Partial<Endpoint> = {}): Endpoint =>
  ep(ip, port, { nodeName: testNodeName, ...extra });
const remote = (ip: string, node: string, port = 80, extra: Partial<Endpoint> = {}): Endpoint =>
  ep(ip, port, { nodeName: node, ...extra });
const terminating = { ready: false, serving: true, terminating: true };
const terminatingNotServing = { ready: false, serving: false, terminating: true };

describe('TestOverallIPTablesRules services, TestTracePacket flows', () => {
  const payload = renderPayload(overallServicePorts());
  runPacketFlowTests(payload, [
    { name: 'no match', sourceIP: '10.0.0.2', destIP: '10.0.0.3', destPort: 80, output: '' },
    {
      name: 'single endpoint',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.41',
      destPort: 80,
      output: '10.180.0.1:80',
    },
    {
      name: 'multiple endpoints',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.44',
      destPort: 80,
      output: '10.180.0.4:80, 10.180.0.5:80',
    },
    {
      name: 'LOCAL, KUBE-MARK-MASQ',
      sourceIP: testNodeIP,
      destIP: '192.168.99.22',
      destPort: 80,
      output: '10.180.0.2:80',
      masq: true,
    },
    { name: 'DROP', sourceIP: testExternalClient, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
    {
      name: 'ACCEPT (NodePortHealthCheck)',
      sourceIP: testNodeIP,
      destIP: testNodeIP,
      destPort: 30000,
      output: 'ACCEPT',
    },
    { name: 'REJECT', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
    // Beyond TestTracePacket: the LB source-range firewall and session affinity of svc5.
    {
      name: 'allowed external to LB with source ranges',
      sourceIP: testExternalClient,
      destIP: '5.6.7.8',
      destPort: 80,
      output: '10.180.0.3:80',
      masq: true,
    },
    {
      name: 'blocked external to LB with source ranges',
      sourceIP: testExternalClientBlocked,
      destIP: '5.6.7.8',
      destPort: 80,
      output: 'DROP',
    },
  ]);
});

describe('TestNoEndpointsReject', () => {
  const svcIP = '172.30.0.41';
  const payload = renderPayload([
    svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      clusterIPs: [svcIP],
      externalIPs: ['192.168.99.11'],
      nodePort: 3001,
      loadBalancerIngress: [{ ip: '1.2.3.4', ipMode: 'VIP' }],
    }),
  ]);
  runPacketFlowTests(payload, [
    {
      name: 'pod to cluster IP with no endpoints',
      sourceIP: '10.0.0.2',
      destIP: svcIP,
      destPort: 80,
      output: 'REJECT',
    },
    {
      name: 'external to external IP with no endpoints',
      sourceIP: testExternalClient,
      destIP: '192.168.99.11',
      destPort: 80,
      output: 'REJECT',
    },
    {
      name: 'pod to NodePort with no endpoints',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3001,
      output: 'REJECT',
    },
    {
      name: 'external to NodePort with no endpoints',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3001,
      output: 'REJECT',
    },
    {
      name: 'pod to LoadBalancer IP with no endpoints',
      sourceIP: '10.0.0.2',
      destIP: '1.2.3.4',
      destPort: 80,
      output: 'REJECT',
    },
    {
      name: 'external to LoadBalancer IP with no endpoints',
      sourceIP: testExternalClient,
      destIP: '1.2.3.4',
      destPort: 80,
      output: 'REJECT',
    },
  ]);
});

describe('TestClusterIPGeneral', () => {
  const two = (port: number) => [local('10.180.0.1', port), remote('10.180.2.1', 'node2', port)];
  const payload = renderPayload([
    svcPort('ns1', 'svc1', 'http', { clusterIPs: ['172.30.0.41'], endpoints: [local('10.180.0.1', 80)] }),
    svcPort('ns2', 'svc2', 'http', { clusterIPs: ['172.30.0.42'], endpoints: two(80) }),
    svcPort('ns2', 'svc2', 'https', { clusterIPs: ['172.30.0.42'], port: 443, endpoints: two(8443) }),
    svcPort('ns2', 'svc2', 'dns-udp', {
      clusterIPs: ['172.30.0.42'],
      port: 53,
      protocol: 'UDP',
      endpoints: two(53),
    }),
    svcPort('ns2', 'svc2', 'dns-tcp', { clusterIPs: ['172.30.0.42'], port: 53, endpoints: two(5353) }),
    svcPort('ns2', 'svc2', 'dns-sctp', {
      clusterIPs: ['172.30.0.42'],
      port: 53,
      protocol: 'SCTP',
      endpoints: two(53),
    }),
  ]);
  runPacketFlowTests(payload, [
    {
      name: 'simple clusterIP',
      sourceIP: '10.180.0.2',
      destIP: '172.30.0.41',
      destPort: 80,
      output: '10.180.0.1:80',
      masq: false,
    },
    {
      name: 'hairpin to cluster IP',
      sourceIP: '10.180.0.1',
      destIP: '172.30.0.41',
      destPort: 80,
      output: '10.180.0.1:80',
      masq: true,
    },
    {
      name: 'clusterIP with multiple endpoints',
      sourceIP: '10.180.0.2',
      destIP: '172.30.0.42',
      destPort: 80,
      output: '10.180.0.1:80, 10.180.2.1:80',
    },
    {
      name: 'clusterIP with TargetPort',
      sourceIP: '10.180.0.2',
      destIP: '172.30.0.42',
      destPort: 443,
      output: '10.180.0.1:8443, 10.180.2.1:8443',
    },
    {
      name: 'clusterIP with TCP, UDP, and SCTP on same port (TCP)',
      sourceIP: '10.180.0.2',
      protocol: 'TCP',
      destIP: '172.30.0.42',
      destPort: 53,
      output: '10.180.0.1:5353, 10.180.2.1:5353',
    },
    {
      name: 'clusterIP with TCP, UDP, and SCTP on same port (UDP)',
      sourceIP: '10.180.0.2',
      protocol: 'UDP',
      destIP: '172.30.0.42',
      destPort: 53,
      output: '10.180.0.1:53, 10.180.2.1:53',
    },
    {
      name: 'clusterIP with TCP, UDP, and SCTP on same port (SCTP)',
      sourceIP: '10.180.0.2',
      protocol: 'SCTP',
      destIP: '172.30.0.42',
      destPort: 53,
      output: '10.180.0.1:53, 10.180.2.1:53',
    },
    {
      name: 'TCP-only port does not match UDP traffic',
      sourceIP: '10.180.0.2',
      protocol: 'UDP',
      destIP: '172.30.0.42',
      destPort: 80,
      output: '',
    },
    {
      name: "svc1 does not accept svc2's ports",
      sourceIP: '10.180.0.2',
      destIP: '172.30.0.41',
      destPort: 443,
      output: '',
    },
  ]);
});

describe('TestLoadBalancer', () => {
  const svcIP = '172.30.0.41';
  const lb1 = '1.2.3.4';
  const lb2 = '5.6.7.8';
  const payload = renderPayload([
    svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      clusterIPs: [svcIP],
      nodePort: 3001,
      loadBalancerIngress: [
        { ip: lb1, ipMode: 'VIP' },
        { ip: lb2, ipMode: 'VIP' },
      ],
      loadBalancerSourceRanges: ['192.168.0.0/24', '203.0.113.0/25'],
      endpoints: [ep('10.180.0.1', 80)],
    }),
  ]);
  const out = '10.180.0.1:80';
  runPacketFlowTests(payload, [
    {
      name: 'pod to cluster IP',
      sourceIP: '10.0.0.2',
      destIP: svcIP,
      destPort: 80,
      output: out,
      masq: false,
    },
    {
      name: 'external to nodePort',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3001,
      output: out,
      masq: true,
    },
    {
      name: 'nodePort bypasses LoadBalancerSourceRanges',
      sourceIP: testExternalClientBlocked,
      destIP: testNodeIP,
      destPort: 3001,
      output: out,
      masq: true,
    },
    {
      name: 'accepted external to LB1',
      sourceIP: testExternalClient,
      destIP: lb1,
      destPort: 80,
      output: out,
      masq: true,
    },
    {
      name: 'accepted external to LB2',
      sourceIP: testExternalClient,
      destIP: lb2,
      destPort: 80,
      output: out,
      masq: true,
    },
    {
      name: 'blocked external to LB1',
      sourceIP: testExternalClientBlocked,
      destIP: lb1,
      destPort: 80,
      output: 'DROP',
    },
    {
      name: 'blocked external to LB2',
      sourceIP: testExternalClientBlocked,
      destIP: lb2,
      destPort: 80,
      output: 'DROP',
    },
    {
      name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)',
      sourceIP: '10.0.0.2',
      destIP: lb1,
      destPort: 80,
      output: 'DROP',
    },
    {
      name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)',
      sourceIP: '10.0.0.2',
      destIP: lb2,
      destPort: 80,
      output: 'DROP',
    },
    {
      name: 'node to LB1 (allowed by LoadBalancerSourceRanges)',
      sourceIP: testNodeIP,
      destIP: lb1,
      destPort: 80,
      output: out,
      masq: true,
    },
    {
      name: 'node to LB2 (allowed by LoadBalancerSourceRanges)',
      sourceIP: testNodeIP,
      destIP: lb2,
      destPort: 80,
      output: out,
      masq: true,
    },
    {
      name: 'same node to LB1, SNATted to LB1 (implicitly allowed)',
      sourceIP: lb1,
      destIP: lb1,
      destPort: 80,
      output: out,
      masq: true,
    },
    {
      name: 'same node to LB2, SNATted to LB2 (implicitly allowed)',
      sourceIP: lb2,
      destIP: lb2,
      destPort: 80,
      output: out,
      masq: true,
    },
  ]);
});

describe('TestNodePorts', () => {
  const testCases: Array<{
    name: string;
    family: 'IPv4' | 'IPv6';
    localhostNodePorts: boolean;
    nodePortAddresses: string[];
    allowAltNodeIP: boolean;
  }> = [
    {
      name: 'ipv4, localhost-nodeports enabled',
      family: 'IPv4',
      localhostNodePorts: true,
      nodePortAddresses: [],
      allowAltNodeIP: true,
    },
    {
      name: 'ipv4, localhost-nodeports disabled',
      family: 'IPv4',
      localhostNodePorts: false,
      nodePortAddresses: [],
      allowAltNodeIP: true,
    },
    {
      name: 'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses',
      family: 'IPv4',
      localhostNodePorts: false,
      nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'],
      allowAltNodeIP: false,
    },
    {
      name: 'ipv4, localhost-nodeports enabled, multiple nodeport-addresses',
      family: 'IPv4',
      localhostNodePorts: false,
      nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'],
      allowAltNodeIP: true,
    },
    {
      name: 'ipv6, localhost-nodeports enabled',
      family: 'IPv6',
      localhostNodePorts: true,
      nodePortAddresses: [],
      allowAltNodeIP: true,
    },
    {
      name: 'ipv6, localhost-nodeports disabled',
      family: 'IPv6',
      localhostNodePorts: false,
      nodePortAddresses: [],
      allowAltNodeIP: true,
    },
    {
      name: 'ipv6, localhost-nodeports disabled, multiple nodeport-addresses',
      family: 'IPv6',
      localhostNodePorts: false,
      nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'],
      allowAltNodeIP: false,
    },
  ];
  for (const tc of testCases) {
    describe(tc.name, () => {
      const v4 = tc.family === 'IPv4';
      const svcIP = v4 ? '172.30.0.41' : 'fd00:172:30::41';
      const epIP1 = v4 ? '10.180.0.1' : 'fd00:10:180::1';
      const epIP2 = v4 ? '10.180.2.1' : 'fd00:10:180::2:1';
      const payload = renderPayload(
        [
          svcPort('ns1', 'svc1', 'p80', {
            type: 'NodePort',
            clusterIPs: [svcIP],
            ipFamilies: [tc.family],
            nodePort: 3001,
            endpoints: [ep(epIP1, 80), local(epIP2)],
          }),
        ],
        {
          family: tc.family,
          nodeIPs: v4 ? [testNodeIP, testNodeIPAlt] : [testNodeIPv6, testNodeIPv6Alt],
          clusterCIDRs: [v4 ? '10.0.0.0/8' : 'fd00:10::/64'],
          localhostNodePorts: tc.localhostNodePorts,
          nodePortAddresses: tc.nodePortAddresses,
        },
      );
      const podIP = v4 ? '10.0.0.2' : 'fd00:10::2';
      const externalClientIP = v4 ? testExternalClient : '2600:5200::1';
      const nodeIP = v4 ? testNodeIP : testNodeIPv6;
      const altNodeIP = v4 ? testNodeIPAlt : testNodeIPv6Alt;
      const localhostIP = v4 ? '127.0.0.1' : '::1';
      const fmt = (ip: string) => (v4 ? `${ip}:80` : `[${ip}]:80`);
      const output = `${fmt(epIP1)}, ${fmt(epIP2)}`;
      runPacketFlowTests(payload, [
        { name: 'pod to cluster IP', sourceIP: podIP, destIP: svcIP, destPort: 80, output, masq: false },
        {
          name: 'external to nodePort',
          sourceIP: externalClientIP,
          destIP: nodeIP,
          destPort: 3001,
          output,
          masq: true,
        },
        { name: 'node to nodePort', sourceIP: nodeIP, destIP: nodeIP, destPort: 3001, output, masq: true },
        v4 && tc.localhostNodePorts
          ? {
              name: 'localhost to nodePort gets masqueraded',
              sourceIP: localhostIP,
              destIP: localhostIP,
              destPort: 3001,
              output,
              masq: true,
            }
          : {
              name: 'localhost to nodePort is ignored',
              sourceIP: localhostIP,
              destIP: localhostIP,
              destPort: 3001,
              output: '',
            },
        tc.allowAltNodeIP
          ? {
              name: 'external to nodePort on secondary IP',
              sourceIP: externalClientIP,
              destIP: altNodeIP,
              destPort: 3001,
              output,
              masq: true,
            }
          : {
              name: 'secondary nodeIP ignores NodePorts',
              sourceIP: externalClientIP,
              destIP: altNodeIP,
              destPort: 3001,
              output: '',
            },
      ]);
    });
  }
});

describe('TestHealthCheckNodePort', () => {
  const payload = renderPayload(
    [
      svcPort('ns1', 'svc1', 'p80', {
        type: 'LoadBalancer',
        clusterIPs: ['172.30.0.42'],
        nodePort: 3001,
        healthCheckNodePort: 30000,
        externalTrafficPolicy: 'Local',
      }),
    ],
    { nodePortAddresses: ['127.0.0.0/8'] },
  );
  runPacketFlowTests(payload, [
    {
      name: 'firewall accepts HealthCheckNodePort',
      sourceIP: '1.2.3.4',
      destIP: testNodeIP,
      destPort: 30000,
      output: 'ACCEPT',
      masq: false,
    },
  ]);
  describe('after the Service is deleted', () => {
    runPacketFlowTests(renderPayload([], { nodePortAddresses: ['127.0.0.0/8'] }), [
      {
        name: 'HealthCheckNodePort no longer has any rule',
        sourceIP: '1.2.3.4',
        destIP: testNodeIP,
        destPort: 30000,
        output: '',
      },
    ]);
  });
});

function policyService(policy: 'Local' | 'Cluster'): ServicePort {
  return svcPort('ns1', 'svc1', 'p80', {
    type: 'LoadBalancer',
    externalTrafficPolicy: policy,
    clusterIPs: ['172.30.0.41'],
    externalIPs: ['192.168.99.11'],
    nodePort: 3001,
    healthCheckNodePort: policy === 'Local' ? 30000 : 0,
    loadBalancerIngress: [{ ip: '1.2.3.4', ipMode: 'VIP' }],
    endpoints: [ep('10.180.0.1', 80), local('10.180.2.1')],
  });
}

describe('TestExternalTrafficPolicyLocal', () => {
  const both = '10.180.0.1:80, 10.180.2.1:80';
  const onlyLocal = '10.180.2.1:80';
  runPacketFlowTests(renderPayload([policyService('Local')]), [
    {
      name: 'pod to cluster IP hits both endpoints, unmasqueraded',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.41',
      destPort: 80,
      output: both,
    },
    {
      name: 'pod to external IP hits both endpoints, unmasqueraded',
      sourceIP: '10.0.0.2',
      destIP: '192.168.99.11',
      destPort: 80,
      output: both,
    },
    {
      name: 'external to external IP hits only local endpoint, unmasqueraded',
      sourceIP: testExternalClient,
      destIP: '192.168.99.11',
      destPort: 80,
      output: onlyLocal,
    },
    {
      name: 'pod to LB IP hits only both endpoints, unmasqueraded',
      sourceIP: '10.0.0.2',
      destIP: '1.2.3.4',
      destPort: 80,
      output: both,
    },
    {
      name: 'external to LB IP hits only local endpoint, unmasqueraded',
      sourceIP: testExternalClient,
      destIP: '1.2.3.4',
      destPort: 80,
      output: onlyLocal,
    },
    {
      name: 'pod to NodePort hits both endpoints, unmasqueraded',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3001,
      output: both,
    },
    {
      name: 'external to NodePort hits only local endpoint, unmasqueraded',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3001,
      output: onlyLocal,
    },
  ]);
});

describe('TestExternalTrafficPolicyCluster', () => {
  const both = '10.180.0.1:80, 10.180.2.1:80';
  runPacketFlowTests(renderPayload([policyService('Cluster')]), [
    {
      name: 'pod to cluster IP hits both endpoints, unmasqueraded',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.41',
      destPort: 80,
      output: both,
      masq: false,
    },
    {
      name: 'pod to external IP hits both endpoints, masqueraded',
      sourceIP: '10.0.0.2',
      destIP: '192.168.99.11',
      destPort: 80,
      output: both,
      masq: true,
    },
    {
      name: 'external to external IP hits both endpoints, masqueraded',
      sourceIP: testExternalClient,
      destIP: '192.168.99.11',
      destPort: 80,
      output: both,
      masq: true,
    },
    {
      name: 'pod to LB IP hits both endpoints, masqueraded',
      sourceIP: '10.0.0.2',
      destIP: '1.2.3.4',
      destPort: 80,
      output: both,
      masq: true,
    },
    {
      name: 'external to LB IP hits both endpoints, masqueraded',
      sourceIP: testExternalClient,
      destIP: '1.2.3.4',
      destPort: 80,
      output: both,
      masq: true,
    },
    {
      name: 'pod to NodePort hits both endpoints, masqueraded',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3001,
      output: both,
      masq: true,
    },
    {
      name: 'external to NodePort hits both endpoints, masqueraded',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3001,
      output: both,
      masq: true,
    },
  ]);
});

describe('TestInternalTrafficPolicy', () => {
  const cases: Array<{
    name: string;
    policy: 'Local' | 'Cluster';
    endpoints: Array<[string, string]>;
    output: string;
  }> = [
    {
      name: 'internalTrafficPolicy is cluster',
      policy: 'Cluster',
      endpoints: [
        ['10.0.1.1', testNodeName],
        ['10.0.1.2', 'node1'],
        ['10.0.1.3', 'node2'],
      ],
      output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80',
    },
    {
      name: 'internalTrafficPolicy is local and there is one local endpoint',
      policy: 'Local',
      endpoints: [
        ['10.0.1.1', testNodeName],
        ['10.0.1.2', 'node1'],
        ['10.0.1.3', 'node2'],
      ],
      output: '10.0.1.1:80',
    },
    {
      name: 'internalTrafficPolicy is local and there are multiple local endpoints',
      policy: 'Local',
      endpoints: [
        ['10.0.1.1', testNodeName],
        ['10.0.1.2', testNodeName],
        ['10.0.1.3', 'node2'],
      ],
      output: '10.0.1.1:80, 10.0.1.2:80',
    },
    {
      name: 'internalTrafficPolicy is local and there are no local endpoints',
      policy: 'Local',
      endpoints: [
        ['10.0.1.1', 'node0'],
        ['10.0.1.2', 'node1'],
        ['10.0.1.3', 'node2'],
      ],
      output: 'DROP',
    },
  ];
  for (const tc of cases) {
    describe(tc.name, () => {
      const svc = (endpoints: Endpoint[]) =>
        svcPort('ns1', 'svc1', '', {
          clusterIPs: ['172.30.1.1'],
          internalTrafficPolicy: tc.policy,
          endpoints,
        });
      runPacketFlowTests(renderPayload([svc(tc.endpoints.map(([ip, node]) => remote(ip, node)))]), [
        {
          name: 'pod to ClusterIP',
          sourceIP: '10.0.0.2',
          destIP: '172.30.1.1',
          destPort: 80,
          output: tc.output,
        },
      ]);
      runPacketFlowTests(renderPayload([svc([])]), [
        {
          name: 'endpoints deleted',
          sourceIP: '10.0.0.2',
          destIP: '172.30.1.1',
          destPort: 80,
          output: 'REJECT',
        },
      ]);
    });
  }
});

describe('TestTerminatingEndpointsTrafficPolicyLocal / Cluster', () => {
  // kube-proxy's "no usable endpoints" case lists 10.0.1.5 twice (local and remote); ClusterState
  // deduplicates endpoints by address, so the remote one is 10.0.1.6 here.
  const slices: Array<{ name: string; endpoints: Endpoint[]; local: [string, string] }> = [
    {
      name: 'ready endpoints exist',
      endpoints: [
        local('10.0.1.1'),
        local('10.0.1.2'),
        local('10.0.1.3', 80, terminating),
        local('10.0.1.4', 80, terminatingNotServing),
        remote('10.0.1.5', 'node-1'),
      ],
      // [pod to clusterIP, external to LB]
      local: ['10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', '10.0.1.1:80, 10.0.1.2:80'],
    },
    {
      name: 'only terminating endpoints exist',
      endpoints: [
        local('10.0.1.2', 80, terminating),
        local('10.0.1.3', 80, terminating),
        local('10.0.1.4', 80, terminatingNotServing),
        remote('10.0.1.5', 'node-1'),
      ],
      local: ['10.0.1.5:80', '10.0.1.2:80, 10.0.1.3:80'],
    },
    {
      name: 'terminating endpoints on remote node',
      endpoints: [remote('10.0.1.5', 'node-1', 80, terminating)],
      local: ['10.0.1.5:80', 'DROP'],
    },
    {
      name: 'no usable endpoints on any node',
      endpoints: [
        local('10.0.1.5', 80, terminatingNotServing),
        remote('10.0.1.6', 'node-1', 80, terminatingNotServing),
      ],
      local: ['REJECT', 'REJECT'],
    },
  ];
  const service = (policy: 'Local' | 'Cluster', endpoints: Endpoint[]) =>
    svcPort('ns1', 'svc1', '', {
      type: 'LoadBalancer',
      externalTrafficPolicy: policy,
      clusterIPs: ['172.30.1.1'],
      healthCheckNodePort: 30000,
      loadBalancerIngress: [{ ip: '1.2.3.4', ipMode: 'VIP' }],
      endpoints,
    });

  for (const tc of slices) {
    describe(`Local: ${tc.name}`, () => {
      runPacketFlowTests(renderPayload([service('Local', tc.endpoints)]), [
        {
          name: 'pod to clusterIP',
          sourceIP: '10.0.0.2',
          destIP: '172.30.1.1',
          destPort: 80,
          output: tc.local[0],
        },
        {
          name: 'external to LB',
          sourceIP: testExternalClient,
          destIP: '1.2.3.4',
          destPort: 80,
          output: tc.local[1],
        },
      ]);
    });
  }
  describe('Local: after endpoints deleted', () => {
    runPacketFlowTests(renderPayload([service('Local', [])]), [
      {
        name: 'pod to clusterIP after endpoints deleted',
        sourceIP: '10.0.0.2',
        destIP: '172.30.1.1',
        destPort: 80,
        output: 'REJECT',
      },
      {
        name: 'external to LB after endpoints deleted',
        sourceIP: testExternalClient,
        destIP: '1.2.3.4',
        destPort: 80,
        output: 'REJECT',
      },
    ]);
  });

  const clusterSlices: Array<{
    name: string;
    endpoints: Endpoint[];
    pod: string;
    external: string;
    masq: boolean;
  }> = [
    {
      name: 'ready endpoints exist',
      endpoints: [
        local('10.0.1.1'),
        local('10.0.1.2'),
        remote('10.0.1.3', 'another-node', 80, terminating),
        remote('10.0.1.4', 'another-node', 80, terminatingNotServing),
        remote('10.0.1.5', 'another-node'),
      ],
      pod: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80',
      external: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80',
      masq: true,
    },
    {
      name: 'only terminating endpoints exist',
      endpoints: [
        local('10.0.1.2', 80, terminating),
        local('10.0.1.3', 80, terminating),
        remote('10.0.1.4', 'another-node', 80, terminatingNotServing),
        remote('10.0.1.5', 'another-node', 80, terminating),
      ],
      pod: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80',
      external: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80',
      masq: true,
    },
    {
      name: 'terminating endpoints on remote node',
      endpoints: [remote('10.0.1.5', 'node-1', 80, terminating)],
      pod: '10.0.1.5:80',
      external: '10.0.1.5:80',
      masq: true,
    },
    {
      name: 'no usable endpoints on any node',
      endpoints: [
        local('10.0.1.5', 80, terminatingNotServing),
        remote('10.0.1.6', 'node-1', 80, terminatingNotServing),
      ],
      pod: 'REJECT',
      external: 'REJECT',
      masq: false,
    },
  ];
  for (const tc of clusterSlices) {
    describe(`Cluster: ${tc.name}`, () => {
      runPacketFlowTests(renderPayload([service('Cluster', tc.endpoints)]), [
        {
          name: 'pod to clusterIP',
          sourceIP: '10.0.0.2',
          destIP: '172.30.1.1',
          destPort: 80,
          output: tc.pod,
        },
        {
          name: 'external to LB',
          sourceIP: testExternalClient,
          destIP: '1.2.3.4',
          destPort: 80,
          output: tc.external,
          masq: tc.masq,
        },
      ]);
    });
  }
});

describe('session affinity (ClientIP) through rendered rules', () => {
  const payload = renderPayload([
    svcPort('ns1', 'svc1', 'p80', {
      clusterIPs: ['172.30.0.41'],
      sessionAffinity: { type: 'ClientIP', timeoutSeconds: 10800 },
      endpoints: [ep('10.180.0.1', 80), ep('10.180.0.2', 80)],
    }),
  ]);
  const dump = parseIptablesDump(payload);
  const packet = { protocol: 'TCP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80 };
  const node = { localAddresses: [testNodeIP], locallyGenerated: false };

  it('a first connection can go to either endpoint', () => {
    expect(walkPacket(dump, packet, node).endpoints).toEqual(['10.180.0.1:80', '10.180.0.2:80']);
  });

  it('a client with an affinity entry for one endpoint goes only there', () => {
    // The recent list of an endpoint is named after its KUBE-SEP chain: find the one DNATing to .2.
    const nat = dump.tables.get('nat');
    const sep = [...(nat?.chains.values() ?? [])].find(
      (c) =>
        c.name.startsWith('KUBE-SEP-') &&
        c.rules.some((r) => r.target?.kind === 'DNAT' && r.target.toDestination === '10.180.0.2:80'),
    );
    expect(sep).toBeDefined();
    const o = walkPacket(dump, packet, { ...node, recentEntries: [sep?.name ?? ''] });
    expect(o.endpointProbabilities).toEqual([{ endpoint: '10.180.0.2:80', probability: 1 }]);
  });
});

describe('TestInternalExternalMasquerade', () => {
  const services = [
    svcPort('ns1', 'svc1', 'p80', {
      type: 'LoadBalancer',
      clusterIPs: ['172.30.0.41'],
      nodePort: 3001,
      healthCheckNodePort: 30001,
      loadBalancerIngress: [{ ip: '1.2.3.4', ipMode: 'VIP' }],
      endpoints: [local('10.180.0.1'), remote('10.180.1.1', 'remote')],
    }),
    svcPort('ns2', 'svc2', 'p80', {
      type: 'LoadBalancer',
      clusterIPs: ['172.30.0.42'],
      nodePort: 3002,
      healthCheckNodePort: 30002,
      externalTrafficPolicy: 'Local',
      loadBalancerIngress: [{ ip: '5.6.7.8', ipMode: 'VIP' }],
      endpoints: [local('10.180.0.2'), remote('10.180.1.2', 'remote')],
    }),
    svcPort('ns3', 'svc3', 'p80', {
      type: 'LoadBalancer',
      clusterIPs: ['172.30.0.43'],
      nodePort: 3003,
      healthCheckNodePort: 30003,
      internalTrafficPolicy: 'Local',
      loadBalancerIngress: [{ ip: '9.10.11.12', ipMode: 'VIP' }],
      endpoints: [local('10.180.0.3'), remote('10.180.1.3', 'remote')],
    }),
  ];
  const all1 = '10.180.0.1:80, 10.180.1.1:80';
  const all2 = '10.180.0.2:80, 10.180.1.2:80';
  const all3 = '10.180.0.3:80, 10.180.1.3:80';
  const flowTests: FlowCase[] = [
    {
      name: 'pod to ClusterIP',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.41',
      destPort: 80,
      output: all1,
      masq: false,
    },
    {
      name: 'pod to NodePort',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3001,
      output: all1,
      masq: true,
    },
    { name: 'pod to LB', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: all1, masq: true },
    {
      name: 'node to ClusterIP',
      sourceIP: testNodeIP,
      destIP: '172.30.0.41',
      destPort: 80,
      output: all1,
      masq: true,
    },
    {
      name: 'node to NodePort',
      sourceIP: testNodeIP,
      destIP: testNodeIP,
      destPort: 3001,
      output: all1,
      masq: true,
    },
    {
      name: 'localhost to NodePort',
      sourceIP: '127.0.0.1',
      destIP: '127.0.0.1',
      destPort: 3001,
      output: all1,
      masq: true,
    },
    { name: 'node to LB', sourceIP: testNodeIP, destIP: '1.2.3.4', destPort: 80, output: all1, masq: true },
    {
      name: 'external to ClusterIP',
      sourceIP: testExternalClient,
      destIP: '172.30.0.41',
      destPort: 80,
      output: all1,
      masq: true,
    },
    {
      name: 'external to NodePort',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3001,
      output: all1,
      masq: true,
    },
    {
      name: 'external to LB',
      sourceIP: testExternalClient,
      destIP: '1.2.3.4',
      destPort: 80,
      output: all1,
      masq: true,
    },
    {
      name: 'pod to ClusterIP with eTP:Local',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.42',
      destPort: 80,
      output: all2,
      masq: false,
    },
    {
      name: 'pod to NodePort with eTP:Local',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3002,
      output: all2,
      masq: false,
    },
    {
      name: 'pod to LB with eTP:Local',
      sourceIP: '10.0.0.2',
      destIP: '5.6.7.8',
      destPort: 80,
      output: all2,
      masq: false,
    },
    {
      name: 'node to ClusterIP with eTP:Local',
      sourceIP: testNodeIP,
      destIP: '172.30.0.42',
      destPort: 80,
      output: all2,
      masq: true,
    },
    // (kube-proxy's case uses port 3001, svc1's node port, as written upstream.)
    {
      name: 'node to NodePort with eTP:Local',
      sourceIP: testNodeIP,
      destIP: testNodeIP,
      destPort: 3001,
      output: all1,
      masq: true,
    },
    {
      name: 'localhost to NodePort with eTP:Local',
      sourceIP: '127.0.0.1',
      destIP: '127.0.0.1',
      destPort: 3002,
      output: all2,
      masq: true,
    },
    {
      name: 'node to LB with eTP:Local',
      sourceIP: testNodeIP,
      destIP: '5.6.7.8',
      destPort: 80,
      output: all2,
      masq: true,
    },
    {
      name: 'external to ClusterIP with eTP:Local',
      sourceIP: testExternalClient,
      destIP: '172.30.0.42',
      destPort: 80,
      output: all2,
      masq: true,
    },
    {
      name: 'external to NodePort with eTP:Local',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3002,
      output: '10.180.0.2:80',
      masq: false,
    },
    {
      name: 'external to LB with eTP:Local',
      sourceIP: testExternalClient,
      destIP: '5.6.7.8',
      destPort: 80,
      output: '10.180.0.2:80',
      masq: false,
    },
    {
      name: 'pod to ClusterIP with iTP:Local',
      sourceIP: '10.0.0.2',
      destIP: '172.30.0.43',
      destPort: 80,
      output: '10.180.0.3:80',
      masq: false,
    },
    {
      name: 'pod to NodePort with iTP:Local',
      sourceIP: '10.0.0.2',
      destIP: testNodeIP,
      destPort: 3003,
      output: all3,
      masq: true,
    },
    {
      name: 'pod to LB with iTP:Local',
      sourceIP: '10.0.0.2',
      destIP: '9.10.11.12',
      destPort: 80,
      output: all3,
      masq: true,
    },
    {
      name: 'node to ClusterIP with iTP:Local',
      sourceIP: testNodeIP,
      destIP: '172.30.0.43',
      destPort: 80,
      output: '10.180.0.3:80',
      masq: true,
    },
    {
      name: 'node to NodePort with iTP:Local',
      sourceIP: testNodeIP,
      destIP: testNodeIP,
      destPort: 3003,
      output: all3,
      masq: true,
    },
    {
      name: 'localhost to NodePort with iTP:Local',
      sourceIP: '127.0.0.1',
      destIP: '127.0.0.1',
      destPort: 3003,
      output: all3,
      masq: true,
    },
    {
      name: 'node to LB with iTP:Local',
      sourceIP: testNodeIP,
      destIP: '9.10.11.12',
      destPort: 80,
      output: all3,
      masq: true,
    },
    {
      name: 'external to ClusterIP with iTP:Local',
      sourceIP: testExternalClient,
      destIP: '172.30.0.43',
      destPort: 80,
      output: '10.180.0.3:80',
      masq: true,
    },
    {
      name: 'external to NodePort with iTP:Local',
      sourceIP: testExternalClient,
      destIP: testNodeIP,
      destPort: 3003,
      output: all3,
      masq: true,
    },
    {
      name: 'external to LB with iTP:Local',
      sourceIP: testExternalClient,
      destIP: '9.10.11.12',
      destPort: 80,
      output: all3,
      masq: true,
    },
  ];
  const testCases: Array<{
    name: string;
    masqueradeAll: boolean;
    localDetector: boolean;
    overrides: Record<string, Partial<FlowCase>>;
  }> = [
    { name: 'base', masqueradeAll: false, localDetector: true, overrides: {} },
    {
      name: 'no LocalTrafficDetector',
      masqueradeAll: false,
      localDetector: false,
      overrides: {
        'node to ClusterIP': { masq: false },
        'node to ClusterIP with eTP:Local': { masq: false },
        'node to ClusterIP with iTP:Local': { masq: false },
        'external to ClusterIP': { masq: false },
        'external to ClusterIP with eTP:Local': { masq: false },
        'external to ClusterIP with iTP:Local': { masq: false },
        'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' },
        'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
      },
    },
    {
      name: 'masqueradeAll',
      masqueradeAll: true,
      localDetector: true,
      overrides: {
        'pod to ClusterIP': { masq: true },
        'pod to ClusterIP with eTP:Local': { masq: true },
        'pod to ClusterIP with iTP:Local': { masq: true },
      },
    },
    {
      name: 'masqueradeAll, no LocalTrafficDetector',
      masqueradeAll: true,
      localDetector: false,
      overrides: {
        'pod to ClusterIP': { masq: true },
        'pod to ClusterIP with eTP:Local': { masq: true },
        'pod to ClusterIP with iTP:Local': { masq: true },
        'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' },
        'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
      },
    },
  ];
  for (const tc of testCases) {
    describe(tc.name, () => {
      const unknown = Object.keys(tc.overrides).filter((n) => !flowTests.some((f) => f.name === n));
      it('overrides name existing flows', () => expect(unknown).toEqual([]));
      const payload = renderPayload(services, {
        masqueradeAll: tc.masqueradeAll,
        clusterCIDRs: tc.localDetector ? ['10.0.0.0/8'] : [],
      });
      runPacketFlowTests(
        payload,
        flowTests.map((f) => ({ ...f, ...tc.overrides[f.name] })),
      );
    });
  }
});
