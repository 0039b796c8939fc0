// kube-proxy's healthz semantics with a fake clock, and the HTTP server around them.
import {
  formatGoTime,
  HealthServer,
  healthTimeoutFor,
  ProxyHealth,
  TO_BE_DELETED_TAINT,
} from '../../../src/observe/health.js';
import { ProxyMetrics } from '../../../src/observe/metrics.js';
import { httpGet } from '../../fixtures/loopback-http.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 120);
const SYNC_PERIOD = 30_000;

describe('ProxyHealth', () => {
  let now: number;
  let health: ProxyHealth;
  beforeEach(() => {
    now = T0;
    health = new ProxyHealth({ healthTimeoutMs: healthTimeoutFor(SYNC_PERIOD), now: () => now });
  });

  it('formats times as Go does', () => {
    expect(formatGoTime(T0)).toBe('2026-01-02 03:04:05.12 +0000 UTC');
    expect(formatGoTime(Date.UTC(2026, 0, 2, 3, 4, 5))).toBe('2026-01-02 03:04:05 +0000 UTC');
    expect(formatGoTime(undefined)).toBe('0001-01-01 00:00:00 +0000 UTC');
  });

  it('/healthz and /readyz are 503 with the reason while the source cannot be believed; /livez is not', () => {
    let problem: string | undefined = '/etc/portway/manifests: cannot read: ENOENT';
    const withSource = new ProxyHealth({
      healthTimeoutMs: healthTimeoutFor(SYNC_PERIOD),
      now: () => now,
      sourceProblem: () => problem,
    });
    withSource.updated('IPv4');
    expect(withSource.healthz().status).toBe(503);
    expect(JSON.parse(withSource.healthz().body)).toMatchObject({ sourceProblem: problem });
    expect(withSource.readyz().status).toBe(503);
    expect(JSON.parse(withSource.readyz().body)).toMatchObject({ synced: true, sourceProblem: problem });
    expect(withSource.livez().status).toBe(200); // a restart would not bring the directory back
    problem = undefined;
    expect(withSource.healthz().status).toBe(200);
    expect(withSource.healthz().body).not.toContain('sourceProblem');
    expect(withSource.readyz().status).toBe(200);
  });

  it('is healthy while starting up and after syncs that keep up', () => {
    expect(health.healthz().status).toBe(200);
    health.queuedUpdate('IPv4');
    now += 10_000;
    health.updated('IPv4');
    now += 10 * SYNC_PERIOD; // idle for a long time: nothing queued, still healthy
    expect(health.healthz().status).toBe(200);
    expect(health.livez().status).toBe(200);
  });

  it('turns 503 when a queued change is not applied within 2 × syncPeriod, and recovers after a sync', () => {
    health.updated('IPv4');
    health.queuedUpdate('IPv4');
    const queuedAt = now;
    now += 30_000;
    health.queuedUpdate('IPv4'); // a later change does not move the oldest pending one
    now = queuedAt + 2 * SYNC_PERIOD - 1;
    expect(health.healthz().status).toBe(200);
    now = queuedAt + 2 * SYNC_PERIOD;
    const stale = health.healthz();
    expect(stale.status).toBe(503);
    expect(JSON.parse(stale.body)).toEqual({
      lastUpdated: formatGoTime(T0),
      currentTime: formatGoTime(now),
      nodeEligible: true,
    });
    expect(health.livez().status).toBe(503);
    expect(health.isHealthy()).toBe(false);
    health.updated('IPv4');
    const ok = health.healthz();
    expect(ok.status).toBe(200);
    // Healthy replies report lastUpdated = currentTime, as kube-proxy does.
    expect(JSON.parse(ok.body).lastUpdated).toBe(formatGoTime(now));
  });

  it('judges each IP family on its own', () => {
    health.updated('IPv4');
    health.updated('IPv6');
    health.queuedUpdate('IPv6');
    now += 2 * SYNC_PERIOD;
    health.updated('IPv4');
    expect(health.healthz().status).toBe(503);
  });

  it('is unhealthy when the first sync never completes', () => {
    health.queuedUpdate('IPv4');
    now += 2 * SYNC_PERIOD;
    expect(health.healthz().status).toBe(503);
  });

  it('turns 503 when syncs keep failing with nothing queued, 2 × syncPeriod after the last success', () => {
    health.updated('IPv4');
    const lastGood = now;
    now += SYNC_PERIOD;
    health.syncFailed('IPv4'); // the periodic full sync fails; no change is queued
    now += SYNC_PERIOD / 2;
    health.syncFailed('IPv4'); // the retry fails too
    now = lastGood + 2 * SYNC_PERIOD - 1;
    expect(health.healthz().status).toBe(200);
    now = lastGood + 2 * SYNC_PERIOD;
    const stale = health.healthz();
    expect(stale.status).toBe(503);
    expect(JSON.parse(stale.body).lastUpdated).toBe(formatGoTime(lastGood));
    expect(health.livez().status).toBe(503);
    health.updated('IPv4');
    expect(health.healthz().status).toBe(200);
    now += 10 * SYNC_PERIOD; // idle and succeeding: healthy
    expect(health.healthz().status).toBe(200);
  });

  it('turns 503 when the first syncs all fail, 2 × syncPeriod after the first attempt', () => {
    health.syncFailed('IPv4');
    now += 2 * SYNC_PERIOD - 1;
    health.syncFailed('IPv4');
    expect(health.healthz().status).toBe(200);
    now += 1;
    expect(health.healthz().status).toBe(503);
    expect(health.readyz().status).toBe(503);
  });

  it('reports 503 on /healthz (not /livez) while the node is being deleted', () => {
    health.updated('IPv4');
    health.syncNode({ metadata: {}, spec: { taints: [{ key: TO_BE_DELETED_TAINT }] } });
    expect(health.healthz().status).toBe(503);
    expect(JSON.parse(health.healthz().body).nodeEligible).toBe(false);
    expect(health.livez().status).toBe(200);
    health.syncNode({ metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' } });
    expect(health.healthz().status).toBe(503);
    health.syncNode({ metadata: {}, spec: {} });
    expect(health.healthz().status).toBe(200);
  });

  it('is ready only after the first successful sync', () => {
    expect(health.readyz().status).toBe(503);
    health.updated('IPv4');
    expect(health.readyz().status).toBe(200);
    expect(JSON.parse(health.readyz().body)).toMatchObject({ synced: true, nodeEligible: true });
  });

  it('counts healthz and livez replies by code', async () => {
    const metrics = new ProxyMetrics({ processMetrics: false });
    const h = new ProxyHealth({ healthTimeoutMs: 1000, now: () => now, metrics });
    h.healthz();
    h.queuedUpdate('IPv4');
    now += 1000;
    h.healthz();
    h.livez();
    const text = await metrics.text();
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="200"} 1');
    expect(text).toContain('kubeproxy_proxy_healthz_total{code="503"} 1');
    expect(text).toContain('kubeproxy_proxy_livez_total{code="503"} 1');
  });
});

describe('HealthServer', () => {
  it('serves /healthz, /livez and /readyz as JSON over HTTP', async () => {
    let now = T0;
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, now: () => now });
    const server = new HealthServer(health, { bindAddress: '127.0.0.1:0' });
    await server.start();
    try {
      let res = await httpGet(server.port, '/healthz');
      expect(res.status).toBe(200);
      expect(res.type).toBe('application/json');
      expect(res.body).toBe(
        `{"lastUpdated": "${formatGoTime(T0)}","currentTime": "${formatGoTime(T0)}", "nodeEligible": true}`,
      );
      expect((await httpGet(server.port, '/readyz')).status).toBe(503);
      health.updated('IPv4');
      health.queuedUpdate('IPv4');
      now += 60_000;
      res = await httpGet(server.port, '/healthz');
      expect(res.status).toBe(503);
      expect((await httpGet(server.port, '/livez')).status).toBe(503);
      expect((await httpGet(server.port, '/other')).status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});
