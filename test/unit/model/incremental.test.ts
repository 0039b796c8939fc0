// ClusterStateBuilder on concrete cases: the joins it must redo, the objects it must keep.
import {
  ClusterStateBuilder,
  compareSourcedObjects,
  sourcedObjectKey,
} from '../../../src/model/incremental.js';
import type { SourcedObject } from '../../../src/model/load.js';
import { buildClusterState } from '../../../src/model/normalise.js';
import { decideOwner, rankNodes, type AnnouncedAddress } from '../../../src/l2/election.js';

const api = (object: unknown): SourcedObject => ({ source: 'api', object });

function service(name: string, ip: string, extra: Record<string, unknown> = {}) {
  return api({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'ns' },
    spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }], ...extra },
  });
}

function slice(
  name: string,
  svc: string,
  endpoints: Array<{ ip: string; ready?: boolean; node?: string; forZones?: string[] }>,
) {
  return api({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'ns', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true },
      ...(e.node ? { nodeName: e.node } : {}),
      ...(e.forZones ? { hints: { forZones: e.forZones.map((zone) => ({ name: zone })) } } : {}),
    })),
  });
}

function legacy(name: string, ips: string[]) {
  return api({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'ns' },
    subsets: [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'http', port: 9000 }] }],
  });
}

function builderOf(objects: SourcedObject[]): ClusterStateBuilder {
  const b = new ClusterStateBuilder();
  for (const o of objects) b.upsert(o);
  return b;
}

/** The builder's result must equal the reference over what it holds. */
function checked(b: ClusterStateBuilder) {
  const got = b.build();
  expect(got).toEqual(buildClusterState(b.objects()));
  return got;
}

