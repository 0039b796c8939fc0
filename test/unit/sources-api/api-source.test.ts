/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// ApiSource against the stand-in API server: initial sync, changes, dropped watches, 410 → relist,
// an outage, invalid objects, missing CRDs and credentials kept out of logs.
import { KubeConfig } from '@kubernetes/client-node';
import { emptyClusterState, type InputProblem } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { ApiSource, WATCHED_RESOURCES, type Normaliser } from '../../../src/sources/api/api-source.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';
import { httpEndpointSlice, minimalHttpService, readyAddress } from '../../fixtures/k8s-objects.js';

/** The watched kinds the stand-in serves: all but MetalLB's, whose CRDs it has not installed. */
const SERVED_KINDS = WATCHED_RESOURCES.filter((r) => r.optional !== 'not-retried').length;

const svc = minimalHttpService;
const slice = (name: string, service: string, ip: string) =>
  httpEndpointSlice({ namespace: 'default', name, service, endpoints: [readyAddress(ip)] });
const node = (name: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });

/** Records what it is given; reports a Service whose port is not a number, as the model does. */
function recordingNormaliser() {
  const seen: { last: Array<{ source: string; object: any }>; calls: number } = { last: [], calls: 0 };
  const normalise: Normaliser = (objects) => {
    seen.last = objects as any;
    seen.calls += 1;
    const problems: InputProblem[] = [];
    for (const { object } of objects as Array<{ object: any }>) {
      if (object.kind !== 'Service') continue;
      (object.spec?.ports ?? []).forEach((p: any, i: number) => {
        if (typeof p.port !== 'number') {
          problems.push({
            source: 'api',
            kind: 'Service',
            object: `${object.metadata.namespace}/${object.metadata.name}`,
            field: `spec.ports[${i}].port`,
            message: 'expected a number',
          });
        }
      });
    }
    return { state: emptyClusterState(), problems };
  };
  const names = (kind: string) =>
    seen.last
      .filter((o) => o.object.kind === kind)
      .map((o) => `${o.object.metadata.namespace ?? ''}/${o.object.metadata.name}`);
  return { normalise, seen, names };
}

function kubeConfigFor(server: StandInApiServer, token = server.token): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig().replace(server.token, token));
  return kc;
}

