import { describe, expect, it } from '@jest/globals';
import { declarationOrder, isOwnedChainName, planIptablesRestore } from '../../../src/plan/iptables-plan.js';
import type { IptablesRuleSet, RenderedChain } from '../../../src/render/types.js';

// A kube-proxy-shaped rule set: per service one SVC chain, endpoints as SEP chains, KUBE-SERVICES jumping.
function svcChains(svc: string, ip: string, endpoints: string[]): RenderedChain[] {
  const svcChain = `KUBE-SVC-${svc.toUpperCase().padEnd(16, 'X')}`;
  const seps = endpoints.map((ep) => ({
    ep,
    name: `KUBE-SEP-${(svc + ep.replaceAll('.', '')).toUpperCase().padEnd(16, 'Y')}`,
  }));
  return [
    {
      name: svcChain,
      role: 'service',
      owner: `ns/${svc}:http/tcp`,
      rules: seps.map(
        (s, i) =>
          `-A ${svcChain} -m comment --comment "ns/${svc}:http -> ${s.ep}:80"` +
          (i < seps.length - 1
            ? ` -m statistic --mode random --probability ${(1 / (seps.length - i)).toFixed(10)}`
            : '') +
          ` -j ${s.name}`,
      ),
    },
    ...seps.map<RenderedChain>((s) => ({
      name: s.name,
      role: 'endpoint',
      owner: `ns/${svc}:http/tcp`,
      rules: [
        `-A ${s.name} -m comment --comment ns/${svc}:http -s ${s.ep}/32 -j KUBE-MARK-MASQ`,
        `-A ${s.name} -m comment --comment ns/${svc}:http -m tcp -p tcp -j DNAT --to-destination ${s.ep}:80`,
      ],
    })),
  ];
}

function ruleSet(services: Array<{ name: string; ip: string; endpoints: string[] }>): IptablesRuleSet {
  const perService = services.map((s) => svcChains(s.name, s.ip, s.endpoints));
  const kubeServices: RenderedChain = {
    name: 'KUBE-SERVICES',
    role: 'static',
    rules: services.map(
      (s, i) =>
        `-A KUBE-SERVICES -m comment --comment "ns/${s.name}:http cluster IP" -m tcp -p tcp -d ${s.ip}/32 --dport 80 -j ${perService[i]![0]!.name}`,
    ),
  };
  return {
    family: 'IPv4',
    builtinJumps: [],
    tables: [
      {
        name: 'filter',
        chains: [
          { name: 'KUBE-SERVICES', role: 'static', rules: [] },
          {
            name: 'KUBE-FORWARD',
            role: 'static',
            rules: ['-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'],
          },
        ],
      },
      {
        name: 'nat',
        chains: [
          kubeServices,
          { name: 'KUBE-MARK-MASQ', role: 'static', rules: ['-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000'] },
          ...perService.flat(),
        ],
      },
    ],
  };
}

const lines = (payload: string): string[] => payload.trimEnd().split('\n');

