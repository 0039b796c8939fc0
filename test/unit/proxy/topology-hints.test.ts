// Topology-aware routing: which endpoints the cluster-policy chain (KUBE-SVC-*) gets when the
// EndpointSlice controller has written hints, modelled on kube-proxy's TestCategorizeEndpoints
// (pkg/proxy/topology_test.go) as current kube-proxy decides it (no Service annotation check;
// PreferSameTrafficDistribution on, as it is by default since 1.34).
import { describe, expect, it } from '@jest/globals';
import type { ClusterState, Endpoint, NodeInfo, ServicePort } from '../../../src/model/cluster-state.js';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import {
  IptablesRenderCache,
  renderIptables,
  serializeRuleSet,
  type IptablesRenderOptions,
} from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from '../render/fixtures.js';

const THIS_NODE = 'test-node';
const SVC = 'KUBE-SVC-XPGD46QRK7WJZT7O';
const SVL = 'KUBE-SVL-XPGD46QRK7WJZT7O';

function node(name: string, zone?: string): NodeInfo {
  const labels: Record<string, string> = zone === undefined ? {} : { 'topology.kubernetes.io/zone': zone };
  return { name, addresses: [], ready: true, labels, ...(zone === undefined ? {} : { zone }) };
}

/** Endpoint 10.1.2.<host>:80, with zone hints (undefined = none) and other fields. */
function hinted(host: number, zones: string[] | undefined, extra: Partial<Endpoint> = {}): Endpoint {
  return ep(`10.1.2.${host}`, 80, { ...(zones === undefined ? {} : { zoneHints: zones }), ...extra });
}

function service(endpoints: Endpoint[], extra: Partial<ServicePort> = {}): ServicePort {
  return svcPort('ns1', 'svc1', 'p80', { clusterIPs: ['172.30.0.41'], endpoints, ...extra });
}

/** A state holding the service, with this node in `zone` (undefined: a Node without the label). */
function stateIn(zone: string | undefined, ...ports: ServicePort[]): ClusterState {
  const state = stateOf(...ports);
  state.nodes = [node(THIS_NODE, zone), node('other-node', 'zone-x')];
  return state;
}

function rulesOf(rs: IptablesRuleSet, name: string): string[] | undefined {
  return rs.tables.find((t) => t.name === 'nat')?.chains.find((c) => c.name === name)?.rules;
}

