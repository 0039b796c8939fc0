// kube-proxy's metric names, types and buckets, portway's own metrics, and the /metrics server.
import { emptyClusterState } from '../../../src/model/cluster-state.js';
import {
  MetricsServer,
  NETWORK_PROGRAMMING_BUCKETS,
  ProxyMetrics,
  SYNC_DURATION_BUCKETS,
} from '../../../src/observe/metrics.js';
import { parseBindAddress } from '../../../src/observe/http-server.js';
import { httpGet } from '../../fixtures/loopback-http.js';

const typeOf = (text: string, name: string) => new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('ProxyMetrics', () => {
  it("uses kube-proxy's names and types", async () => {
    const m = new ProxyMetrics({ processMetrics: false });
    const text = await m.text();
    const expected: Record<string, string> = {
      kubeproxy_sync_proxy_rules_duration_seconds: 'histogram',
      kubeproxy_sync_full_proxy_rules_duration_seconds: 'histogram',
      kubeproxy_sync_partial_proxy_rules_duration_seconds: 'histogram',
      kubeproxy_network_programming_duration_seconds: 'histogram',
      kubeproxy_sync_proxy_rules_last_timestamp_seconds: 'gauge',
      kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds: 'gauge',
      kubeproxy_sync_proxy_rules_iptables_total: 'gauge',
      kubeproxy_sync_proxy_rules_iptables_last: 'gauge',
      kubeproxy_sync_proxy_rules_iptables_restore_failures_total: 'counter',
      kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total: 'counter',
      kubeproxy_sync_proxy_rules_endpoint_changes_total: 'counter',
      kubeproxy_sync_proxy_rules_endpoint_changes_pending: 'gauge',
      kubeproxy_sync_proxy_rules_service_changes_total: 'counter',
      kubeproxy_sync_proxy_rules_service_changes_pending: 'gauge',
      kubeproxy_sync_proxy_rules_no_local_endpoints_total: 'gauge',
      kubeproxy_proxy_healthz_total: 'counter',
      kubeproxy_proxy_livez_total: 'counter',
      portway_api_connected: 'gauge',
      portway_api_disconnected_since_timestamp_seconds: 'gauge',
      portway_invalid_objects_total: 'counter',
      portway_invalid_objects: 'gauge',
    };
    for (const [name, type] of Object.entries(expected))
      expect([name, typeOf(text, name)]).toEqual([name, type]);
  });

  it("uses kube-proxy's buckets", () => {
    expect(SYNC_DURATION_BUCKETS).toHaveLength(15);
    expect(SYNC_DURATION_BUCKETS[0]).toBe(0.001);
    expect(SYNC_DURATION_BUCKETS[14]).toBeCloseTo(16.384, 9);
    // MergeBuckets starts with 0; then 0.25, 0.5, 1..59, 60..115 step 5, 120..300 step 30.
    expect(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5)).toEqual([0, 0.25, 0.5, 1, 2]);
    expect(NETWORK_PROGRAMMING_BUCKETS).toHaveLength(1 + 2 + 59 + 12 + 7);
    expect(NETWORK_PROGRAMMING_BUCKETS.at(-1)).toBe(300);
    expect(NETWORK_PROGRAMMING_BUCKETS).toContain(115);
  });

  it('records syncs, failures, rule counts and changes', async () => {
    const m = new ProxyMetrics({ processMetrics: false });
    m.syncQueued(1700000000);
    m.syncCompleted({ durationSeconds: 0.003, full: true, succeeded: true, endSeconds: 1700000001 });
    m.syncCompleted({ durationSeconds: 0.5, full: false, succeeded: false, endSeconds: 1700000002 });
    m.restoreFailed();
    m.partialSyncFailed();
    m.iptablesRules('nat', 120, 7);
    m.changesSeen({ services: 2, endpoints: 5 });
    m.networkProgrammed(1.5);
    const t = await m.text();
    expect(value(t, 'kubeproxy_sync_proxy_rules_duration_seconds_count')).toBe(2);
    expect(value(t, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count')).toBe(1);
    expect(value(t, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count')).toBe(1);
    expect(value(t, 'kubeproxy_sync_full_proxy_rules_duration_seconds_bucket{le="0.004"}')).toBe(1);
    expect(value(t, 'kubeproxy_sync_full_proxy_rules_duration_seconds_bucket{le="0.002"}')).toBe(0);
    expect(value(t, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBe(1700000001); // failed sync does not move it
    expect(value(t, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds')).toBe(1700000000);
    expect(value(t, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(1);
    expect(value(t, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(1);
    expect(value(t, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')).toBe(120);
    expect(value(t, 'kubeproxy_sync_proxy_rules_iptables_last{table="nat"}')).toBe(7);
    expect(value(t, 'kubeproxy_sync_proxy_rules_service_changes_total')).toBe(2);
    expect(value(t, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBe(5);
    expect(value(t, 'kubeproxy_network_programming_duration_seconds_bucket{le="2"}')).toBe(1);
    expect(value(t, 'kubeproxy_network_programming_duration_seconds_bucket{le="1"}')).toBe(0);
  });

  it('reads API connection and invalid objects from the bound source at scrape time', async () => {
    const m = new ProxyMetrics({ processMetrics: false });
    const source = {
      status: { connected: true, synced: true } as {
        connected: boolean;
        synced: boolean;
        disconnectedSince?: number;
      },
      invalidObjectsTotal: 3,
      connection() {
        return this.status;
      },
      current: () => ({
        state: emptyClusterState(),
        problems: [{ kind: 'Service' }, { kind: 'Service' }, { kind: 'IPAddressPool' }],
      }),
    };
    m.bindApiSource(source);
    let t = await m.text();
    expect(value(t, 'portway_api_connected')).toBe(1);
    expect(value(t, 'portway_api_disconnected_since_timestamp_seconds')).toBe(0);
    expect(value(t, 'portway_invalid_objects_total')).toBe(3);
    expect(value(t, 'portway_invalid_objects{kind="Service"}')).toBe(2);
    expect(value(t, 'portway_invalid_objects{kind="IPAddressPool"}')).toBe(1);
    source.status = { connected: false, synced: true, disconnectedSince: 1_700_000_000_000 };
    source.invalidObjectsTotal = 4;
    t = await m.text();
    expect(value(t, 'portway_api_connected')).toBe(0);
    expect(value(t, 'portway_api_disconnected_since_timestamp_seconds')).toBe(1_700_000_000);
    expect(value(t, 'portway_invalid_objects_total')).toBe(4);
  });
});

describe('MetricsServer', () => {
  it('serves /metrics and /proxyMode over HTTP', async () => {
    const m = new ProxyMetrics();
    const server = new MetricsServer(m, { bindAddress: '127.0.0.1:0', proxyMode: 'iptables' });
    await server.start();
    try {
      const res = await httpGet(server.port, '/metrics');
      expect(res.status).toBe(200);
      expect(res.type).toContain('text/plain');
      expect(res.body).toContain('# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram');
      expect(res.body).toContain('process_cpu_user_seconds_total');
      expect((await httpGet(server.port, '/proxyMode')).body).toBe('iptables');
      expect((await httpGet(server.port, '/nope')).status).toBe(404);
    } finally {
      await server.stop();
    }
  });

  it("answers kube-proxy's /healthz ping and /proxyMode as plain UTF-8 text on the metrics port", async () => {
    const server = new MetricsServer(new ProxyMetrics({ processMetrics: false }), {
      bindAddress: '127.0.0.1:0',
      proxyMode: 'iptables',
    });
    await server.start();
    try {
      for (const path of ['/healthz', '/healthz/ping']) {
        const res = await httpGet(server.port, path);
        expect([path, res.status, res.body, res.type]).toEqual([
          path,
          200,
          'ok',
          'text/plain; charset=utf-8',
        ]);
      }
      expect((await httpGet(server.port, '/proxyMode')).type).toBe('text/plain; charset=utf-8');
    } finally {
      await server.stop();
    }
  });

  it('parses bind addresses and rejects bad ones', () => {
    expect(parseBindAddress('127.0.0.1:10249')).toEqual({ host: '127.0.0.1', port: 10249 });
    expect(parseBindAddress('[::1]:10256')).toEqual({ host: '::1', port: 10256 });
    expect(parseBindAddress(':10256')).toEqual({ host: '', port: 10256 });
    expect(() => parseBindAddress('10249', 'metricsBindAddress')).toThrow(
      /metricsBindAddress: expected host:port/,
    );
    expect(() => parseBindAddress('1.2.3.4:99999')).toThrow();
  });
});
