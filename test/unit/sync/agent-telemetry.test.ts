import { describe, expect, it } from '@jest/globals';
import { emptyClusterState, type Endpoint, type ServicePort } from '../../../src/model/cluster-state.js';
import type { IptablesRuleSet, RenderedChain } from '../../../src/render/types.js';
import { countNoLocalEndpoints, RuleCounter } from '../../../src/sync/agent-telemetry.js';
import { endpoint, servicePort } from '../../fixtures/cluster-state.js';

const chain = (name: string, n: number, asText = false): RenderedChain => {
  const rules = Array.from({ length: n }, (_, i) => `-A ${name} -m comment --comment r${i} -j RETURN`);
  return asText
    ? ({ name, role: 'service', rules, text: rules.map((r) => `${r}\n`).join('') } as RenderedChain)
    : { name, role: 'service', rules };
};
const ruleSet = (nat: RenderedChain[], filter: RenderedChain[] = []): IptablesRuleSet => ({
  family: 'IPv4',
  tables: [
    { name: 'filter', chains: filter },
    { name: 'nat', chains: nat },
  ],
  builtinJumps: [],
});
const noPlan = { changedChains: [], deletedChains: [], flushedChains: [] };

describe('RuleCounter', () => {
  it('counts every rule on a full sync and only the written/removed chains on a partial one', () => {
    const counter = new RuleCounter();
    const first = ruleSet(
      [chain('KUBE-SERVICES', 3), chain('KUBE-SVC-A', 2, true), chain('KUBE-SEP-A', 4)],
      [chain('KUBE-FORWARD', 1)],
    );
    expect(
      counter.update(first, { ...noPlan, changedChains: [{ table: 'nat', chain: 'KUBE-SVC-A' }] }, true),
    ).toEqual([
      { table: 'filter', total: 1, written: 0 },
      { table: 'nat', total: 9, written: 2 },
    ]);
    // Partial: KUBE-SVC-A grew by one rule, KUBE-SEP-A removed, KUBE-SEP-B added.
    const second = ruleSet(
      [chain('KUBE-SERVICES', 3), chain('KUBE-SVC-A', 3, true), chain('KUBE-SEP-B', 5)],
      [chain('KUBE-FORWARD', 1)],
    );
    const partial = {
      changedChains: [
        { table: 'nat', chain: 'KUBE-SVC-A' },
        { table: 'nat', chain: 'KUBE-SEP-B' },
      ],
      deletedChains: [{ table: 'nat', chain: 'KUBE-SEP-A' }],
      flushedChains: [],
    };
    expect(counter.update(second, partial, false)).toEqual([
      { table: 'filter', total: 1, written: 0 },
      { table: 'nat', total: 11, written: 8 },
    ]);
  });
});

const ep = (ip: string, nodeName: string, ready = true, terminating = false): Endpoint =>
  endpoint(ip, 8080, { ready, serving: ready || terminating, terminating, nodeName });
const sp = (over: Partial<ServicePort>): ServicePort =>
  servicePort('ns/a:http', { clusterIPs: ['10.96.0.1'], ...over });

describe('countNoLocalEndpoints', () => {
  it('counts Local policies with endpoints elsewhere only (none at all is a REJECT, not counted)', () => {
    const state = emptyClusterState();
    state.servicePorts = [
      sp({ internalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.1', 'other')] }), // internal
      sp({ internalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.2', 'me')] }), // has a local one
      sp({ internalTrafficPolicy: 'Local', endpoints: [] }), // no endpoints at all
      sp({
        type: 'NodePort',
        nodePort: 30001,
        externalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.3', 'other')],
      }), // external
      sp({ externalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.4', 'other')] }), // not externally reachable
      // Only a terminating-but-serving local endpoint: usable by the fallback, so not counted.
      sp({
        type: 'NodePort',
        nodePort: 30002,
        externalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.5', 'me', false, true)],
      }),
    ];
    expect(countNoLocalEndpoints(state, 'me')).toEqual({ internal: 1, external: 1 });
  });
});
