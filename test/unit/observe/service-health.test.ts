// Health-check node ports: which Services get one, the local ready count, and real HTTP on loopback.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  emptyClusterState,
  type ClusterState,
  type Endpoint,
  type ServicePort,
} from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  planServiceHealthChecks,
  renderServiceHealthBody,
  ServiceHealthServer,
} from '../../../src/observe/service-health.js';
import { freeLoopbackPorts, httpGetOrErrorCode } from '../../fixtures/loopback-http.js';

const ep = (ip: string, port: number, nodeName: string, ready = true): Endpoint => ({
  ip,
  port,
  family: 'IPv4',
  ready,
  serving: ready,
  terminating: !ready,
  nodeName,
});

function servicePort(name: string, over: Partial<ServicePort>): ServicePort {
  return {
    id: `default/${name}:${over.portName ?? 'http'}`,
    namespace: 'default',
    serviceName: name,
    portName: 'http',
    protocol: 'TCP',
    type: 'LoadBalancer',
    port: 80,
    nodePort: 30080,
    healthCheckNodePort: 0,
    clusterIPs: ['10.96.0.10'],
    externalIPs: [],
    loadBalancerIngress: [],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Local',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: { type: 'None' },
    ipFamilies: ['IPv4'],
    endpoints: [],
    ...over,
  };
}

const stateOf = (...servicePorts: ServicePort[]): ClusterState => ({ ...emptyClusterState(), servicePorts });

describe('planServiceHealthChecks', () => {
  it('counts distinct ready endpoints on this node across the service ports', () => {
    const state = stateOf(
      servicePort('web', {
        healthCheckNodePort: 32000,
        endpoints: [
          ep('10.0.0.1', 8080, 'n1'),
          ep('10.0.0.2', 8080, 'n2'),
          ep('10.0.0.3', 8080, 'n1', false),
        ],
      }),
      servicePort('web', {
        id: 'default/web:https',
        portName: 'https',
        healthCheckNodePort: 32000,
        endpoints: [ep('10.0.0.1', 8443, 'n1'), ep('10.0.0.1', 8080, 'n1')],
      }),
      servicePort('cluster-policy', { healthCheckNodePort: 32001, externalTrafficPolicy: 'Cluster' }),
      servicePort('no-port', {}),
      servicePort('nodeport', { type: 'NodePort', healthCheckNodePort: 32002 }),
    );
    expect([...planServiceHealthChecks(state, 'n1').values()]).toEqual([
      { namespace: 'default', name: 'web', port: 32000, localEndpoints: 2 },
    ]);
    expect(planServiceHealthChecks(state, 'n3').get('default/web')?.localEndpoints).toBe(0);
  });

  it("renders kube-proxy's body byte for byte", () => {
    expect(renderServiceHealthBody('default', 'web', 2, true)).toBe(
      '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
    );
  });
});

describe('ServiceHealthServer (loopback)', () => {
  it('answers 200/503 by local endpoints and opens/closes ports as Services come and go', async () => {
    // Both held at once: two freeLoopbackPort() calls in a row may return the same released port.
    const [p1, p2] = (await freeLoopbackPorts(2)) as [number, number];
    let proxyHealthy = true;
    const server = new ServiceHealthServer({
      nodeName: 'n1',
      listenAddresses: ['127.0.0.1'],
      proxyHealth: { isHealthy: () => proxyHealthy },
    });
    await server.start();
    try {
      await server.sync(
        stateOf(
          servicePort('web', { healthCheckNodePort: p1, endpoints: [ep('10.0.0.1', 8080, 'n1')] }),
          servicePort('empty', { healthCheckNodePort: p2, endpoints: [ep('10.0.0.9', 8080, 'n2')] }),
        ),
      );
      const ok = await httpGetOrErrorCode(p1);
      expect(ok).toEqual({ status: 200, body: renderServiceHealthBody('default', 'web', 1, true) });
      expect(JSON.parse((ok as { body: string }).body)).toEqual({
        service: { namespace: 'default', name: 'web' },
        localEndpoints: 1,
        serviceProxyHealthy: true,
      });
      expect(await httpGetOrErrorCode(p2)).toMatchObject({ status: 503 });

      proxyHealthy = false;
      expect(await httpGetOrErrorCode(p1)).toEqual({
        status: 503,
        body: renderServiceHealthBody('default', 'web', 1, false),
      });
      proxyHealthy = true;

      // Endpoints move; 'empty' is deleted.
      await server.sync(stateOf(servicePort('web', { healthCheckNodePort: p1, endpoints: [] })));
      expect(await httpGetOrErrorCode(p1)).toMatchObject({ status: 503 });
      expect(await httpGetOrErrorCode(p2)).toEqual({ error: 'ECONNREFUSED' });
      expect(server.served().map((c) => c.name)).toEqual(['web']);

      // The health-check port changes: old closed, new opened.
      await server.sync(
        stateOf(servicePort('web', { healthCheckNodePort: p2, endpoints: [ep('10.0.0.1', 8080, 'n1')] })),
      );
      expect(await httpGetOrErrorCode(p1)).toEqual({ error: 'ECONNREFUSED' });
      expect(await httpGetOrErrorCode(p2)).toMatchObject({ status: 200 });
    } finally {
      await server.stop();
    }
    expect(await httpGetOrErrorCode(p2)).toEqual({ error: 'ECONNREFUSED' });
  });

  it('logs a port it cannot bind and retries it on the next sync', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const logger = new RecordingLogger();
    const server = new ServiceHealthServer({ nodeName: 'n1', listenAddresses: ['127.0.0.1'], logger });
    const state = stateOf(
      servicePort('web', { healthCheckNodePort: port, endpoints: [ep('10.0.0.1', 80, 'n1')] }),
    );
    try {
      await server.sync(state);
      expect(server.served()).toEqual([]);
      expect(logger.records.find((r) => r.level === 'error')?.message).toContain(
        `failed to start healthcheck "default/web" on port ${port}`,
      );
      await new Promise((r) => blocker.close(r));
      await server.sync(state);
      expect(await httpGetOrErrorCode(port)).toMatchObject({ status: 200 });
    } finally {
      await server.stop();
      blocker.close();
    }
  });
});
