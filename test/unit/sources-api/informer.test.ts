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