/** The "ip:port"s a service chain sends to, in rule order. */
function targets(rs: IptablesRuleSet, chain: string): string[] | undefined {
  const rules = rulesOf(rs, chain);
  return rules?.filter((r) => r.includes('-j KUBE-SEP-')).map((r) => /-> (\S+)"/.exec(r)?.[1] ?? '?');
}

/** Every endpoint with a KUBE-SEP chain (kube-proxy's allReachableEndpoints). */
function reachable(rs: IptablesRuleSet): string[] {
  const nat = rs.tables.find((t) => t.name === 'nat')?.chains ?? [];
  return nat
    .filter((c) => c.name.startsWith('KUBE-SEP-'))
    .map((c) => /--to-destination (\S+)/.exec(c.rules.join('\n'))?.[1] ?? '?')
    .sort();
}

const render = (state: ClusterState, extra: Partial<IptablesRenderOptions> = {}) =>
  renderIptables(state, options(extra));

/** The four endpoints kube-proxy's cases use: .3 and .6 for zone-a, .4 for zone-b, .5 for zone-c. */
const fourZoned = (extra: (host: number) => Partial<Endpoint> = () => ({})): Endpoint[] => [
  hinted(3, ['zone-a'], extra(3)),
  hinted(4, ['zone-b'], extra(4)),
  hinted(5, ['zone-c'], extra(5)),
  hinted(6, ['zone-a'], extra(6)),
];

describe('zone hints (PreferSameZone)', () => {
  it('keeps only the endpoints hinted for this node’s zone', () => {
    const rs = render(stateIn('zone-a', service(fourZoned())));
    expect(targets(rs, SVC)).toEqual(['10.1.2.3:80', '10.1.2.6:80']);
    // The others are not reachable from this node at all: no SEP chains for them.
    expect(reachable(rs)).toEqual(['10.1.2.3:80', '10.1.2.6:80']);
    expect(rulesOf(rs, SVC)?.find((r) => r.includes('--probability'))).toContain('0.5000000000');
  });

  it('an endpoint hinted for several zones serves each of them', () => {
    const eps = [
      hinted(3, ['zone-a', 'zone-b', 'zone-c']),
      hinted(4, ['zone-b', 'zone-c']),
      hinted(5, ['zone-b', 'zone-d']),
      hinted(6, ['zone-c']),
    ];
    expect(targets(render(stateIn('zone-c', service(eps))), SVC)).toEqual([
      '10.1.2.3:80',
      '10.1.2.4:80',
      '10.1.2.6:80',
    ]);
  });

  it('hints only for other zones: no filtering', () => {
    const rs = render(stateIn('zone-q', service(fourZoned())));
    expect(targets(rs, SVC)).toEqual(['10.1.2.3:80', '10.1.2.4:80', '10.1.2.5:80', '10.1.2.6:80']);
  });

  it('one ready endpoint without hints: no filtering (hints are all or nothing)', () => {
    const eps = [hinted(3, ['zone-a']), hinted(4, ['zone-b']), hinted(5, undefined), hinted(6, ['zone-a'])];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual([
      '10.1.2.3:80',
      '10.1.2.4:80',
      '10.1.2.5:80',
      '10.1.2.6:80',
    ]);
  });

  it('this node’s zone unknown: no filtering', () => {
    const all = ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.5:80', '10.1.2.6:80'];
    const sp = service(fourZoned());
    // A Node without the zone label.
    expect(targets(render(stateIn(undefined, sp)), SVC)).toEqual(all);
    // No Node object for this node.
    expect(targets(render(stateOf(sp)), SVC)).toEqual(all);
    // No node name configured (the zone-a Node is someone else's).
    expect(targets(render(stateIn('zone-a', sp), { nodeName: '' }), SVC)).toEqual(all);
  });

  it('the mode is chosen from ready endpoints only; unready ones are never used', () => {
    // An unready zone-a endpoint drops out; the ready one remains the only zone-a choice.
    const unreadySix = fourZoned((h) => (h === 6 ? { ready: false } : {}));
    expect(targets(render(stateIn('zone-a', service(unreadySix))), SVC)).toEqual(['10.1.2.3:80']);
    // Only unready endpoints for zone-a: no ready endpoint is hinted for it, so no filtering.
    const unreadyA = fourZoned((h) => (h === 3 || h === 6 ? { ready: false } : {}));
    expect(targets(render(stateIn('zone-a', service(unreadyA))), SVC)).toEqual([
      '10.1.2.4:80',
      '10.1.2.5:80',
    ]);
    // A not-ready endpoint without hints does not disable topology.
    const withBare = [...fourZoned(), hinted(7, undefined, { ready: false, serving: false })];
    expect(targets(render(stateIn('zone-a', service(withBare))), SVC)).toEqual([
      '10.1.2.3:80',
      '10.1.2.6:80',
    ]);
  });

  it('applies to each family on its own', () => {
    const v6 = (host: number, zones: string[]) => ep(`fd00::${host}`, 80, { zoneHints: zones });
    const sp = service([...fourZoned(), v6(3, ['zone-b']), v6(4, ['zone-a'])], {
      clusterIPs: ['172.30.0.41', 'fd00:30::41'],
      ipFamilies: ['IPv4', 'IPv6'],
    });
    const rs = render(stateIn('zone-a', sp), { family: 'IPv6', nodeIPs: ['fd00:99::2'], clusterCIDRs: [] });
    expect(targets(rs, SVC)).toEqual(['[fd00::4]:80']);
  });
});

describe('topology and traffic policies', () => {
  it('externalTrafficPolicy Local: local endpoints are not filtered, cluster ones are; SEPs for the union', () => {
    const local = { nodeName: THIS_NODE };
    const eps = [
      hinted(0, ['zone-a'], local),
      hinted(1, ['zone-b'], local),
      hinted(2, ['zone-a']),
      hinted(3, ['zone-b']),
    ];
    const sp = service(eps, { type: 'NodePort', nodePort: 30080, externalTrafficPolicy: 'Local' });
    const rs = render(stateIn('zone-a', sp));
    expect(targets(rs, SVC)).toEqual(['10.1.2.0:80', '10.1.2.2:80']);
    expect(targets(rs, SVL)).toEqual(['10.1.2.0:80', '10.1.2.1:80']);
    expect(reachable(rs)).toEqual(['10.1.2.0:80', '10.1.2.1:80', '10.1.2.2:80']);
  });

  it('internalTrafficPolicy Local on a NodePort: cluster endpoints (external traffic) still follow hints', () => {
    const local = { nodeName: THIS_NODE };
    const eps = [
      hinted(3, ['zone-a'], local),
      hinted(4, ['zone-b'], local),
      hinted(5, ['zone-c']),
      hinted(6, ['zone-a']),
    ];
    const sp = service(eps, { type: 'NodePort', nodePort: 30080, internalTrafficPolicy: 'Local' });
    const rs = render(stateIn('zone-a', sp));
    expect(targets(rs, SVC)).toEqual(['10.1.2.3:80', '10.1.2.6:80']);
    expect(targets(rs, SVL)).toEqual(['10.1.2.3:80', '10.1.2.4:80']);
    expect(reachable(rs)).toEqual(['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80']);
  });

  it('internalTrafficPolicy Local on a ClusterIP: no cluster endpoints, so hints play no part', () => {
    const eps = [hinted(3, ['zone-b'], { nodeName: THIS_NODE }), hinted(4, ['zone-a'])];
    const rs = render(stateIn('zone-a', service(eps, { internalTrafficPolicy: 'Local' })));
    expect(targets(rs, SVC)).toBeUndefined();
    expect(targets(rs, SVL)).toEqual(['10.1.2.3:80']);
  });
});

describe('terminating endpoints and topology', () => {
  it('no ready endpoint: serving+terminating ones are used whatever their hints', () => {
    const terminating = { ready: false, serving: true, terminating: true };
    const eps = [hinted(3, ['zone-a'], terminating), hinted(4, ['zone-b'], terminating)];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual(['10.1.2.3:80', '10.1.2.4:80']);
  });

  it('ready endpoints for other zones only and a terminating one in ours: the ready ones, unfiltered', () => {
    const eps = [
      hinted(3, ['zone-a'], { ready: false, serving: true, terminating: true }),
      hinted(4, ['zone-b']),
      hinted(5, ['zone-c']),
    ];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual(['10.1.2.4:80', '10.1.2.5:80']);
  });

  it('eTP Local falling back to a local terminating endpoint keeps the topology-filtered cluster set', () => {
    const eps = [
      hinted(1, ['zone-a'], { nodeName: THIS_NODE, ready: false, serving: true, terminating: true }),
      hinted(2, ['zone-a']),
      hinted(3, ['zone-b']),
    ];
    const sp = service(eps, { type: 'NodePort', nodePort: 30080, externalTrafficPolicy: 'Local' });
    const rs = render(stateIn('zone-a', sp));
    expect(targets(rs, SVC)).toEqual(['10.1.2.2:80']);
    expect(targets(rs, SVL)).toEqual(['10.1.2.1:80']);
    expect(reachable(rs)).toEqual(['10.1.2.1:80', '10.1.2.2:80']);
  });
});

describe('node hints (PreferSameNode)', () => {
  it('every ready endpoint has node hints and one is for this node: only those', () => {
    const eps = [
      hinted(3, ['zone-a'], { nodeHints: [THIS_NODE] }),
      hinted(4, ['zone-a'], { nodeHints: ['other-node'] }),
      hinted(5, ['zone-b'], { nodeHints: ['third-node'] }),
    ];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual(['10.1.2.3:80']);
  });

  it('node hints for other nodes only: the zone hints decide', () => {
    const eps = [
      hinted(3, ['zone-a'], { nodeHints: ['other-node'] }),
      hinted(4, ['zone-a'], { nodeHints: ['other-node'] }),
      hinted(5, ['zone-b'], { nodeHints: ['third-node'] }),
    ];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual(['10.1.2.3:80', '10.1.2.4:80']);
  });

  it('some ready endpoints without node hints: the zone hints decide', () => {
    const eps = [
      hinted(3, ['zone-a'], { nodeHints: [THIS_NODE] }),
      hinted(4, ['zone-a']),
      hinted(5, ['zone-b']),
    ];
    expect(targets(render(stateIn('zone-a', service(eps))), SVC)).toEqual(['10.1.2.3:80', '10.1.2.4:80']);
  });
});

describe('re-rendering on hint and zone changes', () => {
  const api = (object: unknown) => ({ source: 'api', object });
  const nodeObject = (zone: string) =>
    api({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: THIS_NODE, labels: { 'topology.kubernetes.io/zone': zone } },
    });
  const sliceObject = (zonesOf5: string) =>
    api({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'svc1-1', namespace: 'ns1', labels: { 'kubernetes.io/service-name': 'svc1' } },
      addressType: 'IPv4',
      ports: [{ name: 'p80', port: 80 }],
      endpoints: [
        { addresses: ['10.1.2.3'], hints: { forZones: [{ name: 'zone-a' }] } },
        { addresses: ['10.1.2.4'], hints: { forZones: [{ name: 'zone-b' }] } },
        { addresses: ['10.1.2.5'], hints: { forZones: [{ name: zonesOf5 }] } },
      ],
    });
  const serviceObject = api({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'svc1', namespace: 'ns1' },
    spec: { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }] },
  });
  const otherService = api({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'svc2', namespace: 'ns1' },
    spec: { clusterIP: '172.30.0.42', ports: [{ name: 'p80', port: 80 }] },
  });

  it('a hint change re-renders that service; a zone change re-renders every service; both equal a fresh render', () => {
    const builder = new ClusterStateBuilder();
    for (const o of [serviceObject, otherService, sliceObject('zone-c'), nodeObject('zone-a')])
      builder.upsert(o);
    const cache = new IptablesRenderCache();
    const renderCached = () => {
      const { state } = builder.build();
      const rs = renderIptables(state, options(), cache);
      expect(serializeRuleSet(rs)).toBe(serializeRuleSet(renderIptables(structuredClone(state), options())));
      return rs;
    };

    expect(targets(renderCached(), SVC)).toEqual(['10.1.2.3:80']);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);

    // The EndpointSlice controller moves .5 to zone-a: only svc1 is rendered again.
    builder.upsert(sliceObject('zone-a'));
    expect(targets(renderCached(), SVC)).toEqual(['10.1.2.3:80', '10.1.2.5:80']);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);

    // This node's Node is relabelled into zone-b: the zone decides for every service.
    builder.upsert(nodeObject('zone-b'));
    expect(targets(renderCached(), SVC)).toEqual(['10.1.2.4:80']);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);

    // Nothing changed: everything from the cache.
    renderCached();
    expect([cache.hits, cache.misses]).toEqual([2, 0]);
  });
});
