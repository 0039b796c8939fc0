// What the agent costs the API server, checked against the stand-in as client-go behaves: lists served
// from the watch cache (resourceVersion "0", then "not older than" the last version), a consistent read
// only when that version is gone — paginated —, one User-Agent on every request, one shared HTTP/2
// connection (HTTP/1.1 keep-alive when the server refuses h2), and the server-side filters (kube-proxy's label selector on EndpointSlices, one Node).
import { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../src/observe/logger.js';
import { buildClusterState } from '../../../src/model/normalise.js';
import { ApiSource, watchedResources } from '../../../src/sources/api/api-source.js';
import { apiProtocolOf } from '../../../src/sources/api/api-request.js';
import { KubeApiWriter } from '../../../src/sources/api/api-writer.js';
import { ResourceInformer } from '../../../src/sources/api/informer.js';
import { StandInApiServer, type StandInOptions } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';

/**
 * One list and one watch per watched kind the stand-in serves: all but MetalLB's (a cluster without
 * MetalLB, whose kinds cost one 404 each at start; see the test below).
 */
const KINDS = watchedResources().filter((r) => r.optional !== 'not-retried').length;
const METALLB_KINDS = watchedResources().length - KINDS;

const service = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] },
});

async function standIn(options: StandInOptions = {}): Promise<{ api: StandInApiServer; kc: KubeConfig }> {
  const api = new StandInApiServer(options);
  await api.start();
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  return { api, kc };
}

