// The full sync's cheap drift check (scan the dump into per-chain blocks, compare each block with the
// text the chain is expected to print as) must find exactly what the full parse-and-canonicalise
// comparison finds, whatever was changed behind portway's back.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import { parseIptablesSave } from '../../../src/dataplane/iptables-text.js';
import { emptyClusterState, type ServicePort } from '../../../src/model/cluster-state.js';
import { IptablesRenderCache, renderIptables, serializeRuleSet } from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import {
  detectDrift,
  detectDriftInScan,
  expectedSaveText,
  prepareExpectedSaveTexts,
  scanIptablesSave,
  scannedChainRules,
  textDigest,
} from '../../../src/sync/drift.js';
import { options } from '../render/fixtures.js';
import { endpoint, servicePort } from './fixtures.js';

const renderOptions = options({ nodeName: 'node-a', nodeIPs: ['192.168.50.2'], clusterCIDRs: ['10.244.0.0/16'] });

function ruleSet(): IptablesRuleSet {
  const ports: ServicePort[] = [
    servicePort('demo/dns:udp', { endpoints: [endpoint('10.244.1.2'), endpoint('10.244.2.2')] }),
    servicePort('demo/web:http', {
      protocol: 'TCP',
      type: 'LoadBalancer',
      port: 80,
      nodePort: 30080,
      clusterIPs: ['10.96.0.20'],
      loadBalancerIngress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
      loadBalancerSourceRanges: ['203.0.113.0/24'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      sessionAffinity: { type: 'ClientIP', timeoutSeconds: 600 },
      endpoints: [endpoint('10.244.1.3', { port: 8080, nodeName: 'node-a' }), endpoint('10.244.2.3', { port: 8080 })],
    }),
    servicePort('demo/empty:http', { protocol: 'TCP', port: 80, clusterIPs: ['10.96.0.30'], externalIPs: ['198.51.100.7'] }),
  ];
  const state = { ...emptyClusterState(), servicePorts: ports };
  return renderIptables(state, renderOptions, new IptablesRenderCache());
}

/** The dump the fake kernel prints after a restore of the rule set (jumps included). */
async function dumpOf(rs: IptablesRuleSet): Promise<string> {
  const fake = new FakeIptables();
  await fake.restore(serializeRuleSet(rs, { includeBuiltinJumps: true }), { noflush: true });
  return (await fake.save('filter')) + (await fake.save('nat'));
}

describe('drift over a scanned dump', () => {
  it('scans a dump into the same chains and rules as the full parser', async () => {
    const text = await dumpOf(ruleSet());
    const parsed = parseIptablesSave(text);
    const scanned = scanIptablesSave(text);
    expect([...scanned.keys()]).toEqual([...parsed.keys()]);
    for (const [name, table] of parsed) {
      const s = scanned.get(name)!;
      expect(s.chains).toEqual(table.chains);
      for (const chain of table.chains) {
        expect(scannedChainRules(s, chain.name)).toEqual(table.rules.filter((r) => r.chain === chain.name));
      }
    }
  });

  it('a chain whose rules are split up, indented or interleaved with blank lines is still read whole', () => {
    const text = '*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n-A KUBE-A -j RETURN\n\n  -A KUBE-A -j ACCEPT  \n-A KUBE-B -j DROP\n-A KUBE-A -j DROP\nCOMMIT\n';
    const scanned = scanIptablesSave(text).get('nat')!;
    expect(scanned.ruleText.get('KUBE-A')).toBe('-A KUBE-A -j RETURN\n-A KUBE-A -j ACCEPT\n-A KUBE-A -j DROP\n');
    expect(scanned.ruleText.get('KUBE-B')).toBe('-A KUBE-B -j DROP\n');
    expect(() => scanIptablesSave('-A KUBE-A -j DROP\n')).toThrow(/outside a table/);
    expect(() => scanIptablesSave('*nat\nbogus\nCOMMIT\n')).toThrow(/unexpected line/);
  });

  it('finds no drift in an untouched dump', async () => {
    const rs = ruleSet();
    const text = await dumpOf(rs);
    expect(detectDriftInScan(rs, scanIptablesSave(text))).toEqual([]);
    expect(detectDrift(rs, parseIptablesSave(text))).toEqual([]);
  });

  it('a REJECT printed with the kernel default --reject-with is not drift', () => {
    const rs: IptablesRuleSet = {
      family: 'IPv4',
      builtinJumps: [],
      tables: [{ name: 'filter', chains: [{ name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-SERVICES -d 10.96.0.1 -m tcp -p tcp --dport 80 -j REJECT'] }] }],
    };
    const printed = '*filter\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n';
    expect(expectedSaveText(rs.tables[0]!.chains[0]!, 'IPv4')).toBe(printed.split('\n')[2] + '\n');
    expect(detectDriftInScan(rs, scanIptablesSave(printed))).toEqual([]);
    expect(detectDrift(rs, parseIptablesSave(printed))).toEqual([]);
  });

  it('finds exactly what the full comparison finds after any edits behind portway’s back (property)', async () => {
    const rs = ruleSet();
    const lines = (await dumpOf(rs)).split('\n');
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('deleteLine' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('duplicateLine' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('changeAddress' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('addChain' as const), name: fc.constantFrom('KUBE-SVC-STALESTALESTALE', 'DOCKER', 'KUBE-SEP-OLDOLDOLDOLDOLDO') }),
      fc.record({ kind: fc.constant('reindent' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 4 }), (edits) => {
        const text = [...lines];
        for (const e of edits) {
          const ruleIdx = text.map((l, i) => (l.startsWith('-A ') ? i : -1)).filter((i) => i >= 0);
          if (e.kind === 'addChain') {
            const natAt = text.indexOf('*nat');
            text.splice(natAt + 1, 0, `:${e.name} - [0:0]`);
            text.splice(text.lastIndexOf('COMMIT'), 0, `-A ${e.name} -j RETURN`);
            continue;
          }
          if (ruleIdx.length === 0) continue;
          const at = ruleIdx[e.at % ruleIdx.length]!;
          if (e.kind === 'deleteLine') text.splice(at, 1);
          else if (e.kind === 'duplicateLine') text.splice(at, 0, text[at]!);
          else if (e.kind === 'reindent') text[at] = `  ${text[at]}  `;
          else text[at] = text[at]!.replace(/10\.244\.(\d+)\./, '10.245.$1.');
        }
        const dump = text.join('\n');
        expect(detectDriftInScan(rs, scanIptablesSave(dump))).toEqual(detectDrift(rs, parseIptablesSave(dump)));
      }),
      { numRuns: 200 },
    );
  });

  it('prepares expected texts in slices, serving the event loop in between', async () => {
    const rs = ruleSet();
    const fresh = (): IptablesRuleSet => ({ ...rs, tables: rs.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c })) })) });
    const many: IptablesRuleSet = { ...rs, tables: [...fresh().tables, ...fresh().tables] };
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    let clock = 0;
    // A clock that moves 1 ms per look and a 0-ms slice: it yields at every check (every 16 chains).
    await prepareExpectedSaveTexts(many, { sliceMs: 0, now: () => clock++ });
    expect(immediateRan).toBe(true);
    for (const t of many.tables) for (const c of t.chains) expect(typeof expectedSaveText(c, 'IPv4')).toBe('string');
    // Chains already prepared cost nothing and never yield.
    immediateRan = false;
    setImmediate(() => (immediateRan = true));
    await prepareExpectedSaveTexts(many, { sliceMs: 0, now: () => clock++ });
    expect(immediateRan).toBe(false);
  });
});

describe('textDigest', () => {
  it('is stable and tells apart texts that differ in one character or in order', () => {
    const a = '-A KUBE-SEP-X -s 10.244.1.2/32 -j KUBE-MARK-MASQ\n';
    expect(textDigest(a)).toBe(textDigest(`${a}`));
    expect(textDigest(a)).not.toBe(textDigest(a.replace('1.2/', '1.3/')));
    expect(textDigest('ab')).not.toBe(textDigest('ba'));
    expect(Number.isSafeInteger(textDigest(a))).toBe(true);
  });
});