describe('ApiSource (against the stand-in API server)', () => {
  let server: StandInApiServer;
  let source: ApiSource | undefined;
  let clock: number;
  const logger = new RecordingLogger();

  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
    clock = 1_000_000;
    logger.records.length = 0;
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await server.stop();
  });

  const makeSource = (normalise: Normaliser, kc = kubeConfigFor(server)) => {
    source = new ApiSource({
      kubeConfig: kc,
      normalise,
      logger,
      now: () => clock,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    return source;
  };

  it('emits its first snapshot only after every kind has been listed, with kind/apiVersion stamped', async () => {
    server.put(svc('web'));
    server.put(slice('web-abc', 'web', '10.0.0.1'));
    server.put(node('n1'));
    server.put({
      apiVersion: 'portway.io/v1alpha1',
      kind: 'IPAddressPool',
      metadata: { name: 'pool', namespace: 'portway-system' },
      spec: { addresses: ['192.0.2.0/28'] },
    });
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    const snapshots: unknown[] = [];
    s.onChange((snap) => snapshots.push(snap));
    await s.start();
    expect(snapshots).toHaveLength(1);
    expect(n.seen.calls).toBe(1);
    expect(n.names('Service')).toEqual(['default/web']);
    expect(n.names('EndpointSlice')).toEqual(['default/web-abc']);
    expect(n.names('Node')).toEqual(['/n1']);
    expect(n.names('IPAddressPool')).toEqual(['portway-system/pool']);
    // List items come without kind/apiVersion from a real server; the source stamps them.
    expect(n.seen.last.find((o) => o.object.kind === 'EndpointSlice')!.object.apiVersion).toBe(
      'discovery.k8s.io/v1',
    );
    expect(n.seen.last.every((o) => o.source === 'api')).toBe(true);
    expect(s.current().problems).toEqual([]);
    expect(s.connection()).toMatchObject({ connected: true, synced: true, disconnectedSince: undefined });
    expect(s.connection().informers).toHaveLength(WATCHED_RESOURCES.length);
  });

  it('follows adds, updates and deletes', async () => {
    server.put(svc('web'));
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    await s.start();
    server.put(svc('api'));
    await eventually('api added', () => n.names('Service').includes('default/api'));
    server.put({ ...svc('api'), spec: { ...svc('api').spec, type: 'NodePort' } });
    await eventually('api updated', () =>
      n.seen.last.some((o) => o.object.metadata.name === 'api' && o.object.spec.type === 'NodePort'),
    );
    server.remove('Service', 'default', 'web');
    await eventually('web deleted', () => !n.names('Service').includes('default/web'));
    expect(n.names('Service')).toEqual(['default/api']);
  });

  it('resumes dropped watches from its resourceVersion without relisting', async () => {
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    await s.start();
    await eventually('watches open', () => server.openWatchCount === SERVED_KINDS);
    server.dropWatches(); // clean end, as a server-side watch timeout
    server.put(svc('after-clean-drop'));
    await eventually('seen after clean drop', () => n.names('Service').includes('default/after-clean-drop'));
    await eventually('watches reopened', () => server.openWatchCount === SERVED_KINDS);
    server.dropWatches({ abrupt: true }); // cut connections
    server.put(svc('after-abrupt-drop'));
    await eventually('seen after abrupt drop', () =>
      n.names('Service').includes('default/after-abrupt-drop'),
    );
    const serviceLists = server.requests.filter(
      (r) => r.path === '/api/v1/services' && r.query.watch !== 'true',
    );
    expect(serviceLists).toHaveLength(1);
    const rewatch = server.requests.filter((r) => r.path === '/api/v1/services' && r.query.watch === 'true');
    expect(rewatch.length).toBeGreaterThanOrEqual(3);
    expect(
      rewatch.every((r) => r.query.allowWatchBookmarks === 'true' && r.query.resourceVersion !== ''),
    ).toBe(true);
  });

  it('relists when its resourceVersion has expired (410), dropping objects deleted meanwhile', async () => {
    server.put(svc('keep'));
    server.put(svc('gone'));
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    await s.start();
    await server.stop();
    server.remove('Service', 'default', 'gone');
    server.put(svc('new'));
    server.expireHistory();
    await server.start();
    await eventually('relisted', () => n.names('Service').join() === 'default/keep,default/new');
    const svcInformer = s.connection().informers.find((i) => i.kind === 'Service')!;
    expect(svcInformer.lists).toBe(2);
    expect(logger.records.some((r) => r.message.includes('410'))).toBe(true);
  });

  it('keeps its state while the server is down and reports since when it is disconnected', async () => {
    server.put(svc('web'));
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    await s.start();
    const before = s.current();
    clock = 2_000_000;
    await server.stop();
    await eventually('disconnected', () => !s.connection().connected);
    expect(s.connection().disconnectedSince).toBe(2_000_000);
    clock = 2_005_000;
    await new Promise((r) => setTimeout(r, 300)); // several failed retries
    expect(s.connection().disconnectedSince).toBe(2_000_000);
    expect(s.current()).toBe(before);
    expect(n.names('Service')).toEqual(['default/web']);
    server.put(svc('while-down'));
    await server.start();
    await eventually('reconnected', () => s.connection().connected);
    await eventually('caught up', () => n.names('Service').includes('default/while-down'));
    expect(s.connection().disconnectedSince).toBeUndefined();
    expect(logger.records.some((r) => r.level === 'warn' && r.message.includes('connection lost'))).toBe(
      true,
    );
  });

  it('asks the server to end watches (timeoutSeconds) and aborts a watch the server silently stopped serving', async () => {
    const n = recordingNormaliser();
    source = new ApiSource({
      kubeConfig: kubeConfigFor(server),
      normalise: n.normalise,
      logger,
      now: () => clock,
      backoff: { initialMs: 20, maxMs: 200 },
      resources: WATCHED_RESOURCES.filter((r) => r.kind === 'Service'),
      watchTimeoutSeconds: 1,
      watchStallGraceMs: 300,
    });
    await source.start();
    await eventually(
      'server ended the first watch and the client re-watched',
      () =>
        server.requests.filter((r) => r.query.watch === 'true' && r.query.timeoutSeconds === '1').length >= 2,
    );
    expect(source.connection().connected).toBe(true);
    server.freezeWatches(); // a peer that died without closing: no events, no end
    // Default deadlines: detection takes 1.3 s (timeoutSeconds + grace) per frozen watch, and a re-watch
    // opened before the unfreeze stalls once more; 5 s left little slack on a loaded CI box.
    await eventually('stalled watch detected', () => !source!.connection().connected);
    server.freezeWatches(false);
    server.put(svc('after-stall'));
    await eventually('caught up after stall', () => n.names('Service').includes('default/after-stall'));
    await eventually('reconnected', () => source!.connection().connected);
  });

  it('skips, logs (namespace/name and field) and counts an invalid object once', async () => {
    server.put(svc('good'));
    server.put(svc('bad', 'eighty'));
    const n = recordingNormaliser();
    const s = makeSource(n.normalise);
    await s.start();
    expect(s.current().problems).toHaveLength(1);
    expect(s.invalidObjectsTotal).toBe(1);
    const warning = logger.records.find((r) => r.message.includes('invalid Service'));
    expect(warning?.message).toContain('default/bad');
    expect(warning?.message).toContain('spec.ports[0].port');
    server.put(svc('other'));
    await eventually('other seen', () => n.names('Service').includes('default/other'));
    expect(s.invalidObjectsTotal).toBe(1); // the same broken object is not counted again
    server.put(svc('bad', 'ninety'));
    await eventually('bad updated', () =>
      n.seen.last.some((o) => o.object.spec?.ports?.[0]?.port === 'ninety'),
    );
    expect(s.invalidObjectsTotal).toBe(1); // same field, same message
    server.put(svc('bad2', 'x'));
    await eventually('bad2 counted', () => s.invalidObjectsTotal === 2);
  });

  it('treats a portway CRD that is not installed as empty instead of blocking the sync', async () => {
    const n = recordingNormaliser();
    source = new ApiSource({
      kubeConfig: kubeConfigFor(server),
      normalise: n.normalise,
      logger,
      backoff: { initialMs: 20, maxMs: 200 },
      resources: [
        ...WATCHED_RESOURCES.filter((r) => r.kind === 'Service'),
        { kind: 'Thing', apiVersion: 'missing.io/v1', path: '/apis/missing.io/v1/things', optional: true },
      ],
    });
    await source.start();
    expect(source.synced).toBe(true);
    expect(logger.records.some((r) => r.message.includes('CRD not installed'))).toBe(true);
  });

  it('never logs the bearer token, even when the server rejects it', async () => {
    const secret = 'super-secret-token-value-1234567890';
    const n = recordingNormaliser();
    const s = makeSource(n.normalise, kubeConfigFor(server, secret));
    void s.start().catch(() => undefined);
    await eventually('error recorded', () =>
      s.connection().informers.every((i) => i.lastError !== undefined),
    );
    expect(s.connection().connected).toBe(false);
    expect(s.connection().informers[0]!.lastError).toContain('401');
    expect(logger.text()).not.toContain(secret);
    expect(logger.text()).not.toContain(server.token);
  });
});