describe('API citizenship', () => {
  let api: StandInApiServer;
  let kc: KubeConfig;
  afterEach(async () => {
    await api.stop();
  });

  it('sends portway/<version> (<os>/<arch>) on lists, watches and writes', async () => {
    ({ api, kc } = await standIn());
    api.put(service('a'));
    const source = new ApiSource({ kubeConfig: kc, normalise: buildClusterState, logger: silentLogger });
    try {
      await source.start();
      await eventually('watches open', () => api.openWatchCount === KINDS);
      const writer = new KubeApiWriter({ kubeConfig: kc });
      await writer.get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x');
      await writer.patch('/api/v1/namespaces/default/services/a/status', { status: {} });
    } finally {
      await source.stop();
    }
    const agents = new Set(api.requests.map((r) => r.userAgent));
    expect([...agents]).toEqual([
      expect.stringMatching(/^portway\/\d+\.\d+\.\d+\S* \([a-z0-9]+\/[a-z0-9]+\)$/),
    ]);
    expect(api.requests.filter((r) => r.query.watch === 'true')).toHaveLength(KINDS);
  });

  it('lists from the watch cache at start (resourceVersion 0): no consistent read, no pagination', async () => {
    ({ api, kc } = await standIn());
    for (let i = 0; i < 5; i++) api.put(service(`s${i}`));
    const source = new ApiSource({ kubeConfig: kc, normalise: buildClusterState, logger: silentLogger });
    try {
      await source.start();
    } finally {
      await source.stop();
    }
    const lists = api.requests.filter((r) => r.method === 'GET' && r.query.watch !== 'true' && r.status !== 404);
    expect(lists).toHaveLength(KINDS);
    for (const list of lists) expect(list.query.resourceVersion).toBe('0');
    expect(api.trafficStats().consistentListPages).toBe(0);
    expect(api.trafficStats().cachedLists).toBe(KINDS);
  });

  it("asks for MetalLB's kinds once at start: without its CRDs, one 404 each and never again", async () => {
    ({ api, kc } = await standIn());
    const source = new ApiSource({
      kubeConfig: kc,
      normalise: buildClusterState,
      logger: silentLogger,
      backoff: { initialMs: 50, maxMs: 100 },
    });
    try {
      await source.start();
      await new Promise((r) => setTimeout(r, 600)); // several retry periods of the other kinds
      expect(source.connection().connected).toBe(true);
    } finally {
      await source.stop();
    }
    const metallb = api.requests.filter((r) => r.path.startsWith('/apis/metallb.io/'));
    expect(metallb).toHaveLength(METALLB_KINDS);
    expect(metallb.every((r) => r.status === 404)).toBe(true);
  });

  it('relists after a 410 at the last version (cache), and only when that is gone reads consistently, by pages', async () => {
    // No watch cache: a list at a compacted version is 410, as client-go's pager meets it.
    ({ api, kc } = await standIn({ watchCache: false }));
    for (let i = 0; i < 5; i++) api.put(service(`s${i}`));
    const informer = new ResourceInformer(
      { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
      { kubeConfig: kc, logger: silentLogger, backoff: { initialMs: 10, maxMs: 50 }, listPageSize: 2 },
    );
    try {
      informer.start();
      await eventually('watching', () => api.openWatchCount === 1);
      const synced = informer.status().resourceVersion;
      // A change the watch misses (frozen), then history compacted past the informer's version.
      api.freezeWatches();
      api.put(service('s5'));
      api.expireHistory();
      api.freezeWatches(false);
      api.dropWatches();
      await eventually('relisted', () => informer.status().lists === 2 && informer.objects().length === 6);
      const lists = api.requests
        .filter((r) => r.method === 'GET' && r.query.watch !== 'true')
        .map((r) => ({
          rv: r.query.resourceVersion,
          limit: r.query.limit,
          continue: r.query.continue !== undefined,
          status: r.status,
        }));
      expect(lists).toEqual([
        { rv: '0', limit: undefined, continue: false, status: 200 },
        // The watch got 410; the relist asks for the version it had (a cache hit on a real server)…
        { rv: synced, limit: undefined, continue: false, status: 410 },
        // …and, that version being gone, reads consistently in pages of listPageSize.
        { rv: undefined, limit: '2', continue: false, status: 200 },
        { rv: undefined, limit: '2', continue: true, status: 200 },
        { rv: undefined, limit: '2', continue: true, status: 200 },
      ]);
    } finally {
      await informer.stop();
    }
  });

  it('shares one HTTP/2 connection among every list, watch and write of a configuration', async () => {
    ({ api, kc } = await standIn());
    const writer = new KubeApiWriter({ kubeConfig: kc });
    for (let i = 0; i < 20; i++)
      await writer.get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x');
    expect(api.trafficStats().requests).toBe(20);
    expect(api.trafficStats().connections).toBe(1);
    const source = new ApiSource({ kubeConfig: kc, normalise: buildClusterState, logger: silentLogger });
    try {
      await source.start();
      await eventually('watches open', () => api.openWatchCount === KINDS);
      await writer.get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x');
      expect(apiProtocolOf(kc)).toBe('h2');
      expect(api.trafficStats().connections).toBe(1);
    } finally {
      await source.stop();
    }
  });

  it.each([
    ['refuses h2 in ALPN', false as const],
    ['negotiates no protocol', 'no-alpn' as const],
  ])(
    'falls back to HTTP/1.1 keep-alive when the server %s: watches hold a connection each, the rest reuse',
    async (_, http2) => {
      ({ api, kc } = await standIn({ http2 }));
      const writer = new KubeApiWriter({ kubeConfig: kc });
      for (let i = 0; i < 20; i++)
        await writer.get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x');
      expect(apiProtocolOf(kc)).toBe('http/1.1');
      // One refused h2 handshake, then one kept-alive connection.
      expect(api.trafficStats().connections).toBe(2);
      const source = new ApiSource({ kubeConfig: kc, normalise: buildClusterState, logger: silentLogger });
      try {
        await source.start();
        await eventually('watches open', () => api.openWatchCount === KINDS);
        // MetalLB's kinds are listed at start too (404 here, answered at once): on HTTP/1.1 each list in
        // flight holds a connection, which goes back to the keep-alive pool when answered.
        expect(api.trafficStats().connections).toBeLessThanOrEqual(9 + METALLB_KINDS);
      } finally {
        await source.stop();
      }
    },
  );

  it("filters at the server: kube-proxy's label selector on EndpointSlices; only this Node when asked", async () => {
    ({ api, kc } = await standIn());
    const slice = (name: string, labels: Record<string, string>) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': name, ...labels } },
      addressType: 'IPv4',
      endpoints: [],
      ports: [],
    });
    api.put(slice('proxied', {}));
    api.put(slice('headless', { 'service.kubernetes.io/headless': '' }));
    api.put(slice('other-proxy', { 'service.kubernetes.io/service-proxy-name': 'cilium' }));
    for (const name of ['node-a', 'node-b']) api.put({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    const source = new ApiSource({
      kubeConfig: kc,
      normalise: buildClusterState,
      logger: silentLogger,
      resources: watchedResources({ onlyNode: 'node-b' }),
    });
    try {
      await source.start();
      expect(source.rawObjects('EndpointSlice').map((o) => (o.metadata as { name: string }).name)).toEqual([
        'proxied',
      ]);
      expect(source.rawObjects('Node').map((o) => (o.metadata as { name: string }).name)).toEqual(['node-b']);
    } finally {
      await source.stop();
    }
    const sliceRequests = api.requests.filter((r) => r.path.endsWith('/endpointslices'));
    for (const r of sliceRequests)
      expect(r.query.labelSelector).toBe(
        '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless',
      );
    expect(watchedResources().find((r) => r.kind === 'Node')?.fieldSelector).toBeUndefined();
  });
});