describe('ClusterStateBuilder joins', () => {
  it('recomputes a Service when one of its slices changes, and nothing else', () => {
    const b = builderOf([
      service('a', '10.96.0.1'),
      service('b', '10.96.0.2'),
      slice('a-1', 'a', [{ ip: '10.0.0.1' }]),
      slice('b-1', 'b', [{ ip: '10.0.1.1' }]),
    ]);
    const first = checked(b);
    const [a1, b1] = first.state.servicePorts;
    b.upsert(slice('a-1', 'a', [{ ip: '10.0.0.1', ready: false }]));
    const second = checked(b);
    expect(second.state.servicePorts[0]).not.toBe(a1);
    expect(second.state.servicePorts[0]?.endpoints[0]?.ready).toBe(false);
    expect(second.state.servicePorts[1]).toBe(b1);
    // Lists without changes are the same arrays; a changed one is a new array.
    expect(second.state.services).toBe(first.state.services);
    expect(second.state.nodes).toBe(first.state.nodes);
    expect(second.state.servicePorts).not.toBe(first.state.servicePorts);
    expect(first.state.servicePorts[0]).toBe(a1); // the earlier state is untouched
  });

  it('sees a topology hint change (a new ServicePort) and a Node zone change (a new node list)', () => {
    const node = (zone: string) =>
      api({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': zone } },
      });
    const b = builderOf([
      service('a', '10.96.0.1'),
      slice('a-1', 'a', [{ ip: '10.0.0.1', forZones: ['z1'] }]),
      node('z1'),
    ]);
    const first = checked(b);
    b.upsert(slice('a-1', 'a', [{ ip: '10.0.0.1', forZones: ['z2'] }]));
    const second = checked(b);
    expect(second.state.servicePorts[0]).not.toBe(first.state.servicePorts[0]);
    expect(second.state.servicePorts[0]?.endpoints[0]?.zoneHints).toEqual(['z2']);
    expect(second.state.nodes).toBe(first.state.nodes);
    b.upsert(node('z2'));
    const third = checked(b);
    expect(third.state.servicePorts[0]).toBe(second.state.servicePorts[0]);
    expect(third.state.nodes.map((n) => n.zone)).toEqual(['z2']);
  });

  it('keeps a Service whose object changed but whose reading did not (a new resourceVersion)', () => {
    const b = builderOf([service('a', '10.96.0.1'), slice('a-1', 'a', [{ ip: '10.0.0.1' }])]);
    const first = checked(b);
    const touched = service('a', '10.96.0.1');
    (touched.object as { metadata: Record<string, unknown> }).metadata.resourceVersion = '2';
    b.upsert(touched);
    const second = checked(b);
    expect(second.state.servicePorts[0]).toBe(first.state.servicePorts[0]);
    expect(second.state.services[0]).toBe(first.state.services[0]);
  });

  it('returns the same result when nothing changed, and ignores an upsert of the same object', () => {
    const objects = [service('a', '10.96.0.1')];
    const b = builderOf(objects);
    const first = b.build();
    b.upsert(objects[0]!);
    expect(b.build()).toBe(first);
  });

  it('moves a slice between Services when its service-name label changes', () => {
    const b = builderOf([
      service('a', '10.96.0.1'),
      service('b', '10.96.0.2'),
      slice('s', 'a', [{ ip: '10.0.0.1' }]),
    ]);
    expect(checked(b).state.servicePorts.map((p) => p.endpoints.length)).toEqual([1, 0]);
    b.upsert(slice('s', 'b', [{ ip: '10.0.0.1' }]));
    expect(checked(b).state.servicePorts.map((p) => p.endpoints.length)).toEqual([0, 1]);
  });

  it('merges slices in name order whatever order they arrive in (the first slice by name wins a shared endpoint)', () => {
    const b = builderOf([
      service('a', '10.96.0.1'),
      slice('a-2', 'a', [{ ip: '10.0.0.1', node: 'from-a-2' }]),
      slice('a-1', 'a', [{ ip: '10.0.0.1', node: 'from-a-1' }]),
    ]);
    expect(checked(b).state.servicePorts[0]?.endpoints.map((e) => e.nodeName)).toEqual(['from-a-1']);
    // Re-adding a-1 puts it last in any insertion-ordered structure: it must still win.
    b.upsert(slice('a-1', 'a', [{ ip: '10.0.0.1', node: 'from-a-1-again' }]));
    expect(checked(b).state.servicePorts[0]?.endpoints.map((e) => e.nodeName)).toEqual(['from-a-1-again']);
  });

  it('uses v1 Endpoints only while the Service has no slice, and forgets them when deleted', () => {
    const b = builderOf([service('a', '10.96.0.1'), legacy('a', ['10.0.0.9'])]);
    expect(checked(b).state.servicePorts[0]?.endpoints.map((e) => e.ip)).toEqual(['10.0.0.9']);
    b.upsert(slice('a-1', 'a', [{ ip: '10.0.0.1' }]));
    expect(checked(b).state.servicePorts[0]?.endpoints.map((e) => e.ip)).toEqual(['10.0.0.1']);
    expect(b.remove('EndpointSlice', 'ns', 'a-1')).toBe(true);
    expect(checked(b).state.servicePorts[0]?.endpoints.map((e) => e.ip)).toEqual(['10.0.0.9']);
    expect(b.remove('Endpoints', 'ns', 'a')).toBe(true);
    expect(checked(b).state.servicePorts[0]?.endpoints).toEqual([]);
    expect(b.remove('Endpoints', 'ns', 'a')).toBe(false);
  });

  it('keeps endpoints of a Service that arrives after its slices, and drops the ports of a deleted Service', () => {
    const b = builderOf([slice('a-1', 'a', [{ ip: '10.0.0.1' }])]);
    expect(checked(b).state.servicePorts).toEqual([]);
    b.upsert(service('a', '10.96.0.1'));
    expect(checked(b).state.servicePorts[0]?.endpoints).toHaveLength(1);
    b.remove('Service', 'ns', 'a');
    const state = checked(b).state;
    expect(state.servicePorts).toEqual([]);
    expect(state.services).toEqual([]);
  });

  it('sees a Node update that only flips NetworkUnavailable (a new node list), so layer2 re-elects', () => {
    const ip = '192.168.1.100';
    const [first, second] = rankNodes(ip, ['n1', 'n2']) as [string, string];
    const node = (name: string, networkUnavailable: string | null, resourceVersion: string) =>
      api({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, resourceVersion },
        status: {
          conditions: [
            { type: 'Ready', status: 'True' },
            ...(networkUnavailable === null
              ? []
              : [{ type: 'NetworkUnavailable', status: networkUnavailable }]),
          ],
        },
      });
    const address: AnnouncedAddress = {
      ip,
      pool: 'p',
      services: ['ns/a'],
      externalTrafficPolicy: 'Cluster',
      nodesWithReadyEndpoints: [],
      hasServingEndpoints: true,
    };
    const ownerIn = (nodes: ReturnType<ClusterStateBuilder['build']>['state']['nodes']) =>
      decideOwner('', address, {
        nodes,
        pools: [],
        advertisements: [
          { name: 'l2', ipAddressPools: [], ipAddressPoolSelectors: [], nodeSelectors: [], interfaces: [] },
        ],
        aliveNodes: new Set(['n1', 'n2']),
      }).owner;
    const b = builderOf([service('a', '10.96.0.1'), node(first, 'False', '1'), node(second, null, '1')]);
    const before = checked(b);
    expect(ownerIn(before.state.nodes)).toBe(first);

    b.upsert(node(first, 'True', '2'));
    const flipped = checked(b);
    expect(flipped.state).not.toBe(before.state);
    expect(flipped.state.nodes).not.toBe(before.state.nodes);
    expect(flipped.state.nodes.find((n) => n.name === first)?.networkUnavailable).toBe(true);
    expect(flipped.state.servicePorts).toBe(before.state.servicePorts); // nothing else was recomputed
    expect(ownerIn(flipped.state.nodes)).toBe(second);

    b.upsert(node(first, 'Unknown', '3'));
    const back = checked(b);
    expect(back.state.nodes).not.toBe(flipped.state.nodes);
    expect(back.state.nodes.find((n) => n.name === first)).not.toHaveProperty('networkUnavailable');
    expect(ownerIn(back.state.nodes)).toBe(first);
  });

  it('keeps the service-port list sorted as Services come and go', () => {
    const b = new ClusterStateBuilder({ bulkThreshold: Infinity });
    const names = ['m', 'c', 'x', 'a', 'q', 'b'];
    names.forEach((n, i) => {
      b.upsert(service(n, `10.96.0.${i + 1}`));
      checked(b);
    });
    b.remove('Service', 'ns', 'x');
    expect(checked(b).state.servicePorts.map((p) => p.serviceName)).toEqual(['a', 'b', 'c', 'm', 'q']);
  });
});

