// `spec: null` and `items: null` were silently ignored (issue 9): a Service with an empty `spec:` line
// became a Service with no address and no port, and a List with `items: null` held nothing, both
// without a word. Both are reported now, naming the file, the object (or list) and the field.
import { describe, expect, it } from '@jest/globals';
import { buildClusterState } from '../../../src/model/index.js';
import { parseManifestText } from '../../../src/model/load.js';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';

const service = (spec: string) => `apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:${spec}
`;

describe('null where an object or a list belongs', () => {
  it('spec: null (an empty "spec:") is a problem naming the file, the Service and the field; the Service is skipped', () => {
    for (const text of [service(''), service(' null'), service(' ~')]) {
      const read = parseManifestText(text, 'web.yaml');
      expect(read.problems).toEqual([]);
      const built = buildClusterState(read.objects);
      expect(built.state.services).toEqual([]);
      expect(built.problems).toEqual([
        {
          source: 'web.yaml',
          kind: 'Service',
          object: 'demo/web',
          field: 'spec',
          message: 'null: the Service has no spec (an empty "spec:"?)',
        },
      ]);
    }
  });

  it('a Service edited to spec: null keeps its last good version in the agent (keepLastGood), reported as kept', () => {
    const b = new ClusterStateBuilder({ keepLastGood: true });
    for (const o of parseManifestText(
      service('\n  clusterIP: 10.96.0.10\n  ports: [{ port: 80 }]'),
      'web.yaml',
    ).objects)
      b.upsert(o);
    expect(b.build().state.servicePorts.map((p) => p.port)).toEqual([80]);
    for (const o of parseManifestText(service(''), 'web.yaml').objects) b.upsert(o);
    const kept = b.build();
    expect(kept.state.servicePorts.map((p) => p.port)).toEqual([80]);
    expect(kept.problems).toEqual([
      expect.objectContaining({ object: 'demo/web', field: 'spec', kept: true }),
    ]);
  });

  it.each([
    ['kind: List\nitems: null\n', 'null in the List of document 1'],
    ['kind: List\nitems:\n', 'null in the List of document 1'],
    ['kind: List\nitems: []\n---\napiVersion: v1\nkind: ServiceList\n', 'missing in the ServiceList of document 2'],
    ['apiVersion: v1\nkind: ServiceList\nitems: 3\n', 'not a list in the ServiceList of document 1'],
    // The same through the thorough parser (an anchor sends the text there).
    ['kind: List\nmetadata: &m { name: x }\nitems: null\n', 'null in the List of document 1'],
  ])('a list without items is a problem of its file: %j', (text, start) => {
    const read = parseManifestText(text, 'list.yaml');
    expect(read.objects).toEqual([]);
    expect(read.problems).toHaveLength(1);
    expect(read.problems[0]).toMatchObject({ source: 'list.yaml', kind: '', object: '', field: 'items' });
    expect(read.problems[0]?.message.startsWith(start)).toBe(true);
  });

  it('items: [] is an empty list, and lists of other kinds are not ours to judge', () => {
    expect(parseManifestText('kind: List\nitems: []\n', 'a.yaml')).toEqual({ objects: [], problems: [] });
    const other = parseManifestText('apiVersion: example.com/v1\nkind: AllowList\nentries: [a]\n', 'b.yaml');
    expect(other.problems).toEqual([]);
    expect(other.objects).toHaveLength(1);
  });
});
