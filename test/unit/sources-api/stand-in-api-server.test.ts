/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The API stand-in itself: auth, list/watch protocol, 410 Gone, selectors, writes and test controls.
import { StandInApiServer } from '../../stand-in/api-server.js';
import { standInRequest, standInWatch } from '../../stand-in/client.js';
import { eventually } from '../../fixtures/polling.js';

const svc = (name: string, labels: Record<string, string> = {}, ns = 'default') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
});

describe('StandInApiServer', () => {
  let server: StandInApiServer;
  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
  });
  afterEach(async () => {
    await server.stop();
  });

  it('refuses requests without the bearer token (401 Status)', async () => {
    const res = await standInRequest(server, 'GET', '/api/v1/services', undefined, { token: null });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ kind: 'Status', code: 401 });
    const wrong = await standInRequest(server, 'GET', '/api/v1/services', undefined, { token: 'nope' });
    expect(wrong.status).toBe(401);
  });

  it('lists cluster-wide and per namespace with kind XList and a resourceVersion', async () => {
    server.put(svc('a'));
    server.put(svc('b', {}, 'other'));
    const all = await standInRequest(server, 'GET', '/api/v1/services');
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({
      kind: 'ServiceList',
      apiVersion: 'v1',
      metadata: { resourceVersion: server.currentResourceVersion },
    });
    expect((all.body as any).items.map((i: any) => i.metadata.name)).toEqual(['a', 'b']);
    const ns = await standInRequest(server, 'GET', '/api/v1/namespaces/other/services');
    expect((ns.body as any).items.map((i: any) => i.metadata.name)).toEqual(['b']);
    const slices = await standInRequest(server, 'GET', '/apis/discovery.k8s.io/v1/endpointslices');
    expect(slices.body).toMatchObject({
      kind: 'EndpointSliceList',
      apiVersion: 'discovery.k8s.io/v1',
      items: [],
    });
    const pools = await standInRequest(server, 'GET', '/apis/portway.io/v1alpha1/ipaddresspools');
    expect(pools.body).toMatchObject({ kind: 'IPAddressPoolList', items: [] });
  });

  it('filters by label and field selectors', async () => {
    server.put(svc('plain'));
    server.put(svc('headless', { 'service.kubernetes.io/headless': '' }));
    server.put(svc('tier', { tier: 'web' }));
    const names = async (q: string) =>
      ((await standInRequest(server, 'GET', `/api/v1/services?${q}`)).body as any).items.map(
        (i: any) => i.metadata.name,
      );
    expect(await names(`labelSelector=${encodeURIComponent('!service.kubernetes.io/headless')}`)).toEqual([
      'plain',
      'tier',
    ]);
    expect(await names(`labelSelector=${encodeURIComponent('tier in (web,db)')}`)).toEqual(['tier']);
    expect(await names(`labelSelector=${encodeURIComponent('tier!=web')}`)).toEqual(['headless', 'plain']);
    expect(await names(`fieldSelector=${encodeURIComponent('metadata.name=plain')}`)).toEqual(['plain']);
    const bad = await standInRequest(
      server,
      'GET',
      `/api/v1/services?labelSelector=${encodeURIComponent('a b c')}`,
    );
    expect(bad.status).toBe(400);
  });

  it('creates, updates with optimistic concurrency, patches, writes /status and deletes', async () => {
    const created = await standInRequest(server, 'POST', '/api/v1/namespaces/default/services', {
      ...svc('web'),
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } },
    });
    expect(created.status).toBe(201);
    const obj = created.body as any;
    expect(obj.status).toBeUndefined(); // status is not writable through the main resource
    expect(obj.metadata.uid).toMatch(/-/);
    const again = await standInRequest(server, 'POST', '/api/v1/namespaces/default/services', svc('web'));
    expect(again.status).toBe(409);

    const stale = { ...obj, metadata: { ...obj.metadata, resourceVersion: '1' } };
    expect(
      (await standInRequest(server, 'PUT', '/api/v1/namespaces/default/services/web', stale)).status,
    ).toBe(409);
    const updated = await standInRequest(server, 'PUT', '/api/v1/namespaces/default/services/web', {
      ...obj,
      spec: { ...obj.spec, type: 'LoadBalancer' },
    });
    expect(updated.status).toBe(200);
    expect((updated.body as any).spec.type).toBe('LoadBalancer');
    expect(Number((updated.body as any).metadata.resourceVersion)).toBeGreaterThan(
      Number(obj.metadata.resourceVersion),
    );

    const status = await standInRequest(
      server,
      'PATCH',
      '/api/v1/namespaces/default/services/web/status',
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } }, spec: { type: 'ClusterIP' } },
      { contentType: 'application/merge-patch+json' },
    );
    expect(status.status).toBe(200);
    expect((status.body as any).status.loadBalancer.ingress).toEqual([{ ip: '192.0.2.7' }]);
    expect((status.body as any).spec.type).toBe('LoadBalancer'); // /status changes only status

    const jsonPatch = await standInRequest(
      server,
      'PATCH',
      '/api/v1/namespaces/default/services/web',
      [{ op: 'add', path: '/metadata/labels/team', value: 'net' }],
      { contentType: 'application/json-patch+json' },
    );
    expect((jsonPatch.body as any).metadata.labels.team).toBe('net');
    expect(server.get('Service', 'default', 'web')?.status).toEqual({
      loadBalancer: { ingress: [{ ip: '192.0.2.7' }] },
    });

    expect((await standInRequest(server, 'DELETE', '/api/v1/namespaces/default/services/web')).status).toBe(
      200,
    );
    expect((await standInRequest(server, 'GET', '/api/v1/namespaces/default/services/web')).status).toBe(404);
  });

  it('streams watch events from a resourceVersion, translating selector changes', async () => {
    server.put(svc('a'));
    const rv = server.currentResourceVersion;
    server.put(svc('b'));
    const w = standInWatch(
      server,
      `/api/v1/services?watch=true&resourceVersion=${rv}&labelSelector=${encodeURIComponent('!hide')}`,
    );
    await w.next(1);
    server.put(svc('a', { hide: 'yes' })); // no longer matches → DELETED for this watch
    server.remove('Service', 'default', 'b');
    server.put(svc('c'));
    const events = await w.next(4);
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED b',
      'DELETED a',
      'DELETED b',
      'ADDED c',
    ]);
    expect(events[0]!.object).toMatchObject({ kind: 'Service', apiVersion: 'v1' });
    w.close();
  });

  it('starts a watch without resourceVersion with synthetic ADDED events, and sends bookmarks when allowed', async () => {
    server.put(svc('a'));
    const w = standInWatch(server, '/api/v1/services?watch=true&allowWatchBookmarks=true');
    await w.next(1);
    server.sendBookmarks();
    const events = await w.next(2);
    expect(events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a' } } });
    expect(events[1]).toMatchObject({
      type: 'BOOKMARK',
      object: { kind: 'Service', metadata: { resourceVersion: server.currentResourceVersion } },
    });
    w.close();
  });

  it('answers a watch from an expired resourceVersion with an ERROR event carrying 410', async () => {
    server.put(svc('a'));
    const old = server.currentResourceVersion;
    server.put(svc('b'));
    server.expireHistory();
    const w = standInWatch(server, `/api/v1/services?watch=true&resourceVersion=${old}`);
    const [event] = await w.next(1);
    expect(event).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    // Wait for the end itself, with the usual deadline (2 s was tight on a loaded CI box).
    await eventually('the expired watch ended', () => w.ended);
    // The current version is still watchable.
    const ok = standInWatch(
      server,
      `/api/v1/services?watch=true&resourceVersion=${server.currentResourceVersion}`,
    );
    server.put(svc('c'));
    expect((await ok.next(1))[0]).toMatchObject({ type: 'ADDED' });
    ok.close();
  });

  it('forgets history beyond historyLimit', async () => {
    server.setHistoryLimit(2);
    const start = server.currentResourceVersion;
    for (const n of ['a', 'b', 'c']) server.put(svc(n));
    const w = standInWatch(server, `/api/v1/services?watch=true&resourceVersion=${start}`);
    expect((await w.next(1))[0]).toMatchObject({ type: 'ERROR', object: { code: 410 } });
  });

  it('drops open watches and restarts on the same port keeping its objects', async () => {
    const w = standInWatch(server, '/api/v1/nodes?watch=true');
    // Wait for the watch to be open (a fixed 100 ms could end before the TLS handshake under load).
    await eventually('the watch open', () => server.openWatchCount === 1);
    server.dropWatches();
    // Wait for the end itself, with the usual deadline (2 s was tight on a loaded CI box).
    await eventually('the dropped watch ended', () => w.ended);
    server.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    const nodes = await standInRequest(server, 'GET', '/api/v1/nodes');
    expect((nodes.body as any).items.map((i: any) => i.metadata.name)).toEqual(['n1']);
  });

  it('writes a kubeconfig with the CA and token', () => {
    const doc = JSON.parse(server.kubeconfig());
    expect(doc.clusters[0].cluster.server).toBe(server.url);
    expect(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toContain(
      'BEGIN CERTIFICATE',
    );
    expect(doc.users[0].user.token).toBe(server.token);
  });
});
