// ClusterStateBuilder against the reference: after any sequence of upserts and removes, build()
// equals buildClusterState over the stored objects (in the builder's order), problems included.
import fc from 'fast-check';
import {
  ClusterStateBuilder,
  compareSourcedObjects,
  sourcedObjectKey,
} from '../../../src/model/incremental.js';
import type { SourcedObject } from '../../../src/model/load.js';
import { buildClusterState } from '../../../src/model/normalise.js';
import { endpointSliceObject, legacyEndpointsObject, sliceEndpoint } from './raw-object-arbitraries.js';

// A small universe, so that objects often meet: a Service and its slices, two slices with the same
// endpoint, a namespace written as "default" and left out (duplicates).
const ns = fc.constantFrom('x', 'x', 'default', undefined);
// ':' in a name can make two Services' port ids collide ("x:a" unnamed vs "x" port "a").
const name = fc.constantFrom('x', 'x', 'x:a', 'b');
const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc
  .tuple(fc.integer({ min: 0, max: 5 }), fc.boolean())
  .map(([d, zeroPad]) => (zeroPad ? `10.244.0.${String(d).padStart(3, '0')}` : `10.244.0.${d}`));
const ipv6 = fc.integer({ min: 0, max: 0xffff }).map((n) => `fd00::${n.toString(16)}`);
const portName = fc.constantFrom('', 'a', 'a', 'http');
const protocol = fc.constantFrom(undefined, undefined, 'TCP', 'UDP');
const port = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 1, arbitrary: fc.constant(70000) },
);
const labels = fc.option(fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('web', 'db')), {
  nil: undefined,
});

const service = fc
  .record({
    ns,
    name,
    ip: fc.oneof({ weight: 6, arbitrary: ipv4 }, { weight: 1, arbitrary: fc.constantFrom('None', 'bogus') }),
    type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', undefined),
    ports: fc.oneof(
      fc.constant(['']),
      fc.constant(['a']),
      fc.uniqueArray(portName, { minLength: 1, maxLength: 2 }),
    ),
    protocol,
    port,
    labels,
    version: fc.constantFrom('v1', 'v1', 'v1', 'v1', 'v1', 'v2', 'serving.knative.dev/v1'),
    generation: fc.nat(3),
  })
  .map((s) => ({
    apiVersion: s.version,
    kind: 'Service',
    metadata: { name: s.name, namespace: s.ns, labels: s.labels, resourceVersion: String(s.generation) },
    spec: {
      type: s.type,
      clusterIP: s.ip.replace('10.244', '10.96'),
      ports: s.ports.map((p, i) => ({
        name: s.ports.length > 1 && p === '' ? 'other' : p,
        port: s.port + i > 65535 ? 1 : s.port + i,
        protocol: s.protocol,
        nodePort: s.type === 'NodePort' ? 30000 + i : undefined,
      })),
    },
    status: s.type === 'LoadBalancer' ? { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } : undefined,
  }));

const endpoint = sliceEndpoint(ipv4);

const slice = fc
  .record({
    ns,
    svc: fc.option(name, { nil: undefined, freq: 10 }),
    sliceName: fc.constantFrom('s1', 's2', 's3'),
    v6: fc.boolean(),
    v6ip: ipv6,
    endpoints: fc.array(endpoint, { minLength: 1, maxLength: 4 }),
    portName,
    protocol,
    port,
    headless: fc.constantFrom(false, false, false, false, true),
  })
  .map(endpointSliceObject);

const legacyEndpoints = legacyEndpointsObject(ns, name, ipv4, portName);

const node = fc
  .record({
    name: fc.constantFrom('n1', 'n2'),
    ns: fc.constantFrom(undefined, 'odd'),
    ip: fc.oneof(ipv4, fc.constant('300.1.1.1')),
    ready: fc.boolean(),
    networkUnavailable: fc.constantFrom(undefined, 'True', 'False', 'Unknown'),
  })
  .map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, namespace: n.ns },
    status: {
      addresses: [{ type: 'InternalIP', address: n.ip }],
      conditions: [
        { type: 'Ready', status: n.ready ? 'True' : 'False' },
        ...(n.networkUnavailable === undefined
          ? []
          : [{ type: 'NetworkUnavailable', status: n.networkUnavailable }]),
      ],
    },
  }));

const namespace = fc.record({ name: fc.constantFrom('x', 'y'), labels }).map((n) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: n.name, labels: n.labels },
}));

const ingress = fc.record({ ns, name, svc: name }).map((i) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name: i.name, namespace: i.ns },
  spec: { defaultBackend: { service: { name: i.svc, port: { number: 80 } } } },
}));

// Pools are unique by name across namespaces: two namespaces' p1 are duplicates.
const pool = fc
  .record({
    name: fc.constantFrom('p1', 'p2', 'p3'),
    ns: fc.constantFrom(undefined, 'metallb'),
    start: octet,
    len: fc.integer({ min: -2, max: 40 }),
  })
  .map((p) => ({
    apiVersion: 'portway.io/v1alpha1',
    kind: 'IPAddressPool',
    metadata: { name: p.name, namespace: p.ns },
    spec: { addresses: [`192.0.2.${p.start}-192.0.2.${Math.min(255, Math.max(0, p.start + p.len))}`] },
  }));

