// A streamed full plan (head written while iptables-save runs, tail once the dump is known) must leave
// the kernel exactly as the one-shot full plan does, whatever was applied before and whatever stale
// chains the kernel holds. Checked through the validating FakeIptables over random cluster pairs.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { planFullRestoreStreamed, planIptablesRestore } from '../../../src/plan/iptables-plan.js';
import { renderIptables } from '../../../src/render/iptables/index.js';
import type { TableName } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from '../render/fixtures.js';

/** A cluster of `n` ClusterIP/NodePort services, service i with endpoints[i] endpoints. */
function cluster(endpoints: number[], nodePorts: boolean[]): ClusterState {
  return stateOf(
    ...endpoints.map((count, i) =>
      svcPort('ns', `s${i}`, 'http', {
        clusterIPs: [`10.96.0.${i + 10}`],
        ...(nodePorts[i] ? { type: 'NodePort' as const, nodePort: 30000 + i } : {}),
        endpoints: Array.from({ length: count }, (_, k) => ep(`10.244.${i}.${k + 2}`, 8080)),
      }),
    ),
  );
}

const STALE = [
  { table: 'nat' as const, chain: 'KUBE-SVC-STALEAAAAAAAAAAA' },
  { table: 'nat' as const, chain: 'KUBE-SEP-STALEBBBBBBBBBBB' },
  { table: 'filter' as const, chain: 'KUBE-PROXY-FIREWALL' },
];

async function kernelWith(applied: ClusterState | null, stale: boolean[]): Promise<FakeIptables> {
  const fake = new FakeIptables();
  if (applied)
    await fake.restore(
      planIptablesRestore(renderIptables(applied, options()), null, { full: true }).payload,
      { noflush: true },
    );
  const lines = STALE.filter((_, i) => stale[i]).map(
    (s) => `*${s.table}\n:${s.chain} - [0:0]\n-A ${s.chain} -j RETURN\nCOMMIT\n`,
  );
  if (lines.length > 0) await fake.restore(lines.join(''), { noflush: true });
  // Someone else's chain, which neither plan may touch.
  await fake.restore('*nat\n:OTHER-CHAIN - [0:0]\n-A OTHER-CHAIN -j RETURN\nCOMMIT\n', { noflush: true });
  return fake;
}

const observed = (fake: FakeIptables): Partial<Record<TableName, string[]>> => ({
  filter: fake.chainNames('filter'),
  nat: fake.chainNames('nat'),
});

const sortRefs = (refs: Array<{ table: string; chain: string }>) =>
  refs.map((r) => `${r.table}/${r.chain}`).sort();

describe('planFullRestoreStreamed', () => {
  it('leaves the kernel as the one-shot full plan does (property)', async () => {
    const clusterArb = fc.tuple(
      fc.array(fc.nat({ max: 3 }), { maxLength: 4 }),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.option(clusterArb, { nil: null }),
        clusterArb,
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        async (before, after, stale, lastAppliedKnown) => {
          const applied = before === null ? null : cluster(...before);
          const desired = renderIptables(cluster(...after), options());
          const lastApplied = lastAppliedKnown && applied ? renderIptables(applied, options()) : null;

          const oneShotKernel = await kernelWith(applied, stale);
          const oneShot = planIptablesRestore(desired, lastApplied, {
            full: true,
            observedChains: observed(oneShotKernel),
          });
          await oneShotKernel.restore(oneShot.payload, { noflush: true });

          const streamedKernel = await kernelWith(applied, stale);
          const streamed = planFullRestoreStreamed(desired, lastApplied);
          expect(streamed.head.startsWith('*nat\n')).toBe(true);
          expect(streamed.head).not.toMatch(/^COMMIT$/m);
          const finished = streamed.finish(observed(streamedKernel));
          expect(finished.tail.endsWith('COMMIT\n')).toBe(true);
          await streamedKernel.restore(streamed.head + finished.tail, { noflush: true });

          expect(streamedKernel.dump()).toBe(oneShotKernel.dump());
          expect(sortRefs(streamed.changedChains)).toEqual(sortRefs(oneShot.changedChains));
          expect(sortRefs(finished.deletedChains)).toEqual(sortRefs(oneShot.deletedChains));
          expect(sortRefs(finished.flushedChains)).toEqual(sortRefs(oneShot.flushedChains));
          expect(finished.bytes).toBe(Buffer.byteLength(streamed.head + finished.tail));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('removes stale owned chains the dump shows, in the tail, and never a chain of someone else', async () => {
    const kernel = await kernelWith(cluster([2], [true]), [true, true, true]);
    const streamed = planFullRestoreStreamed(renderIptables(cluster([1], [false]), options()), null);
    const { tail, deletedChains } = streamed.finish(observed(kernel));
    expect(streamed.head).not.toContain('STALE');
    expect(tail).toContain('-X KUBE-SVC-STALEAAAAAAAAAAA');
    expect(tail).toContain('-X KUBE-SEP-STALEBBBBBBBBBBB');
    expect(tail).not.toContain('OTHER-CHAIN');
    expect(sortRefs(deletedChains)).toEqual(
      expect.arrayContaining(['nat/KUBE-SEP-STALEBBBBBBBBBBB', 'nat/KUBE-SVC-STALEAAAAAAAAAAA']),
    );
    await kernel.restore(streamed.head + tail, { noflush: true });
    expect(kernel.chainNames('nat')).toContain('OTHER-CHAIN');
    expect(kernel.chainNames('nat')).not.toContain('KUBE-SVC-STALEAAAAAAAAAAA');
  });
});