describe('planIptablesRestore', () => {
  const base = ruleSet([
    { name: 'alpha', ip: '10.96.0.10', endpoints: ['10.244.1.2', '10.244.2.2'] },
    { name: 'beta', ip: '10.96.0.11', endpoints: ['10.244.1.3'] },
  ]);

  it('a full plan declares and writes every owned chain of both tables', () => {
    const plan = planIptablesRestore(base, null, { full: true });
    expect(plan.full).toBe(true);
    const l = lines(plan.payload);
    expect(l[0]).toBe('*filter');
    expect(l).toContain(':KUBE-FORWARD - [0:0]');
    expect(l.filter((x) => x === 'COMMIT')).toHaveLength(2);
    expect(plan.changedChains).toHaveLength(2 + 2 + 3 + 2);
    // each chain's rules follow its declaration at once, and every jump target is declared before
    // the first rule that jumps to it (iptables-nft-restore refuses a jump to an unknown chain)
    const declaredAt = new Map(
      l.flatMap((x, i) => (x.startsWith(':') ? [[x.split(' ')[0]!.slice(1), i] as const] : [])),
    );
    for (const [i, line] of l.entries()) {
      if (!line.startsWith('-A ')) continue;
      const chain = line.split(' ')[1]!;
      expect(declaredAt.get(chain)).toBeLessThan(i);
      expect(l.slice(declaredAt.get(chain)! + 1, i).every((x) => x.startsWith(`-A ${chain} `))).toBe(true);
      const target = / -j (KUBE-[A-Z0-9-]+)/.exec(line)?.[1];
      if (target !== undefined) expect(declaredAt.get(target)).toBeLessThan(i);
    }
    expect(plan.bytes).toBe(Buffer.byteLength(plan.payload));
  });

  it('a full plan over lastApplied declares every chain before any rule (a chain deleted behind our back may be a jump target)', () => {
    const plan = planIptablesRestore(base, base, { full: true });
    const l = lines(plan.payload);
    const natStart = l.indexOf('*nat');
    const firstRule = l.findIndex((x, i) => i > natStart && x.startsWith('-A '));
    const lastDecl = l.findLastIndex((x) => x.startsWith(':'));
    expect(lastDecl).toBeLessThan(firstRule);
  });

  it('without lastApplied a requested partial plan is full', () => {
    expect(planIptablesRestore(base, null, { full: false }).full).toBe(true);
  });

  it('a partial plan with nothing changed is empty', () => {
    const plan = planIptablesRestore(base, base, { full: false });
    expect(plan.payload).toBe('');
    expect(plan.changedChains).toEqual([]);
    expect(plan.bytes).toBe(0);
  });

  it('a partial plan writes only the chains whose rules changed, whole', () => {
    const next = ruleSet([
      { name: 'alpha', ip: '10.96.0.10', endpoints: ['10.244.1.2', '10.244.2.2'] },
      { name: 'beta', ip: '10.96.0.11', endpoints: ['10.244.1.3', '10.244.1.4'] },
    ]);
    const plan = planIptablesRestore(next, base, { full: false });
    const names = plan.changedChains.map((c) => c.chain);
    // beta's SVC chain changed (two endpoints now) and a SEP chain is new; alpha and KUBE-SERVICES are untouched
    expect(names).toEqual(['KUBE-SVC-BETAXXXXXXXXXXXX', 'KUBE-SEP-BETA1024414YYYYY']);
    expect(plan.payload).not.toContain('*filter');
    expect(plan.payload).not.toContain('KUBE-SERVICES');
    expect(plan.payload).not.toContain('ALPHA');
    // the changed chain is declared (flushed) and all its rules written
    const l = lines(plan.payload);
    expect(l).toContain(':KUBE-SVC-BETAXXXXXXXXXXXX - [0:0]');
    expect(l.filter((x) => x.startsWith('-A KUBE-SVC-BETAXXXXXXXXXXXX '))).toHaveLength(2);
  });

  it('deletes a removed service: flushed, KUBE-SERVICES rewritten, -X after every rule line', () => {
    const next = ruleSet([{ name: 'alpha', ip: '10.96.0.10', endpoints: ['10.244.1.2', '10.244.2.2'] }]);
    const plan = planIptablesRestore(next, base, { full: false });
    expect(plan.deletedChains.map((c) => c.chain).sort()).toEqual([
      'KUBE-SEP-BETA1024413YYYYY',
      'KUBE-SVC-BETAXXXXXXXXXXXX',
    ]);
    expect(plan.changedChains.map((c) => c.chain)).toEqual(['KUBE-SERVICES']);
    const l = lines(plan.payload);
    const lastRule = l.findLastIndex((x) => x.startsWith('-A '));
    const firstDelete = l.findIndex((x) => x.startsWith('-X '));
    expect(firstDelete).toBeGreaterThan(lastRule);
    // a chain is declared (flushed) before it is deleted, so its own jumps to SEP chains are gone
    expect(l.indexOf(':KUBE-SVC-BETAXXXXXXXXXXXX - [0:0]')).toBeGreaterThan(-1);
    expect(l.indexOf(':KUBE-SVC-BETAXXXXXXXXXXXX - [0:0]')).toBeLessThan(firstDelete);
    expect(l.at(-1)).toBe('COMMIT');
  });

  it('a full plan deletes stale owned chains seen in the kernel and ignores chains of others', () => {
    const plan = planIptablesRestore(base, base, {
      full: true,
      observedChains: {
        nat: [
          'KUBE-SERVICES',
          'KUBE-SVC-OLDOLDOLDOLDOLDO',
          'KUBE-MARK-DROP',
          'KUBE-KUBELET-CANARY',
          'PREROUTING',
          'DOCKER',
        ],
        filter: ['KUBE-FIREWALL', 'KUBE-PROXY-FIREWALL', 'INPUT'],
      },
    });
    expect(plan.deletedChains).toEqual([{ table: 'nat', chain: 'KUBE-SVC-OLDOLDOLDOLDOLDO' }]);
    // an owned static chain portway no longer renders is flushed, not deleted (a built-in jump may name it)
    expect(plan.flushedChains).toEqual([{ table: 'filter', chain: 'KUBE-PROXY-FIREWALL' }]);
    for (const foreign of [
      'KUBE-MARK-DROP',
      'KUBE-KUBELET-CANARY',
      'PREROUTING',
      'DOCKER',
      'KUBE-FIREWALL',
      'INPUT',
    ]) {
      expect(plan.payload).not.toMatch(new RegExp(`^(:|-X )${foreign}\\b`, 'm'));
    }
  });

  it('a one-endpoint change on a large rule set costs a couple of kilobytes', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({
      name: `svc${i}`,
      ip: `10.96.${Math.floor(i / 250)}.${i % 250}`,
      endpoints: Array.from({ length: 10 }, (_, j) => `10.244.${i % 200}.${j + 2}`),
    }));
    const before = ruleSet(many);
    const changed = many.map((s, i) => (i === 500 ? { ...s, endpoints: s.endpoints.slice(1) } : s));
    const after = ruleSet(changed);
    const fullPlan = planIptablesRestore(after, before, { full: true });
    const partial = planIptablesRestore(after, before, { full: false });
    expect(partial.full).toBe(false);
    // the SVC chain is rewritten and one SEP chain deleted; nothing else
    expect(partial.changedChains).toHaveLength(1);
    expect(partial.deletedChains).toHaveLength(1);
    expect(partial.bytes).toBeLessThan(2000);
    process.stdout.write(
      `one-endpoint change over 1000 services: partial ${partial.bytes} B, full ${fullPlan.bytes} B\n`,
    );
    expect(fullPlan.bytes).toBeGreaterThan(100 * partial.bytes);
    expect(fullPlan.listFirst).toBe(true);
    expect(partial.listFirst).toBe(false);
  });

  it('rejects a desired chain portway does not own and a rule filed under the wrong chain', () => {
    const foreign: IptablesRuleSet = {
      family: 'IPv4',
      builtinJumps: [],
      tables: [{ name: 'nat', chains: [{ name: 'DOCKER', role: 'static', rules: [] }] }],
    };
    expect(() => planIptablesRestore(foreign, null, { full: true })).toThrow(
      /"DOCKER" is not a portway-owned chain/,
    );
    const misfiled: IptablesRuleSet = {
      family: 'IPv4',
      builtinJumps: [],
      tables: [
        {
          name: 'nat',
          chains: [{ name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-NODEPORTS -j ACCEPT'] }],
        },
      ],
    };
    expect(() => planIptablesRestore(misfiled, null, { full: true })).toThrow(
      /chain KUBE-SERVICES: rule "-A KUBE-NODEPORTS/,
    );
  });

  it("writes kubelet's KUBE-FIREWALL when desired but never flushes or deletes it", () => {
    const withFirewall: IptablesRuleSet = {
      ...base,
      tables: base.tables.map((t) =>
        t.name === 'filter'
          ? {
              ...t,
              chains: [
                ...t.chains,
                { name: 'KUBE-FIREWALL', role: 'static', rules: ['-A KUBE-FIREWALL -d 127.0.0.0/8 -j DROP'] },
              ],
            }
          : t,
      ),
    };
    expect(planIptablesRestore(withFirewall, base, { full: false }).changedChains).toEqual([
      { table: 'filter', chain: 'KUBE-FIREWALL' },
    ]);
    const dropped = planIptablesRestore(base, withFirewall, {
      full: true,
      observedChains: { filter: ['KUBE-FIREWALL'] },
    });
    expect(dropped.payload).not.toContain('KUBE-FIREWALL');
  });

  it('knows which chains are owned', () => {
    expect(isOwnedChainName('KUBE-SEP-ABCDEF')).toBe(true);
    expect(isOwnedChainName('KUBE-NODEPORTS')).toBe(true);
    expect(isOwnedChainName('KUBE-MARK-DROP')).toBe(false);
    expect(isOwnedChainName('POSTROUTING')).toBe(false);
  });
});

