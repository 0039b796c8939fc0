// Properties of buildClusterState over random mixes of valid, invalid and duplicate objects.
import fc from 'fast-check';
import { buildClusterState } from '../../../src/model/normalise.js';
import type { SourcedObject } from '../../../src/model/load.js';
import { compareIPs } from '../../../src/model/ip.js';
import { endpointSliceObject, legacyEndpointsObject, sliceEndpoint } from './raw-object-arbitraries.js';

const ns = fc.constantFrom('x', 'y');
const name = fc.constantFrom('a', 'b', 'c');
const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc
  .tuple(octet, octet, fc.boolean())
  .map(([c, d, zeroPad]) => (zeroPad ? `10.244.${String(c).padStart(3, '0')}.${d}` : `10.244.${c}.${d}`));
const ipv6 = fc.integer({ min: 0, max: 0xffff }).map((n) => `fd00::${n.toString(16)}`);
const portName = fc.constantFrom('', 'http', 'dns');
const protocol = fc.constantFrom('TCP', 'UDP', undefined);
// Mostly valid ports, sometimes out of range so that problems are part of what must be order-independent.
const port = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 1, max: 65535 }) },
  { weight: 1, arbitrary: fc.constant(70000) },
);

const service = fc
  .record({
    ns,
    name,
    ip: ipv4,
    ports: fc.uniqueArray(portName, { minLength: 1, maxLength: 2 }),
    protocol,
    port,
  })
  .map((s) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.ns },
    spec: {
      clusterIP: s.ip.replace('10.244', '10.96'),
      ports: s.ports.map((p, i) => ({
        name: s.ports.length > 1 && p === '' ? 'other' : p,
        port: s.port + i > 65535 ? 1 : s.port + i,
        protocol: s.protocol,
      })),
    },
  }));

const endpoint = sliceEndpoint(ipv4);

const slice = fc
  .record({
    ns,
    svc: name,
    sliceName: fc.constantFrom('s1', 's2', 's3'),
    v6: fc.boolean(),
    v6ip: ipv6,
    endpoints: fc.array(endpoint, { maxLength: 4 }),
    portName,
    protocol,
    port,
  })
  .map(endpointSliceObject);

const legacyEndpoints = legacyEndpointsObject(ns, name, ipv4, portName);

const node = fc
  .record({ name: fc.constantFrom('n1', 'n2', 'n3'), ip: ipv4, ready: fc.boolean() })
  .map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name },
    status: {
      addresses: [{ type: 'InternalIP', address: n.ip }],
      conditions: [{ type: 'Ready', status: n.ready ? 'True' : 'False' }],
    },
  }));

const pool = fc
  .record({ name: fc.constantFrom('p1', 'p2', 'p3'), start: octet, len: fc.integer({ min: -2, max: 40 }) })
  .map((p) => ({
    apiVersion: 'portway.io/v1alpha1',
    kind: 'IPAddressPool',
    metadata: { name: p.name },
    spec: { addresses: [`192.0.2.${p.start}-192.0.2.${Math.min(255, Math.max(0, p.start + p.len))}`] },
  }));

const junk = fc.constantFrom<unknown>(
  'text',
  { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' } },
  { metadata: {} },
);

const rawObject = fc.oneof(service, service, slice, slice, slice, legacyEndpoints, node, pool, junk);

/** Objects with distinct (source, document), and a permutation of them. */
const objectsAndPermutation = fc
  .array(fc.tuple(rawObject, fc.constantFrom('a.yaml', 'b.yaml', 'dir/c.yaml')), { maxLength: 25 })
  .map((list) => list.map(([object, source], i): SourcedObject => ({ source, document: i + 1, object })))
  .chain((objects) =>
    fc.tuple(
      fc.constant(objects),
      fc.shuffledSubarray(objects, { minLength: objects.length, maxLength: objects.length }),
    ),
  );

describe('buildClusterState properties', () => {
  it('is deterministic and independent of the order of the input objects (problems included)', () => {
    fc.assert(
      fc.property(objectsAndPermutation, ([objects, permuted]) => {
        const before = JSON.stringify(objects);
        const a = buildClusterState(objects);
        const again = buildClusterState(objects);
        const b = buildClusterState(permuted);
        expect(JSON.stringify(objects)).toBe(before); // input not mutated
        expect(again).toEqual(a);
        expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      }),
      { numRuns: 300 },
    );
  });

  it('always yields sorted service ports with sorted, unique endpoints', () => {
    fc.assert(
      fc.property(objectsAndPermutation, ([objects]) => {
        const { state } = buildClusterState(objects);
        const keys = state.servicePorts.map((p) => `${p.id}\u0000${p.protocol}`);
        expect(new Set(keys).size).toBe(keys.length);
        expect([...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(keys);
        for (const sp of state.servicePorts) {
          for (let i = 1; i < sp.endpoints.length; i++) {
            const prev = sp.endpoints[i - 1]!;
            const cur = sp.endpoints[i]!;
            expect(compareIPs(prev.ip, cur.ip) || prev.port - cur.port).toBeLessThan(0);
          }
          for (const ep of sp.endpoints) expect(ep.ip).not.toMatch(/(^|\.)0\d/); // canonical: no leading zeros
        }
      }),
      { numRuns: 200 },
    );
  });
});
