// IptablesRenderCache: rendering with a cache over states that share ServicePort objects must give
// exactly what a fresh render gives, whatever the sequence of states and options.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import {
  IptablesRenderCache,
  renderIptables,
  serializeRuleSet,
  type IptablesRenderOptions,
} from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import {
  ep,
  indexedServicePort,
  nodeAOptions,
  options,
  podEndpoint,
  stateOf,
  svcPort,
  type EndpointCondition,
} from './fixtures.js';

const endpointArb: fc.Arbitrary<Endpoint> = fc
  .record({
    host: fc.integer({ min: 1, max: 20 }),
    cond: fc.constantFrom<EndpointCondition>('ready', 'ready', 'terminating-serving', 'not-ready'),
    node: fc.constantFrom<string | undefined>('node-a', 'node-b', undefined),
    v6: fc.boolean(),
  })
  .map(({ host, cond, node, v6 }) => podEndpoint(host, v6, 8080, cond, node));

/** A variant of service port `index`: same identity (namespace/name/port), different content. */
const variantArb = (index: number): fc.Arbitrary<ServicePort> =>
  fc
    .record({
      type: fc.constantFrom<ServicePort['type']>('ClusterIP', 'NodePort', 'LoadBalancer'),
      etp: fc.constantFrom<'Cluster' | 'Local'>('Cluster', 'Local'),
      itp: fc.constantFrom<'Cluster' | 'Local'>('Cluster', 'Local'),
      dual: fc.boolean(),
      externalIPs: fc.subarray(['198.51.100.1', '2001:db8::1']),
      ranges: fc.subarray(['203.0.113.0/24', '10.99.0.0/16']),
      affinity: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
      endpoints: fc.uniqueArray(endpointArb, { maxLength: 5, selector: (e) => e.ip }),
    })
    .map((r) =>
      indexedServicePort(index, 'p', r, {
        loadBalancerIngress: r.type === 'LoadBalancer' ? [{ ip: `192.0.2.${index + 1}`, ipMode: 'VIP' }] : [],
      }),
    );

const SERVICES = 5;
/** Per service port, a few variant objects; each state picks one (or none) per service port. */
const poolArb = fc.tuple(...Array.from({ length: SERVICES }, (_, i) => fc.array(variantArb(i), { minLength: 1, maxLength: 3 })));

const optionsArb: fc.Arbitrary<IptablesRenderOptions> = fc
  .record({
    family: fc.constantFrom<'IPv4' | 'IPv6'>('IPv4', 'IPv6'),
    masqueradeAll: fc.boolean(),
    threshold: fc.constantFrom(1000, 4),
  })
  .map((o) =>
    nodeAOptions(o.family, true, {
      masqueradeAll: o.masqueradeAll,
      largeClusterEndpointThreshold: o.threshold,
    }),
  );

/** Everything a consumer can see of a rule set: structure (names, roles, owners, rules) and payload. */
function visible(rs: IptablesRuleSet) {
  return { json: JSON.parse(JSON.stringify(rs)) as unknown, payload: serializeRuleSet(rs) };
}

describe('IptablesRenderCache', () => {
  it('a cached render equals a fresh render over any sequence of states sharing objects (property)', () => {
    fc.assert(
      fc.property(
        poolArb,
        fc.array(
          fc.record({
            picks: fc.array(fc.nat({ max: 3 }), { minLength: SERVICES, maxLength: SERVICES }),
            optionsChange: fc.option(optionsArb, { nil: undefined, freq: 4 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        optionsArb,
        (pool, steps, firstOptions) => {
          const cache = new IptablesRenderCache();
          let opts = firstOptions;
          for (const step of steps) {
            if (step.optionsChange) opts = step.optionsChange;
            // pick index == variants.length means "absent"
            const ports = pool.flatMap((variants, i) => {
              const pick = step.picks[i]! % (variants.length + 1);
              return pick < variants.length ? [variants[pick]!] : [];
            });
            const state = stateOf(...ports);
            const cached = renderIptables(state, opts, cache);
            const fresh = renderIptables(structuredClone(state), opts);
            expect(visible(cached)).toEqual(visible(fresh));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('renders only the service ports that changed; unchanged ones give the same chain objects', () => {
    const a = svcPort('ns', 'a', 'p', { clusterIPs: ['10.96.0.1'], endpoints: [ep('10.244.0.1', 80)] });
    const b = svcPort('ns', 'b', 'p', { clusterIPs: ['10.96.0.2'], endpoints: [ep('10.244.0.2', 80)] });
    const b2 = svcPort('ns', 'b', 'p', { clusterIPs: ['10.96.0.2'], endpoints: [ep('10.244.0.3', 80)] });
    const cache = new IptablesRenderCache();
    const first = renderIptables(stateOf(a, b), options(), cache);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
    const second = renderIptables(stateOf(a, b2), options(), cache);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    const natChains = (rs: IptablesRuleSet) => rs.tables.find((t) => t.name === 'nat')!.chains;
    const ownedBy = (rs: IptablesRuleSet, owner: string) => natChains(rs).filter((c) => c.owner === owner);
    expect(ownedBy(second, 'ns/a:p/tcp')).toHaveLength(2);
    ownedBy(second, 'ns/a:p/tcp').forEach((c, i) => expect(c).toBe(ownedBy(first, 'ns/a:p/tcp')[i]));
    expect(ownedBy(second, 'ns/b:p/tcp')[0]).not.toBe(ownedBy(first, 'ns/b:p/tcp')[0]);
    expect(serializeRuleSet(second)).toBe(serializeRuleSet(renderIptables(stateOf(a, b2), options())));
  });

  it('other options or a flip of large-cluster mode render everything again', () => {
    const ports = [1, 2, 3].map((i) =>
      svcPort('ns', `s${i}`, 'p', { clusterIPs: [`10.96.0.${i}`], endpoints: [ep(`10.244.0.${i}`, 80), ep(`10.244.1.${i}`, 80)] }),
    );
    const cache = new IptablesRenderCache();
    renderIptables(stateOf(...ports), options(), cache);
    renderIptables(stateOf(...ports), options({ masqueradeAll: true }), cache);
    expect(cache.misses).toBe(3);
    // 6 endpoints: above a threshold of 4 the comments go, for every service port.
    const large = renderIptables(stateOf(...ports), options({ masqueradeAll: true, largeClusterEndpointThreshold: 4 }), cache);
    expect(cache.misses).toBe(3);
    expect(serializeRuleSet(large)).toBe(
      serializeRuleSet(renderIptables(stateOf(...ports), options({ masqueradeAll: true, largeClusterEndpointThreshold: 4 }))),
    );
  });

  it('a chain whose rules were replaced by a consumer is rendered again, not reused', () => {
    const a = svcPort('ns', 'a', 'p', { clusterIPs: ['10.96.0.1'], endpoints: [ep('10.244.0.1', 80)] });
    const cache = new IptablesRenderCache();
    const first = renderIptables(stateOf(a), options(), cache);
    const svcChain = first.tables.find((t) => t.name === 'nat')!.chains.find((c) => c.name.startsWith('KUBE-SVC-'))!;
    svcChain.rules = ['-A KUBE-SVC-X -j DROP'];
    const second = renderIptables(stateOf(a), options(), cache);
    expect(cache.misses).toBe(1);
    expect(serializeRuleSet(second)).toBe(serializeRuleSet(renderIptables(stateOf(a), options())));
  });
});
