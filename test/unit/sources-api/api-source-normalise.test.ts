// ApiSource with the real shared normaliser (createApiSource + --kubeconfig), against the stand-in.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { createApiSource, type ApiSource } from '../../../src/sources/api/index.js';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';
import { httpEndpointSlice, httpService, readyAddress } from '../../fixtures/k8s-objects.js';

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
    server.put(httpService('default', 'web', '10.96.0.10'));
    server.put(
      httpEndpointSlice({
        namespace: 'default',
        name: 'web-1',
        service: 'web',
        endpoints: [readyAddress('10.244.1.5', 'n1')],
      }),
    );
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
    await eventually('endpoint gone', () => source!.current().state.servicePorts[0]?.endpoints.length === 0);
  });
});
