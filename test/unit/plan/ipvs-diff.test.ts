// The ipvs-mode diff: per Service port, virtual servers, real servers (weights), set entries and
// kube-ipvs0 addresses added/removed; the constant iptables rules node-wide; names escaped as in the
// iptables diff.
import { describe, expect, it } from '@jest/globals';
import type { ServicePort } from '../../../src/model/cluster-state.js';
import { NODE_WIDE } from '../../../src/plan/diff.js';
import {
  diffIpvsRuleSets,
  formatIpvsDiffMarkdown,
  formatIpvsDiffText,
  ipvsDiffIsEmpty,
  type IpvsDiff,
} from '../../../src/plan/ipvs-diff.js';
import { renderIpvs, type IpvsRenderOptions } from '../../../src/render/ipvs/index.js';
import { endpoint as ep, stateOf, svcPort } from '../../fixtures/cluster-state.js';
import { ipvsOptions, webServicePort } from '../../fixtures/ipvs-options.js';

const web = webServicePort;

const diffOf = (
  before: ServicePort[],
  after: ServicePort[],
  opts: Partial<IpvsRenderOptions> = {},
): IpvsDiff =>
  diffIpvsRuleSets(
    [renderIpvs(stateOf(...before), ipvsOptions(opts))],
    [renderIpvs(stateOf(...after), ipvsOptions(opts))],
  );

const group = (d: IpvsDiff, owner: string) => d.groups.find((g) => g.owner === owner);

describe('diffIpvsRuleSets', () => {
  it('is empty for the same input', () => {
    const d = diffOf([web()], [web()]);
    expect(ipvsDiffIsEmpty(d)).toBe(true);
    expect(formatIpvsDiffText(d)).toBe(
      'No changes: the nodes keep the same virtual servers, sets and rules.\n',
    );
  });

  it('an endpoint added: a real server of the existing virtual server, nothing else', () => {
    const after = web({
      endpoints: [...web().endpoints, ep('10.244.2.4', 8080, { nodeName: 'node-b' })],
    });
    const d = diffOf([web()], [after]);
    expect(d.groups.map((g) => g.owner)).toEqual(['ns1/web:http/tcp']);
    expect(group(d, 'ns1/web:http/tcp')?.realServersAdded).toEqual([
      { family: 'IPv4', virtualServer: 'TCP 10.96.0.10:80', realServer: '10.244.2.4:8080', weight: 1 },
    ]);
    expect(d.summary.realServersAdded).toBe(1);
    expect(formatIpvsDiffText(d)).toBe(
      [
        'Service ns1/web:http/tcp',
        '  + real server 10.244.2.4:8080 weight 1 of TCP 10.96.0.10:80',
        '1 service port(s) affected: 1 real server(s) added.',
        '',
      ].join('\n'),
    );
  });

  it('a terminating endpoint beside a ready one: weight 1 -> 0; a removed endpoint: real server and hairpin entry removed', () => {
    const after = web({
      endpoints: [
        ep('10.244.2.3', 8080, { nodeName: 'node-b', ready: false, serving: true, terminating: true }),
        ep('10.244.2.4', 8080, { nodeName: 'node-b' }),
      ],
    });
    const d = diffOf([web()], [after]);
    const g = group(d, 'ns1/web:http/tcp');
    expect(g?.weightsChanged).toEqual([
      { family: 'IPv4', virtualServer: 'TCP 10.96.0.10:80', realServer: '10.244.2.3:8080', from: 1, to: 0 },
    ]);
    expect(g?.realServersRemoved.map((r) => r.realServer)).toEqual(['10.244.1.2:8080']);
    expect(g?.setEntriesRemoved).toEqual([
      { family: 'IPv4', set: 'KUBE-LOOP-BACK', entry: '10.244.1.2,tcp:8080,10.244.1.2' },
    ]);
    expect(formatIpvsDiffText(d)).toContain(
      '  ~ real server 10.244.2.3:8080 of TCP 10.96.0.10:80: weight 1 -> 0 (terminating: no new connections)',
    );
  });

  it('a new Service port: its virtual servers, set entries and bound address; the rules matching a set that was empty, node-wide', () => {
    const lb = svcPort('ns1', 'shop', 'https', {
      type: 'LoadBalancer',
      port: 443,
      nodePort: 30443,
      clusterIPs: ['10.96.0.20'],
      loadBalancerIngress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
      sessionAffinity: { type: 'ClientIP', timeoutSeconds: 600 },
      endpoints: [ep('10.244.2.9', 8443, { nodeName: 'node-b' })],
    });
    const d = diffOf([web()], [web(), lb]);
    const g = group(d, 'ns1/shop:https/tcp');
    expect(g?.virtualServersAdded.map((v) => `${v.virtualServer} ${v.scheduling}`)).toEqual([
      'TCP 10.96.0.20:443 rr, persistent 600 s',
      'TCP 192.0.2.10:443 rr, persistent 600 s',
      'TCP 192.168.0.2:30443 rr, persistent 600 s',
      'TCP 192.168.1.2:30443 rr, persistent 600 s',
    ]);
    expect(g?.realServersAdded).toHaveLength(4);
    expect(g?.addressesBound.map((a) => a.address)).toEqual(['10.96.0.20', '192.0.2.10']);
    expect(g?.setEntriesAdded.map((e) => `${e.set} ${e.entry}`)).toEqual([
      'KUBE-CLUSTER-IP 10.96.0.20,tcp:443',
      'KUBE-LOAD-BALANCER 192.0.2.10,tcp:443',
      'KUBE-NODE-PORT-TCP 30443',
      // The bound addresses' members of KUBE-IPVS-IPS belong to the port that binds them.
      'KUBE-IPVS-IPS 10.96.0.20',
      'KUBE-IPVS-IPS 192.0.2.10',
    ]);
    // KUBE-LOAD-BALANCER and KUBE-NODE-PORT-TCP were empty: their jumps appear, node-wide.
    const nodeWide = group(d, NODE_WIDE);
    const rules = nodeWide?.iptablesChanges.flatMap((c) => c.rulesAdded) ?? [];
    expect(
      rules.some((r) => r.includes('--match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER')),
    ).toBe(true);
    expect(rules.some((r) => r.includes('--match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ'))).toBe(true);
    expect(nodeWide?.virtualServersAdded).toEqual([]);
    expect(d.groups.map((x) => x.owner)).toEqual(['ns1/shop:https/tcp', NODE_WIDE]);
  });

  it('a removed Service port: virtual servers with their real servers, entries and addresses removed', () => {
    const d = diffOf([web()], []);
    const g = group(d, 'ns1/web:http/tcp');
    expect(g?.virtualServersRemoved.map((v) => v.virtualServer)).toEqual(['TCP 10.96.0.10:80']);
    expect(g?.realServersRemoved.map((r) => r.realServer)).toEqual(['10.244.1.2:8080', '10.244.2.3:8080']);
    expect(g?.addressesUnbound).toEqual([{ family: 'IPv4', address: '10.96.0.10' }]);
    expect(d.summary.addressesUnbound).toBe(1);
  });

  it('a scheduling change (affinity set) is reported on the virtual server', () => {
    const d = diffOf([web()], [web({ sessionAffinity: { type: 'ClientIP', timeoutSeconds: 10800 } })]);
    expect(group(d, 'ns1/web:http/tcp')?.schedulingChanged).toEqual([
      { family: 'IPv4', virtualServer: 'TCP 10.96.0.10:80', from: 'rr', to: 'rr, persistent 10800 s' },
    ]);
  });

  it('IPv6: virtual servers and real servers bracketed, KUBE-6- set names', () => {
    const v6 = svcPort('ns1', 'web6', 'http', {
      clusterIPs: ['fd00:96::10'],
      ipFamilies: ['IPv6'],
      endpoints: [ep('fd00:244::2', 8080, { nodeName: 'node-b' })],
    });
    const opts = { family: 'IPv6' as const, nodeIPs: ['fd00:99::2'], clusterCIDRs: ['fd00:244::/56'] };
    const d = diffOf([], [v6], opts);
    const text = formatIpvsDiffText(d);
    expect(text).toContain('  + virtual server TCP [fd00:96::10]:80 rr (IPv6)');
    expect(text).toContain('  + real server [fd00:244::2]:8080 weight 1 of TCP [fd00:96::10]:80');
    expect(text).toContain('  + set KUBE-6-CLUSTER-IP entry fd00:96::10,tcp:80');
  });
});

