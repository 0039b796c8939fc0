import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadManifestFiles, parseManifestText, STDIN_SOURCE } from '../../../src/model/load.js';
import { loadClusterState } from '../../../src/model/index.js';

const fixtures = new URL('../../fixtures/model/', import.meta.url).pathname;
const names = (objects: Array<{ object: unknown }>) =>
  objects.map((o) => {
    const obj = o.object as { kind?: string; metadata?: { name?: string } };
    return `${obj.kind}/${obj.metadata?.name}`;
  });

describe('parseManifestText', () => {
  it('splits a multi-document YAML stream and skips empty documents', () => {
    const text =
      'kind: A\nmetadata: {name: a}\n---\n---\n# only a comment\n---\nkind: B\nmetadata: {name: b}\n';
    const r = parseManifestText(text, 'x.yaml');
    expect(r.problems).toEqual([]);
    expect(names(r.objects)).toEqual(['A/a', 'B/b']);
    expect(r.objects.map((o) => o.document)).toEqual([1, 4]);
    expect(r.objects.every((o) => o.source === 'x.yaml')).toBe(true);
  });

  it('reads JSON: a single object and an array', () => {
    expect(names(parseManifestText('{"kind":"A","metadata":{"name":"a"}}', 'a.json').objects)).toEqual([
      'A/a',
    ]);
    expect(
      names(
        parseManifestText(
          '[{"kind":"A","metadata":{"name":"a"}},{"kind":"B","metadata":{"name":"b"}}]',
          'b.json',
        ).objects,
      ),
    ).toEqual(['A/a', 'B/b']);
  });

  it('flattens kind: List and typed lists, giving typed-list items their kind and apiVersion', () => {
    const list = parseManifestText(
      'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n- {apiVersion: v1, kind: List, items: [{kind: Node, metadata: {name: n}}]}\n',
      'l.yaml',
    );
    expect(names(list.objects)).toEqual(['Service/s', 'Node/n']);
    const typed = parseManifestText(
      '{"apiVersion":"v1","kind":"ServiceList","items":[{"metadata":{"name":"x"}}]}',
      't.json',
    );
    expect(typed.objects[0]?.object).toEqual({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' } });
  });

  it('reads YAML 1.2: a leading-zero address and yes/no stay strings (no octal, no sexagesimal IPv6 surprises)', () => {
    const r = parseManifestText(
      'kind: A\nmetadata: {name: a}\nspec: {clusterIP: 010.0.0.1, on: yes}\n',
      'x.yaml',
    );
    expect((r.objects[0]?.object as { spec: unknown }).spec).toEqual({ clusterIP: '010.0.0.1', on: 'yes' });
  });

  it('reports a syntax error with file, document and line; the other documents still load', () => {
    const r = parseManifestText(
      'kind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: [oops\n---\nkind: C\nmetadata: {name: c}\n',
      'bad.yaml',
    );
    expect(names(r.objects)).toEqual(['A/a', 'C/c']);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ source: 'bad.yaml', kind: '', object: '', field: '' });
    expect(r.problems[0]?.message).toMatch(/^YAML syntax error in document 2 at line \d+, column \d+: /);
  });

  it('reports duplicate keys as a syntax problem', () => {
    const r = parseManifestText('{"kind":"A","kind":"B"}', 'dup.json');
    expect(r.objects).toEqual([]);
    expect(r.problems[0]?.message).toMatch(/unique/);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 12; i++)
      text += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    const r = parseManifestText(text, 'bomb.yaml');
    expect(r.objects).toEqual([]);
    expect(r.problems[0]?.message).toMatch(/document 1/);
  });
});