describe('ClusterStateBuilder problems', () => {
  it('reports problems in the reference order and withdraws them when the object is fixed or removed', () => {
    const b = builderOf([
      service('z', 'bogus'),
      service('a', '10.96.0.1', { ports: [{ port: 70000 }] }),
      slice('orphan', '', [{ ip: '10.0.0.1' }]),
    ]);
    const problems = checked(b).problems;
    expect(problems.map((p) => `${p.kind} ${p.object} ${p.field}`)).toEqual([
      'Service ns/a spec.ports[0].port', // schema problems first, in object order
      'Service ns/z spec.clusterIP', // then the Services' own checks
      'EndpointSlice ns/orphan metadata.labels["kubernetes.io/service-name"]',
    ]);
    b.upsert(service('z', '10.96.0.26'));
    b.remove('Service', 'ns', 'a');
    expect(checked(b).problems.map((p) => p.object)).toEqual(['ns/orphan']);
  });

  it('resolves duplicates by (source, document) and promotes the next one when the winner goes', () => {
    const b = new ClusterStateBuilder();
    const pool = (ns: string, cidr: string): SourcedObject => ({
      source: 'pools.yaml',
      document: ns === 'b' ? 1 : 2,
      object: {
        apiVersion: 'portway.io/v1alpha1',
        kind: 'IPAddressPool',
        metadata: { name: 'p', namespace: ns },
        spec: { addresses: [cidr] },
      },
    });
    b.upsert(pool('a', '192.0.2.0/28'));
    b.upsert(pool('b', '198.51.100.0/28'));
    const first = checked(b);
    expect(first.state.addressPools[0]?.addresses[0]?.text).toBe('198.51.100.0/28');
    expect(first.problems[0]?.message).toBe(
      'duplicate of the IPAddressPool in pools.yaml document 1; this one is skipped',
    );
    b.remove('IPAddressPool', 'b', 'p');
    const second = checked(b);
    expect(second.state.addressPools[0]?.addresses[0]?.text).toBe('192.0.2.0/28');
    expect(second.problems).toEqual([]);
  });
});

describe('object keys and order', () => {
  it('keys objects by kind, namespace and name as written', () => {
    expect(sourcedObjectKey({ kind: 'Service', metadata: { namespace: 'ns', name: 'a' } })).toBe(
      'Service\0ns\0a',
    );
    expect(sourcedObjectKey('text')).toBe('\0\0');
  });

  it('orders by source, document, kind (Services first), namespace, name', () => {
    const objects: SourcedObject[] = [
      { source: 'b.yaml', document: 1, object: { kind: 'Service', metadata: { name: 'a' } } },
      { source: 'a.yaml', document: 2, object: { kind: 'Service', metadata: { name: 'a' } } },
      { source: 'a.yaml', document: 2, object: { kind: 'Node', metadata: { name: 'a' } } },
      { source: 'a.yaml', document: 2, object: { kind: 'EndpointSlice', metadata: { name: 'a' } } },
      { source: 'a.yaml', document: 1, object: { kind: 'Node', metadata: { name: 'b' } } },
    ];
    const sorted = [...objects].sort(compareSourcedObjects).map((o) => {
      const obj = o.object as { kind: string; metadata: { name: string } };
      return `${o.source}#${o.document} ${obj.kind}`;
    });
    expect(sorted).toEqual([
      'a.yaml#1 Node',
      'a.yaml#2 Service',
      'a.yaml#2 EndpointSlice',
      'a.yaml#2 Node',
      'b.yaml#1 Service',
    ]);
  });
});
