// The plan skips chains that are the same objects as last time (a cached render reuses them) and
// compares the others by text. Whatever the walk pairs up or not, the plan must be the one a plain
// by-name comparison gives: checked here against such a reference over random rule set pairs.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  declarationOrder,
  isOwnedChainName,
  isServiceChainName,
  planIptablesRestore,
  type IptablesPlan,
} from '../../../src/plan/iptables-plan.js';
import { renderIptables, IptablesRenderCache } from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet, RenderedChain, TableName } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from '../render/fixtures.js';

/** The plan as a by-name comparison computes it (the algorithm before identity skipping). */
function referencePlan(
  desired: IptablesRuleSet,
  lastApplied: IptablesRuleSet | null,
  full: boolean,
): Pick<IptablesPlan, 'payload' | 'changedChains' | 'deletedChains' | 'flushedChains'> {
  const byName = (rs: IptablesRuleSet | null, t: TableName) =>
    new Map((rs?.tables.find((x) => x.name === t)?.chains ?? []).map((c) => [c.name, c]));
  const lines: string[] = [];
  const changedChains: IptablesPlan['changedChains'] = [];
  const deletedChains: IptablesPlan['deletedChains'] = [];
  const flushedChains: IptablesPlan['flushedChains'] = [];
  for (const table of ['filter', 'nat'] as const) {
    const want = byName(desired, table);
    const had = byName(lastApplied, table);
    const toWrite = [...want.values()].filter((c) => {
      const before = had.get(c.name);
      return full || !before || before.rules.join('\n') !== c.rules.join('\n');
    });
    const gone = [...had.keys()].filter((n) => !want.has(n) && isOwnedChainName(n));
    const toDelete = gone.filter(isServiceChainName);
    const toFlush = gone.filter((n) => !isServiceChainName(n));
    if (toWrite.length === 0 && gone.length === 0) continue;
    lines.push(`*${table}`);
    for (const n of [...toFlush, ...toDelete]) lines.push(`:${n} - [0:0]`);
    if (lastApplied === null)
      for (const c of declarationOrder(toWrite)) lines.push(`:${c.name} - [0:0]`, ...c.rules);
    else lines.push(...toWrite.map((c) => `:${c.name} - [0:0]`), ...toWrite.flatMap((c) => c.rules));
    for (const n of toDelete) lines.push(`-X ${n}`);
    lines.push('COMMIT');
    changedChains.push(...toWrite.map((c) => ({ table, chain: c.name })));
    deletedChains.push(...toDelete.map((chain) => ({ table, chain })));
    flushedChains.push(...toFlush.map((chain) => ({ table, chain })));
  }
  return {
    payload: lines.length ? lines.join('\n') + '\n' : '',
    changedChains,
    deletedChains,
    flushedChains,
  };
}

const NAMES = [
  'KUBE-SERVICES',
  'KUBE-NODEPORTS',
  ...Array.from({ length: 10 }, (_, i) => `KUBE-SEP-${String(i).padStart(16, 'X')}`),
];

describe('planIptablesRestore with shared chain objects', () => {
  it('equals a by-name comparison for any pair of rule sets sharing objects (property)', () => {
    const chainArb = fc.record({ name: fc.constantFrom(...NAMES), variant: fc.nat({ max: 2 }) });
    fc.assert(
      fc.property(
        fc.uniqueArray(chainArb, { selector: (c) => c.name, maxLength: 12 }),
        fc.uniqueArray(chainArb, { selector: (c) => c.name, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.boolean(),
        (before, after, share, full) => {
          const make = (name: string, variant: number): RenderedChain => ({
            name,
            role: name.startsWith('KUBE-SEP-') ? 'endpoint' : 'static',
            rules: Array.from(
              { length: variant },
              (_, k) => `-A ${name} -j RETURN -m comment --comment v${variant}-${k}`,
            ),
          });
          const pool = new Map<string, RenderedChain>();
          const had = before.map((c) => {
            const chain = make(c.name, c.variant);
            pool.set(`${c.name}/${c.variant}`, chain);
            return chain;
          });
          // The same object when the content matches and the coin says so; else an equal or other copy.
          const want = after.map(
            (c, i) => (share[i] && pool.get(`${c.name}/${c.variant}`)) || make(c.name, c.variant),
          );
          const rs = (chains: RenderedChain[]): IptablesRuleSet => ({
            family: 'IPv4',
            builtinJumps: [],
            tables: [{ name: 'nat', chains }],
          });
          const plan = planIptablesRestore(rs(want), rs(had), { full });
          const reference = referencePlan(rs(want), rs(had), full);
          expect({
            payload: plan.payload,
            changedChains: plan.changedChains,
            deletedChains: plan.deletedChains,
            flushedChains: plan.flushedChains,
          }).toEqual(reference);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('over cached renders: one endpoint changed among many services writes that service only', () => {
    const ports = Array.from({ length: 300 }, (_, i) =>
      svcPort('ns', `s${i}`, 'p', {
        clusterIPs: [`10.96.${i >> 8}.${i & 255}`],
        endpoints: [ep(`10.244.${i >> 8}.${i & 255}`, 80), ep(`10.245.${i >> 8}.${i & 255}`, 80)],
      }),
    );
    const cache = new IptablesRenderCache();
    const before = renderIptables(stateOf(...ports), options(), cache);
    const changed = ports.map((p, i) =>
      i === 150
        ? svcPort('ns', 's150', 'p', {
            clusterIPs: p.clusterIPs,
            endpoints: [ep('10.246.0.1', 80), ...p.endpoints.slice(1)],
          })
        : p,
    );
    const after = renderIptables(stateOf(...changed), options(), cache);
    const plan = planIptablesRestore(after, before, { full: false });
    expect(plan.changedChains.map((c) => c.chain.slice(0, 9))).toEqual(['KUBE-SVC-', 'KUBE-SEP-']);
    expect(plan.deletedChains).toHaveLength(1);
    const fresh = renderIptables(stateOf(...changed), options());
    expect(plan.payload).toBe(referencePlan(fresh, before, false).payload);
  });
});
