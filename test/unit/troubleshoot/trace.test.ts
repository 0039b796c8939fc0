import type { IptablesRuleSet } from '../../../src/render/types.js';
import { parseIptablesDump } from '../../../src/troubleshoot/iptables-dump.js';
import { chainServices, serviceOfComment, traceServicePacket } from '../../../src/troubleshoot/trace.js';
import { EXTERNAL_CLIENT, KUBE_PROXY_RULES, NODE_IP } from './kube-proxy-rules.js';

const node = { localAddresses: [NODE_IP], locallyGenerated: false };

describe('serviceOfComment / chainServices', () => {
  it('finds the Service a kube-proxy comment names', () => {
    expect(serviceOfComment('ns4/svc4:p80 cluster IP')).toBe('ns4/svc4:p80');
    expect(serviceOfComment('ns4/svc4:p80 -> 10.180.0.4:80')).toBe('ns4/svc4:p80');
    expect(serviceOfComment('masquerade traffic for ns4/svc4:p80 external destinations')).toBe(
      'ns4/svc4:p80',
    );
    expect(serviceOfComment('default/kubernetes')).toBe('default/kubernetes');
    expect(serviceOfComment('kubernetes service portals')).toBeUndefined();
    expect(serviceOfComment('pod range 10.0.0.0/8')).toBeUndefined();
  });

  it('names per-service chains and leaves shared chains unnamed', () => {
    const services = chainServices(parseIptablesDump(KUBE_PROXY_RULES));
    expect(services.get('nat KUBE-SVC-4SW47YFZTEDKD3PK')).toBe('ns4/svc4:p80');
    expect(services.get('nat KUBE-SEP-C6EBXVWJJZMIWKLZ')).toBe('ns4/svc4:p80');
    expect(services.get('nat KUBE-EXT-4SW47YFZTEDKD3PK')).toBe('ns4/svc4:p80');
    expect(services.has('nat KUBE-SERVICES')).toBe(false);
    expect(services.has('nat KUBE-POSTROUTING')).toBe(false);
    // Shared helper chains reached from many services stay unnamed.
    expect(services.has('nat KUBE-MARK-MASQ')).toBe(false);
  });

  it('names uncommented chains after the rules that jump to them', () => {
    const services = chainServices(
      parseIptablesDump(
        [
          '*nat',
          ':KUBE-SERVICES - [0:0]',
          ':KUBE-SVC-A - [0:0]',
          ':KUBE-SEP-A1 - [0:0]',
          ':KUBE-SEP-A2 - [0:0]',
          ':KUBE-SVC-B - [0:0]',
          '-A KUBE-SERVICES -m comment --comment "ns/a:http cluster IP" -d 10.96.0.1 -j KUBE-SVC-A',
          '-A KUBE-SERVICES -m comment --comment "ns/b cluster IP" -d 10.96.0.2 -j KUBE-SVC-B',
          '-A KUBE-SVC-A -m statistic --mode random --probability 0.5 -j KUBE-SEP-A1',
          '-A KUBE-SVC-A -j KUBE-SEP-A2',
          '-A KUBE-SEP-A1 -p tcp -j DNAT --to-destination 10.0.0.1:80',
          '-A KUBE-SEP-A2 -p tcp -j DNAT --to-destination 10.0.0.2:80',
          'COMMIT',
        ].join('\n'),
      ),
    );
    expect(services.get('nat KUBE-SVC-A')).toBe('ns/a:http');
    expect(services.get('nat KUBE-SEP-A1')).toBe('ns/a:http');
    expect(services.get('nat KUBE-SEP-A2')).toBe('ns/a:http');
    expect(services.get('nat KUBE-SVC-B')).toBe('ns/b');
    expect(services.has('nat KUBE-SERVICES')).toBe(false);
  });
});

describe('traceServicePacket', () => {
  it('explains a two-endpoint ClusterIP with a common path and one section per branch', () => {
    const result = traceServicePacket(
      KUBE_PROXY_RULES,
      { protocol: 'tcp', sourceIP: EXTERNAL_CLIENT, destIP: '172.30.0.44', destPort: 80 },
      node,
    );
    expect(result.outcome.endpoints).toEqual(['10.180.0.4:80', '10.180.0.5:80']);
    const text = result.explanation;
    expect(text).toContain('packet: tcp 203.0.113.2:40000 -> 172.30.0.44:80 (arriving at this node)');
    expect(text).toContain('verdict: ACCEPT');
    expect(text).toContain('endpoints: 10.180.0.4:80 (50.0%), 10.180.0.5:80 (50.0%)');
    expect(text).toContain('masquerade: yes');
    expect(text).toContain('path (common to all branches):');
    expect(text).toContain(
      'nat KUBE-SVC-4SW47YFZTEDKD3PK rule 1 [Service ns4/svc4:p80]: -A KUBE-SVC-4SW47YFZTEDKD3PK',
    );
    expect(text).toContain('branch 1 (probability 50.0%): ACCEPT -> 10.180.0.4:80, masqueraded');
    expect(text).toContain('branch 2 (probability 50.0%): ACCEPT -> 10.180.0.5:80, masqueraded');
    expect(text).toContain('(taken with probability 0.5000)');
    // The shared KUBE-SERVICES rule is named by the rule's own comment.
    expect(text).toContain('nat KUBE-SERVICES rule 6 [Service ns4/svc4:p80]');
  });

  it('explains a REJECT with a single path', () => {
    const result = traceServicePacket(
      parseIptablesDump(KUBE_PROXY_RULES),
      { protocol: 'TCP', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80 },
      node,
    );
    expect(result.outcome.verdict).toBe('REJECT');
    expect(result.explanation).toContain('endpoints: none');
    expect(result.explanation).toMatch(
      /filter KUBE-SERVICES rule 1 \[Service ns6\/svc6:p80\]: .* -j REJECT\n$/,
    );
  });

  it('accepts a rendered rule set and applies its built-in jumps', () => {
    const rs: IptablesRuleSet = {
      family: 'IPv4',
      tables: [
        {
          name: 'nat',
          chains: [
            {
              name: 'KUBE-SERVICES',
              role: 'static',
              rules: ['-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-X'],
            },
            {
              name: 'KUBE-SVC-X',
              role: 'service',
              owner: 'kube-system/dns:dns/udp',
              rules: [
                '-A KUBE-SVC-X -m comment --comment "kube-system/dns:dns -> 10.1.0.5:53" -j DNAT --to-destination 10.1.0.5:53',
              ],
            },
          ],
        },
      ],
      builtinJumps: [
        {
          table: 'nat',
          chain: 'PREROUTING',
          spec: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          position: 'prepend',
        },
      ],
    };
    const result = traceServicePacket(
      rs,
      { protocol: 'UDP', sourceIP: '10.1.0.9', destIP: '10.96.0.10', destPort: 53 },
      node,
    );
    expect(result.outcome.endpoints).toEqual(['10.1.0.5:53']);
    expect(result.explanation).toContain('[Service kube-system/dns:dns]');
  });
});
