// The informer's pure helpers and its bookmark handling.
import { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../src/observe/logger.js';
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  redact,
  ResourceInformer,
} from '../../../src/sources/api/informer.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay and is capped', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, DEFAULT_BACKOFF))).toEqual([
      800, 1600, 3200, 6400, 12800, 25600, 30000, 30000,
    ]);
    expect(backoffDelay(100, { initialMs: 10, maxMs: 50 })).toBe(50);
  });
});

describe('redact', () => {
  it('removes bearer tokens and token query parameters', () => {
    const text = redact(
      'failed: Authorization: Bearer abcdefghijklmnop1234 at https://x/api?token=sekrit&watch=true',
    );
    expect(text).not.toContain('abcdefghijklmnop1234');
    expect(text).not.toContain('sekrit');
    expect(text).toContain('watch=true');
  });
});

describe('ResourceInformer bookmarks', () => {
  it('moves its resourceVersion with bookmarks, so a quiet kind does not relist after history moved on', async () => {
    const server = new StandInApiServer({ historyLimit: 5 });
    await server.start();
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    const informer = new ResourceInformer(
      { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
      { kubeConfig: kc, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } },
    );
    try {
      informer.start();
      // eventually's usual deadline per step (one 5 s budget for all three waits was tight under CI load).
      await eventually('the watch open', () => server.openWatchCount >= 1);
      // Lots of activity in another kind: the Service watch's resourceVersion falls out of history.
      for (let i = 0; i < 20; i++)
        server.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: `n${i}` } });
      server.sendBookmarks();
      await eventually(
        'the bookmark received',
        () => informer.status().resourceVersion === server.currentResourceVersion,
      );
      expect(informer.status().resourceVersion).toBe(server.currentResourceVersion);
      server.dropWatches();
      server.put({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'late', namespace: 'default' },
        spec: {},
      });
      await eventually('the late Service seen', () => informer.objects().length > 0);
      expect(informer.objects().map((o) => o.metadata?.name)).toEqual(['late']);
      expect(informer.status().lists).toBe(1); // resumed from the bookmark, no 410, no relist
    } finally {
      await informer.stop();
      await server.stop();
    }
  });
});

describe('ResourceInformer object events (client-go handler semantics, for change counting)', () => {
  it('reports each watch event, a burst one by one, and a relist as an update of every listed object', async () => {
    const server = new StandInApiServer();
    await server.start();
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    const svc = (name: string, port: number) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { clusterIP: '10.96.0.10', ports: [{ port }] },
    });
    server.put(svc('a', 80));
    server.put(svc('gone', 80));
    const informer = new ResourceInformer(
      { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
      { kubeConfig: kc, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } },
    );
    const events: string[] = [];
    informer.onObjectEvent((e) => {
      const type = e.previous === undefined ? 'add' : e.current === undefined ? 'delete' : 'update';
      events.push(`${type} ${(e.current ?? e.previous)?.metadata?.name}`);
    });
    try {
      informer.start();
      await eventually('the watch open', () => server.openWatchCount >= 1);
      expect(events).toEqual(['add a', 'add gone']);
      // A burst in one tick: one event each, even if the store sees only the last.
      server.put(svc('a', 81));
      server.put(svc('a', 82));
      server.remove('Service', 'default', 'gone');
      await eventually('the burst seen', () => events.length === 5);
      expect(events.slice(2)).toEqual(['update a', 'update a', 'delete gone']);
      // A relist (history expired): every listed object is an update, even unchanged.
      server.put(svc('b', 80));
      await eventually('b seen', () => events.length === 6);
      server.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }); // history moves on
      server.expireHistory();
      server.dropWatches();
      await eventually('relisted', () => informer.status().lists === 2);
      expect(events.slice(6).sort()).toEqual(['update a', 'update b']);
    } finally {
      await informer.stop();
      await server.stop();
    }
  });
});

describe('ResourceInformer store: metadata.managedFields dropped on arrival', () => {
  it('keeps listed and watched objects without managedFields, every other field as sent', async () => {
    const server = new StandInApiServer();
    await server.start();
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    const managedFields = [
      {
        manager: 'endpointslice-controller',
        operation: 'Update',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:endpoints': {} },
      },
    ];
    const slice = (name: string, ip: string) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name,
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': 'web' },
        annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z' },
        managedFields,
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [ip] }],
    });
    server.put(slice('listed', '10.0.0.1'));
    const informer = new ResourceInformer(
      {
        kind: 'EndpointSlice',
        apiVersion: 'discovery.k8s.io/v1',
        path: '/apis/discovery.k8s.io/v1/endpointslices',
      },
      { kubeConfig: kc, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } },
    );
    const events: Array<{ previous?: unknown; current?: unknown }> = [];
    informer.onObjectEvent((e) => events.push(e));
    try {
      informer.start();
      await eventually('the watch open', () => server.openWatchCount >= 1);
      server.put(slice('watched', '10.0.0.2'));
      await eventually('the watched slice seen', () => informer.objects().length === 2);
      for (const o of informer.objects()) {
        expect(o.metadata).not.toHaveProperty('managedFields');
        expect(o.metadata).toMatchObject({
          namespace: 'default',
          labels: { 'kubernetes.io/service-name': 'web' },
          annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z' },
        });
        expect(o.endpoints).toEqual([{ addresses: [expect.stringMatching(/^10\.0\.0\./)] }]);
      }
      for (const e of events) expect(JSON.stringify(e)).not.toContain('managedFields');
    } finally {
      await informer.stop();
      await server.stop();
    }
  });
});
