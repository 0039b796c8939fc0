// ApiSource with the real shared normaliser (createApiSource + --kubeconfig), against the stand-in.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { createApiSource, type ApiSource } from '../../../src/sources/api/index.js';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('createApiSource with buildClusterState', () => {
  let server: StandInApiServer;
  let dir: string;
  let source: ApiSource | undefined;
  beforeAll(async () => {
    server = new StandInApiServer();
    await server.start();
    dir = await mkdtemp(join(tmpdir(), 'portway-api-'));
  });
  afterAll(async () => {
    await source?.stop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('produces ClusterState from the API, skipping and counting an invalid Service', async () => {
    server.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        type: 'ClusterIP',
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      },
    });
    server.put({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true }, nodeName: 'n1' }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    server.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'broken', namespace: 'default' },
      spec: {
        type: 'ClusterIP',
        clusterIP: '10.96.0.11',
        ports: [{ name: 'http', port: 70000, protocol: 'TCP' }],
      },
    });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeKubeconfig(server, kubeconfig);
    const logger = new RecordingLogger();
    source = createApiSource({ kubeconfig, logger, backoff: { initialMs: 20, maxMs: 200 } });
    await source.start();
    const { state, problems } = source.current();
    expect(state.servicePorts.map((p) => p.id)).toEqual(['default/web:http']);
    expect(state.servicePorts[0]!.endpoints.map((e) => `${e.ip}:${e.port}`)).toEqual(['10.244.1.5:8080']);
    expect(problems).toEqual([
      expect.objectContaining({
        source: 'api',
        kind: 'Service',
        object: 'default/broken',
        field: 'spec.ports[0].port',
      }),
    ]);
    expect(source.invalidObjectsTotal).toBe(1);
    expect(logger.text()).toContain('default/broken');
    expect(logger.text()).not.toContain(server.token);

    server.remove('EndpointSlice', 'default', 'web-1');
    await waitFor('endpoint gone', () => source!.current().state.servicePorts[0]?.endpoints.length === 0);
  });
});
