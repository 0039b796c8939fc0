// ClusterStateBuilder with keepLastGood (both agent sources): an object updated into an invalid version
// keeps its last good version in effect, reported with kept: true (issue 9: a Service edited to `port: 0`
// lost its rules where a syntax error in its file kept them).
import { describe, expect, it } from '@jest/globals';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import type { SourcedObject } from '../../../src/model/load.js';

const api = (object: unknown): SourcedObject => ({ source: 'api', object });

const service = (port: unknown, extra: Record<string, unknown> = {}) =>
  api({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'ns', ...extra },
    spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port }] },
  });

const slice = (ip: string) =>
  api({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
  });

const node = (address: string) =>
  api({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-a' },
    status: { addresses: [{ type: 'InternalIP', address }] },
  });

describe('ClusterStateBuilder keepLastGood', () => {
  it('a Service updated to port 0 keeps its last good version; the problem names the field and says kept', () => {
    const b = new ClusterStateBuilder({ keepLastGood: true });
    b.upsert(service(80));
    b.upsert(slice('10.244.1.5'));
    const good = b.build();
    expect(good.state.servicePorts.map((p) => p.port)).toEqual([80]);

    b.upsert(service(0));
    const kept = b.build();
    expect(kept.state.servicePorts.map((p) => [p.port, p.endpoints.map((e) => e.ip)])).toEqual([
      [80, ['10.244.1.5']],
    ]);
    expect(kept.problems).toEqual([
      expect.objectContaining({ kind: 'Service', object: 'ns/web', field: 'spec.ports[0].port', kept: true }),
    ]);
    // Unchanged in substance: the same port object (the renderer skips it).
    expect(kept.state.servicePorts[0]).toBe(good.state.servicePorts[0]);

    // Two invalid updates in a row still fall back to the last good one, not to nothing.
    b.upsert(service(-1, { labels: { again: 'yes' } }));
    expect(b.build().state.servicePorts.map((p) => p.port)).toEqual([80]);
    // Endpoint changes of the kept Service still apply.
    b.upsert(slice('10.244.1.6'));
    expect(b.build().state.servicePorts[0]?.endpoints.map((e) => e.ip)).toEqual(['10.244.1.6']);

    // Fixed: the new version, no problem. Deleted: gone.
    b.upsert(service(8080));
    const fixed = b.build();
    expect(fixed.state.servicePorts.map((p) => p.port)).toEqual([8080]);
    expect(fixed.problems).toEqual([]);
    b.remove('Service', 'ns', 'web');
    expect(b.build().state.servicePorts).toEqual([]);
  });

  it('a failure after the schema (duplicate port names, a bad endpoint address, a bad node address) is kept the same way', () => {
    const b = new ClusterStateBuilder({ keepLastGood: true });
    b.upsert(service(80));
    b.upsert(slice('10.244.1.5'));
    b.upsert(node('192.168.50.2'));
    b.build();
    b.upsert(
      api({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'ns' },
        spec: {
          clusterIP: '10.96.0.10',
          ports: [
            { name: 'http', port: 1 },
            { name: 'http', port: 2 },
          ],
        },
      }),
    );
    b.upsert(slice('not-an-ip'));
    b.upsert(node('999.1.1.1'));
    const kept = b.build();
    expect(kept.state.servicePorts.map((p) => [p.port, p.endpoints.map((e) => e.ip)])).toEqual([
      [80, ['10.244.1.5']],
    ]);
    expect(kept.state.nodes.map((n) => n.addresses)).toEqual([['192.168.50.2']]);
    expect(kept.problems.map((p) => [p.kind, p.field, p.kept])).toEqual([
      ['Service', 'spec.ports[1].name', true],
      ['EndpointSlice', 'endpoints[0].addresses[0]', true],
      ['Node', 'status.addresses[0].address', true],
    ]);
  });

  it('an object invalid from its first version is skipped (nothing to keep); without the option an update is skipped too', () => {
    const keeping = new ClusterStateBuilder({ keepLastGood: true });
    keeping.upsert(service(0));
    const first = keeping.build();
    expect(first.state.servicePorts).toEqual([]);
    expect(first.problems[0]?.kept).toBeUndefined();

    const plain = new ClusterStateBuilder();
    plain.upsert(service(80));
    plain.build();
    plain.upsert(service(0));
    const skipped = plain.build();
    expect(skipped.state.servicePorts).toEqual([]);
    expect(skipped.problems[0]?.kept).toBeUndefined();
  });
});
