// Cluster mode end to end on loopback: stand-in API → ApiSource (shared normaliser) → health-check
// node ports, proxy health and metrics, wired the way `portway run --kubeconfig` wires them.
import { KubeConfig } from '@kubernetes/client-node';
import { buildClusterState } from '../../../src/model/normalise.js';
import { HealthServer, ProxyHealth } from '../../../src/observe/health.js';
import { MetricsServer, ProxyMetrics } from '../../../src/observe/metrics.js';
import { ServiceHealthServer } from '../../../src/observe/service-health.js';
import { ApiSource } from '../../../src/sources/api/api-source.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { freeLoopbackPort, httpGetOrDown } from '../../fixtures/loopback-http.js';
import { eventually } from '../../fixtures/polling.js';

const slice = (ready: boolean) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'front-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'front' } },
  addressType: 'IPv4',
  endpoints: [
    { addresses: ['10.244.1.7'], conditions: { ready }, nodeName: 'node-1' },
    { addresses: ['10.244.2.7'], conditions: { ready: true }, nodeName: 'node-2' },
  ],
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

describe('cluster mode wiring (loopback)', () => {
  it('drives health-check node ports, health and metrics from the API', async () => {
    const hcPort = await freeLoopbackPort();
    const api = new StandInApiServer();
    await api.start();
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'front', namespace: 'shop' },
      spec: {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.30',
        clusterIPs: ['10.96.0.30'],
        ipFamilies: ['IPv4'],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: hcPort,
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
      },
    });
    api.put(slice(true));

    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig());
    const metrics = new ProxyMetrics({ processMetrics: false });
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, metrics });
    const source = new ApiSource({
      kubeConfig: kc,
      normalise: buildClusterState,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    const serviceHealth = new ServiceHealthServer({
      nodeName: 'node-1',
      listenAddresses: ['127.0.0.1'],
      proxyHealth: health,
      metrics,
    });
    const healthServer = new HealthServer(health, { bindAddress: '127.0.0.1:0' });
    const metricsServer = new MetricsServer(metrics, { bindAddress: '127.0.0.1:0', proxyMode: 'iptables' });
    metrics.bindApiSource(source);
    // Stand-in for the sync loop: each snapshot is "applied" at once.
    source.onChange(({ state }) => {
      health.queuedUpdate('IPv4');
      void serviceHealth.sync(state).then(() => health.updated('IPv4'));
    });
    try {
      await Promise.all([healthServer.start(), metricsServer.start(), serviceHealth.start()]);
      await source.start();
      await eventually('health check 200', async () => (await httpGetOrDown(hcPort)).status === 200);
      expect(JSON.parse((await httpGetOrDown(hcPort)).body)).toEqual({
        service: { namespace: 'shop', name: 'front' },
        localEndpoints: 1,
        serviceProxyHealthy: true,
      });
      expect((await httpGetOrDown(healthServer.port, '/healthz')).status).toBe(200);
      expect((await httpGetOrDown(healthServer.port, '/readyz')).status).toBe(200);

      api.put(slice(false)); // this node's endpoint is no longer ready
      await eventually('health check 503', async () => (await httpGetOrDown(hcPort)).status === 503);

      let text = (await httpGetOrDown(metricsServer.port, '/metrics')).body;
      expect(text).toContain('portway_api_connected 1');
      expect(text).toContain('portway_health_check_node_ports 1');
      await api.stop();
      await eventually('metrics show the outage', async () => {
        text = (await httpGetOrDown(metricsServer.port, '/metrics')).body;
        return text.includes('portway_api_connected 0');
      });
      expect(text).not.toContain('portway_api_disconnected_since_timestamp_seconds 0\n');
      // The last known state keeps serving.
      expect((await httpGetOrDown(hcPort)).status).toBe(503);
      api.put({ ...slice(true) });
      await api.start();
      await eventually('recovered', async () => (await httpGetOrDown(hcPort)).status === 200);
    } finally {
      await source.stop();
      await Promise.all([serviceHealth.stop(), healthServer.stop(), metricsServer.stop(), api.stop()]);
    }
  });
});
