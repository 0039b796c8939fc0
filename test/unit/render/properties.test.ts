// Property tests over random ClusterStates: structure that must hold for any input.
import fc from 'fast-check';
import type { Endpoint, ServicePort } from '../../../src/model/cluster-state.js';
import { formatProbability, renderIptables, serializeRuleSet } from '../../../src/render/iptables/index.js';
import type { IptablesRenderOptions } from '../../../src/render/iptables/index.js';
import {
  indexedServicePort,
  nodeAOptions,
  podEndpoint,
  stateOf,
  type EndpointCondition,
} from './fixtures.js';

const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MARK', 'MASQUERADE', 'DNAT']);

const endpointArb: fc.Arbitrary<Endpoint> = fc
  .record({
    host: fc.integer({ min: 1, max: 30 }),
    port: fc.constantFrom(80, 8080),
    cond: fc.constantFrom<EndpointCondition>(
      'ready',
      'ready',
      'terminating-serving',
      'terminating',
      'not-ready',
    ),
    node: fc.constantFrom<string | undefined>('node-a', 'node-b', undefined),
    v6: fc.boolean(),
  })
  .map(({ host, port, cond, node, v6 }) => podEndpoint(host, v6, port, cond, node));

const servicePortArb = (index: number): fc.Arbitrary<ServicePort> =>
  fc
    .record({
      type: fc.constantFrom<ServicePort['type']>('ClusterIP', 'NodePort', 'LoadBalancer'),
      protocol: fc.constantFrom<ServicePort['protocol']>('TCP', 'UDP', 'SCTP'),
      etp: fc.constantFrom<'Cluster' | 'Local'>('Cluster', 'Local'),
      itp: fc.constantFrom<'Cluster' | 'Local'>('Cluster', 'Local'),
      dual: fc.boolean(),
      externalIPs: fc.subarray(['198.51.100.1', '198.51.100.2', '2001:db8::1']),
      lb: fc.subarray([
        { ip: '192.0.2.1', ipMode: 'VIP' as const },
        { ip: '192.0.2.2', ipMode: 'Proxy' as const },
        { ip: '2001:db8::99', ipMode: 'VIP' as const },
      ]),
      ranges: fc.subarray(['203.0.113.0/24', '10.99.0.0/16', '0.0.0.0/0', '2001:db8:1::/48']),
      affinity: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
      endpoints: fc.uniqueArray(endpointArb, { maxLength: 7, selector: (e) => `${e.ip}|${e.port}` }),
    })
    .map((r) =>
      indexedServicePort(index, index % 2 === 0 ? 'p' : '', r, {
        protocol: r.protocol,
        loadBalancerIngress: r.type === 'LoadBalancer' ? r.lb : [],
      }),
    );

const stateArb = fc
  .integer({ min: 0, max: 5 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => servicePortArb(i))))
  .map((ports) => stateOf(...ports));

const optionsArb: fc.Arbitrary<IptablesRenderOptions> = fc
  .record({
    family: fc.constantFrom<'IPv4' | 'IPv6'>('IPv4', 'IPv6'),
    masqueradeAll: fc.boolean(),
    detector: fc.boolean(),
    npa: fc.constantFrom<string[]>([], ['primary'], ['10.99.0.0/16', 'fd00:99::/64'], ['127.0.0.0/8']),
    localhostNodePorts: fc.boolean(),
    threshold: fc.constantFrom(1000, 3),
  })
  .map((o) =>
    nodeAOptions(o.family, o.detector, {
      masqueradeAll: o.masqueradeAll,
      nodePortAddresses: o.npa,
      localhostNodePorts: o.localhostNodePorts,
      largeClusterEndpointThreshold: o.threshold,
    }),
  );

const jumpTarget = (rule: string): string | undefined => / -[jg] (\S+)/.exec(rule)?.[1];

describe('render properties', () => {
  test('deterministic: the same input renders byte-identical payloads', () => {
    fc.assert(
      fc.property(stateArb, optionsArb, (state, opts) => {
        const a = serializeRuleSet(renderIptables(state, opts));
        const b = serializeRuleSet(renderIptables(structuredClone(state), { ...opts }));
        expect(a).toBe(b);
      }),
      { numRuns: 150 },
    );
  });

  test('every jump target is declared in the same table or is a built-in target', () => {
    fc.assert(
      fc.property(stateArb, optionsArb, (state, opts) => {
        const rs = renderIptables(state, opts);
        for (const table of rs.tables) {
          const declared = new Set(table.chains.map((c) => c.name));
          for (const c of table.chains) {
            for (const rule of c.rules) {
              expect(rule.startsWith(`-A ${c.name} `) || rule === `-A ${c.name}`).toBe(true);
              const target = jumpTarget(rule);
              if (target !== undefined && !BUILTIN_TARGETS.has(target)) expect(declared).toContain(target);
            }
          }
          for (const j of rs.builtinJumps.filter((x) => x.table === table.name)) {
            expect(declared).toContain(jumpTarget(` ${j.spec}`));
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('no per-service chain is declared without being jumped to', () => {
    fc.assert(
      fc.property(stateArb, optionsArb, (state, opts) => {
        const rs = renderIptables(state, opts);
        for (const table of rs.tables) {
          const referenced = new Set<string>();
          for (const c of table.chains) for (const r of c.rules) referenced.add(jumpTarget(r) ?? '');
          for (const c of table.chains) {
            if (c.role !== 'static') {
              expect({ chain: c.name, referenced: referenced.has(c.name) }).toEqual({
                chain: c.name,
                referenced: true,
              });
              expect(c.owner).toMatch(/^ns\d+\/svc\d+(:p)?\/(tcp|udp|sctp)$/);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('endpoint jumps form a correct probability ladder (rule i of n: 1/(n-i), last unconditional)', () => {
    fc.assert(
      fc.property(stateArb, optionsArb, (state, opts) => {
        const rs = renderIptables(state, opts);
        const nat = rs.tables.find((t) => t.name === 'nat');
        for (const c of nat?.chains ?? []) {
          if (c.role !== 'service') continue;
          const ladder = c.rules.filter(
            (r) => jumpTarget(r)?.startsWith('KUBE-SEP-') && !r.includes('--rcheck'),
          );
          const n = ladder.length;
          expect(n).toBeGreaterThan(0);
          ladder.forEach((rule, i) => {
            const p = /--probability (\S+)/.exec(rule)?.[1];
            if (i < n - 1) expect(p).toBe(formatProbability(n - i));
            else expect(p).toBeUndefined();
          });
          expect(new Set(ladder.map(jumpTarget)).size).toBe(n);
        }
      }),
      { numRuns: 200 },
    );
  });
});