describe('declarationOrder', () => {
  const chain = (name: string, targets: string[]): RenderedChain => ({
    name,
    role: 'static',
    rules: targets.map((t) => `-A ${name} -m comment --comment "to ${t}" -j ${t}`),
  });

  it('puts every jump target before the chains that jump to it, depth first, otherwise keeping the order', () => {
    const order = declarationOrder([
      chain('KUBE-SERVICES', ['KUBE-SVC-A', 'KUBE-SVC-B']),
      chain('KUBE-MARK-MASQ', ['MARK']),
      chain('KUBE-SVC-A', ['KUBE-MARK-MASQ', 'KUBE-SEP-A1', 'KUBE-SEP-A2']),
      chain('KUBE-SEP-A1', ['KUBE-MARK-MASQ', 'DNAT']),
      chain('KUBE-SEP-A2', ['KUBE-MARK-MASQ', 'DNAT']),
      chain('KUBE-SVC-B', ['KUBE-SEP-B1']),
      chain('KUBE-SEP-B1', ['DNAT']),
      chain('KUBE-NODEPORTS', []),
    ]).map((c) => c.name);
    expect(order).toEqual([
      'KUBE-MARK-MASQ',
      'KUBE-SEP-A1',
      'KUBE-SEP-A2',
      'KUBE-SVC-A',
      'KUBE-SEP-B1',
      'KUBE-SVC-B',
      'KUBE-SERVICES',
      'KUBE-NODEPORTS',
    ]);
  });

  it('ignores targets that are not being written and jumps written inside comments', () => {
    const order = declarationOrder([
      {
        name: 'KUBE-SVC-A',
        role: 'service',
        rules: ['-A KUBE-SVC-A -m comment --comment "x -j KUBE-SEP-Z" -j KUBE-SEP-EXISTING'],
      },
      chain('KUBE-SEP-Z', ['DNAT']),
    ]).map((c) => c.name);
    expect(order).toEqual(['KUBE-SVC-A', 'KUBE-SEP-Z']);
  });
});