describe('formatIpvsDiffMarkdown', () => {
  it('a table row and a collapsed diff per Service port, with the node-wide rules', () => {
    const d = diffOf([], [web()]);
    const md = formatIpvsDiffMarkdown(d);
    expect(md).toContain('### portway (ipvs mode): what would change on the nodes');
    expect(md).toContain('| `ns1/web:http/tcp` | +1 / −0 | +2 / −0 | 0 | +3 / −0 | +1 / −0 | +0 / −0 |');
    expect(md).toContain('<summary>Service <code>ns1/web:http/tcp</code></summary>');
    expect(md).toContain('+ virtual server TCP 10.96.0.10:80 rr (IPv4)');
    expect(md).toContain(`<summary>${NODE_WIDE}</summary>`);
    expect(md).toMatch(/^# rules changed in shared chain KUBE-SERVICES \(IPv4 nat\)$/m);
  });

  it('escapes an owner and a skipped problem as the iptables diff does', () => {
    const d = diffOf([], [web()]);
    // A hand-made owner that would end the cell, the summary and open a comment (names are validated
    // at the edge; this is the second line of defence).
    const hostile = 'ns1/x|</summary><!--:http/tcp';
    const g = d.groups.find((x) => x.owner === 'ns1/web:http/tcp');
    if (g === undefined) throw new Error('no group');
    g.owner = hostile;
    const md = formatIpvsDiffMarkdown(d, [
      { side: 'after', problem: 'Service a/"**b**": metadata.name: bad' },
    ]);
    expect(md).not.toContain('<!--');
    expect(md).not.toContain('x|<');
    expect(md).toContain('<code>ns1/x&#124;&lt;/summary&gt;&lt;!--:http/tcp</code>');
    expect(md).toContain('**⚠ 1 invalid object(s) skipped');
    expect(md).toContain(String.raw`\*\*b\*\*`);
  });
});