describe('loadManifestFiles', () => {
  it('recurses into directories in sorted order, takes .yaml/.yml/.json only and skips dot entries', async () => {
    const r = await loadManifestFiles([join(fixtures, 'tree')]);
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => o.source.slice(fixtures.length))).toEqual([
      'tree/a-nodes.json',
      'tree/a-nodes.json',
      'tree/b-services.yaml',
      'tree/b-services.yaml',
      'tree/sub/slices.yml',
    ]);
    expect(names(r.objects)).toEqual([
      'Node/n1',
      'Node/n2',
      'Service/web',
      'Deployment/web',
      'EndpointSlice/web-abc',
    ]);
  });

  it('takes a file named explicitly whatever its extension, in the order given', async () => {
    const r = await loadManifestFiles([join(fixtures, 'typed-list.json'), join(fixtures, 'tree/README.txt')]);
    // README.txt is one YAML scalar document: loaded as a (non-object) value, reported by the normaliser.
    expect(r.objects.map((o) => o.object)).toEqual([
      expect.objectContaining({ kind: 'Node' }),
      'not a manifest',
    ]);
  });

  it('reads stdin for "-"', async () => {
    const stdin = Readable.from([Buffer.from('kind: A\nmetadata: {name: '), Buffer.from('from-stdin}\n')]);
    const r = await loadManifestFiles(['-'], stdin);
    expect(names(r.objects)).toEqual(['A/from-stdin']);
    expect(r.objects[0]?.source).toBe(STDIN_SOURCE);
  });

  it('reports a missing path and an unreadable file, and still loads the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-model-'));
    writeFileSync(join(dir, 'ok.yaml'), 'kind: A\nmetadata: {name: ok}\n');
    const locked = join(dir, 'locked.yaml');
    writeFileSync(locked, 'kind: A\nmetadata: {name: locked}\n');
    chmodSync(locked, 0o000);
    const missing = join(dir, 'nope.yaml');
    const r = await loadManifestFiles([missing, dir]);
    expect(r.problems[0]).toMatchObject({ source: missing, field: '' });
    expect(r.problems[0]?.message).toMatch(/cannot read: .*ENOENT/);
    // root can read a 0000 file; only an unprivileged run sees the second problem.
    const isRoot = process.getuid?.() === 0;
    expect(names(r.objects)).toEqual(isRoot ? ['A/locked', 'A/ok'] : ['A/ok']);
    if (!isRoot) expect(r.problems[1]).toMatchObject({ source: locked });
  });

  it('keeps the other files when one has a syntax error', async () => {
    const r = await loadClusterState([
      join(fixtures, 'broken-syntax.yaml'),
      join(fixtures, 'typed-list.json'),
    ]);
    expect(Object.keys(r.state.namespaceLabels)).toEqual(['after-error', 'before-error']);
    expect(r.state.nodes.map((n) => n.name)).toEqual(['typed-node']);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.source).toBe(join(fixtures, 'broken-syntax.yaml'));
    expect(r.problems[0]?.message).toMatch(/document 2 at line \d+/);
  });
});

describe('loadClusterState', () => {
  it('reads what `kubectl get -o yaml` prints, ignoring the many fields portway does not read', async () => {
    const { state, problems } = await loadClusterState([join(fixtures, 'kubectl-list.yaml')]);
    expect(problems).toEqual([]);
    expect(state.services[0]).toMatchObject({
      namespace: 'prod',
      name: 'api',
      uid: '1b2c3d',
      type: 'LoadBalancer',
    });
    expect(state.servicePorts).toEqual([
      expect.objectContaining({
        id: 'prod/api:https',
        nodePort: 31443,
        healthCheckNodePort: 32000,
        externalTrafficPolicy: 'Local',
        loadBalancerIngress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
        endpoints: [
          {
            ip: '10.244.3.3',
            port: 8443,
            family: 'IPv4',
            ready: true,
            serving: true,
            terminating: false,
            nodeName: 'node-c',
            zone: 'z1',
            zoneHints: ['z1'],
            targetName: 'api-0',
          },
        ],
      }),
    ]);
  });

  it('reads stdin and files together, reporting problems of both', async () => {
    const stdin = Readable.from([
      'apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 0}]}\n',
    ]);
    const { state, problems } = await loadClusterState(['-', join(fixtures, 'tree')], stdin);
    expect(state.services.map((s) => s.name)).toEqual(['web']);
    expect(state.servicePorts[0]?.endpoints.map((e) => e.ip)).toEqual(['10.244.0.7']);
    expect(state.nodes.map((n) => [n.name, n.ready])).toEqual([
      ['n1', true],
      ['n2', false],
    ]);
    expect(problems).toEqual([
      {
        source: STDIN_SOURCE,
        kind: 'Service',
        object: 'n/s',
        field: 'spec.ports[0].port',
        message: 'must be 1-65535 (got 0)',
      },
    ]);
  });
});
