import { diffIsEmpty, diffRuleSets, formatDiffMarkdown, formatDiffText, NODE_WIDE } from '../../../src/plan/diff.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';

const svc = 'KUBE-SVC-AAAAAAAAAAAAAAAA';
const sep1 = 'KUBE-SEP-1111111111111111';
const sep2 = 'KUBE-SEP-2222222222222222';
const owner = 'ns1/web:http/tcp';

function ruleSet(endpoints: Array<[string, string]>, extraService = false): IptablesRuleSet {
  const sepChains = endpoints.map(([name, ip]) => ({
    name,
    role: 'endpoint' as const,
    owner,
    rules: [`-A ${name} -m tcp -p tcp -j DNAT --to-destination ${ip}:8080`],
  }));
  const svcRules = endpoints.map(([name], i) =>
    i < endpoints.length - 1
      ? `-A ${svc} -m statistic --mode random --probability ${(1 / (endpoints.length - i)).toFixed(10)} -j ${name}`
      : `-A ${svc} -j ${name}`,
  );
  const services = [`-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j ${svc}`];
  const chains = [
    { name: 'KUBE-SERVICES', role: 'static' as const, rules: services },
    { name: svc, role: 'service' as const, owner, rules: svcRules },
    ...sepChains,
  ];
  if (extraService) {
    services.push('-A KUBE-SERVICES -d 10.96.0.2/32 -p udp -m udp --dport 53 -j KUBE-SVC-BBBBBBBBBBBBBBBB');
    chains.push({ name: 'KUBE-SVC-BBBBBBBBBBBBBBBB', role: 'service', owner: 'ns1/dns:dns/udp', rules: [] });
  }
  return {
    family: 'IPv4',
    tables: [{ name: 'nat', chains }],
    builtinJumps: [{ table: 'nat', chain: 'PREROUTING', spec: '-j KUBE-SERVICES', position: 'prepend' }],
  };
}

describe('diffRuleSets', () => {
  it('is empty for identical renderings', () => {
    const a = ruleSet([[sep1, '10.0.0.1']]);
    const d = diffRuleSets([a], [ruleSet([[sep1, '10.0.0.1']])]);
    expect(diffIsEmpty(d)).toBe(true);
    expect(formatDiffText(d)).toMatch(/No changes/);
  });

  it('attributes an added endpoint to its Service, not to a hash', () => {
    const d = diffRuleSets([ruleSet([[sep1, '10.0.0.1']])], [ruleSet([[sep1, '10.0.0.1'], [sep2, '10.0.0.2']])]);
    expect(d.groups.map((g) => g.owner)).toEqual([owner]);
    const changes = d.groups[0]!.changes;
    expect(changes.find((c) => c.chain === sep2)?.change).toBe('added');
    const svcChange = changes.find((c) => c.chain === svc)!;
    expect(svcChange.change).toBe('changed');
    expect(svcChange.rulesRemoved).toEqual([`-A ${svc} -j ${sep1}`]);
    expect(svcChange.rulesAdded).toHaveLength(2);
    expect(d.summary).toMatchObject({ servicePortsAffected: 1, chainsAdded: 1, chainsChanged: 1, chainsRemoved: 0 });
    expect(formatDiffText(d)).toContain(`Service ${owner}`);
  });

  it('splits a shared chain by the Service its rules jump to', () => {
    const d = diffRuleSets([ruleSet([[sep1, '10.0.0.1']])], [ruleSet([[sep1, '10.0.0.1']], true)]);
    expect(d.groups.map((g) => g.owner)).toEqual(['ns1/dns:dns/udp']);
    const kubeServices = d.groups[0]!.changes.find((c) => c.chain === 'KUBE-SERVICES')!;
    expect(kubeServices.rulesAdded).toHaveLength(1);
    expect(kubeServices.rulesAdded[0]).toContain('10.96.0.2/32');
  });

  it('reports removed chains and built-in jump changes', () => {
    const before = ruleSet([[sep1, '10.0.0.1'], [sep2, '10.0.0.2']]);
    const after = ruleSet([[sep1, '10.0.0.1']]);
    after.builtinJumps = [];
    const d = diffRuleSets([before], [after]);
    expect(d.groups.find((g) => g.owner === owner)!.changes.find((c) => c.chain === sep2)!.change).toBe('removed');
    const nodeWide = d.groups.find((g) => g.owner === NODE_WIDE)!;
    expect(nodeWide.changes[0]).toMatchObject({ role: 'builtin', chain: 'PREROUTING', rulesRemoved: ['-A PREROUTING -j KUBE-SERVICES'] });
    expect(d.groups[d.groups.length - 1]!.owner).toBe(NODE_WIDE);
  });

  it('renders markdown with a table and per-service details', () => {
    const d = diffRuleSets([ruleSet([[sep1, '10.0.0.1']])], [ruleSet([[sep2, '10.0.0.2']])]);
    const md = formatDiffMarkdown(d);
    expect(md).toContain('| `ns1/web:http/tcp` | 1 | 1 | 1 |');
    expect(md).toContain('```diff');
    expect(md).toContain(`+ -A ${sep2} -m tcp -p tcp -j DNAT --to-destination 10.0.0.2:8080`);
  });
});