const l2 = fc.record({ name: fc.constantFrom('l1', 'l2'), pools: fc.subarray(['p1', 'p2']) }).map((a) => ({
  apiVersion: 'portway.io/v1alpha1',
  kind: 'L2Advertisement',
  metadata: { name: a.name },
  spec: { ipAddressPools: a.pools },
}));

const junk = fc.constantFrom<unknown>(
  'text',
  { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' } },
  { metadata: {} },
  { kind: 'Service', apiVersion: 'v1', metadata: {} },
);

const rawObject = fc.oneof(
  { weight: 4, arbitrary: service },
  { weight: 4, arbitrary: slice },
  { weight: 2, arbitrary: legacyEndpoints },
  { weight: 1, arbitrary: node },
  { weight: 1, arbitrary: namespace },
  { weight: 1, arbitrary: ingress },
  { weight: 1, arbitrary: pool },
  { weight: 1, arbitrary: l2 },
  { weight: 1, arbitrary: junk },
);

// Mostly one source as in cluster mode; sometimes files, whose (source, document) order decides duplicates.
const sourced = fc
  .tuple(rawObject, fc.constantFrom('api', 'api', 'api', 'a.yaml', 'b.yaml'), fc.integer({ min: 1, max: 5 }))
  .map(([object, source, document]): SourcedObject =>
    source === 'api' ? { source, object } : { source, object, document },
  );

type Step = { op: 'upsert'; object: SourcedObject } | { op: 'remove'; pick: number } | { op: 'build' };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: sourced.map((object) => ({ op: 'upsert' as const, object })) },
  { weight: 3, arbitrary: fc.nat().map((pick) => ({ op: 'remove' as const, pick })) },
  { weight: 2, arbitrary: fc.constant({ op: 'build' as const }) },
);

function storeParts(object: unknown): [string, string, string] {
  const o = (typeof object === 'object' && object !== null ? object : {}) as {
    kind?: unknown;
    metadata?: { namespace?: unknown; name?: unknown };
  };
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return [str(o.kind), str(o.metadata?.namespace), str(o.metadata?.name)];
}

function reference(model: Map<string, SourcedObject>) {
  return buildClusterState([...model.values()].sort(compareSourcedObjects));
}

describe('ClusterStateBuilder', () => {
  // 0: every build re-sorts whole lists; Infinity: every change is spliced into copies.
  it.each([
    ['splicing changes in', Infinity],
    ['re-sorting', 0],
    ['either', 3],
  ])(
    'equals buildClusterState after any sequence of upserts and removes, problems included (%s)',
    (_, bulkThreshold) => {
      fc.assert(
        fc.property(
          fc.array(sourced, { minLength: 5, maxLength: 30 }),
          fc.array(step, { maxLength: 40 }),
          (initial, steps) => {
            const builder = new ClusterStateBuilder({ bulkThreshold });
            const model = new Map<string, SourcedObject>();
            const upserts = initial.map((object): Step => ({ op: 'upsert', object }));
            for (const s of [...upserts, { op: 'build' as const }, ...steps, { op: 'build' as const }]) {
              if (s.op === 'upsert') {
                builder.upsert(s.object);
                model.set(sourcedObjectKey(s.object.object), s.object);
              } else if (s.op === 'remove') {
                const keys = [...model.keys()];
                if (keys.length === 0) continue;
                const key = keys[s.pick % keys.length]!;
                const [kind, namespace, objectName] = storeParts(model.get(key)!.object);
                expect(builder.remove(kind, namespace, objectName)).toBe(true);
                model.delete(key);
              } else {
                const got = builder.build();
                const want = reference(model);
                expect(got).toEqual(want);
                // Key order and undefined-valued keys too: what a renderer or the CLI would print.
                expect(JSON.stringify(got)).toBe(JSON.stringify(want));
              }
            }
            expect(builder.size).toBe(model.size);
          },
        ),
        { numRuns: 400 },
      );
    },
  );

  it('keeps unchanged ServicePort and ServiceInfo objects by identity, and never mutates a returned state', () => {
    fc.assert(
      fc.property(fc.array(sourced, { maxLength: 25 }), sourced, (initial, change) => {
        const builder = new ClusterStateBuilder();
        for (const o of initial) builder.upsert(o);
        const first = builder.build();
        const frozen = JSON.stringify(first);
        builder.upsert(change);
        const second = builder.build();
        expect(JSON.stringify(first)).toBe(frozen);
        // Every service port that is structurally unchanged and not of the changed object's Service
        // is the very same object.
        const before = new Map(first.state.servicePorts.map((p) => [`${p.id}/${p.protocol}`, p]));
        for (const p of second.state.servicePorts) {
          const old = before.get(`${p.id}/${p.protocol}`);
          if (old && JSON.stringify(old) === JSON.stringify(p)) expect(p).toBe(old);
        }
        const infos = new Map(first.state.services.map((s) => [`${s.namespace}/${s.name}`, s]));
        for (const s of second.state.services) {
          const old = infos.get(`${s.namespace}/${s.name}`);
          if (old && JSON.stringify(old) === JSON.stringify(s)) expect(s).toBe(old);
        }
      }),
      { numRuns: 200 },
    );
  });
});
