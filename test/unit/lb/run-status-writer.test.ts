/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The status writer wired into `portway run` in cluster mode: against the API stand-in, the agent takes the
// Lease, writes the allocated address into the Service's status, emits a Warning for the Service the pool
// cannot serve, and releases the Lease on stop.
import { runClusterAgent, useStandInPerTest } from '../../fixtures/cluster-agent.js';
import { eventually } from '../../fixtures/polling.js';

const lbService = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo' },
  spec: {
    type: 'LoadBalancer',
    clusterIP: '10.96.0.20',
    clusterIPs: ['10.96.0.20'],
    ipFamilies: ['IPv4'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  },
});

describe('runAgent in cluster mode: LoadBalancer status writer', () => {
  const env = useStandInPerTest('portway-lb-status-');
  const run = (signal: AbortSignal) =>
    runClusterAgent({
      dir: env.dir,
      config: 'iptables: { minSyncPeriod: 10ms, syncPeriod: 30s }\nloadBalancer: { layer2: false }\n',
      env: { NODE_NAME: 'node-a', POD_NAMESPACE: 'portway-system' },
      signal,
    });

  it('takes the Lease, writes status.loadBalancer.ingress and a Warning for the unserved Service, releases on stop', async () => {
    const { api } = env;
    api.put({
      apiVersion: 'portway.io/v1alpha1',
      kind: 'IPAddressPool',
      metadata: { name: 'lan', namespace: 'portway-system' },
      spec: { addresses: ['192.168.50.240/32'] },
    });
    api.put(lbService('a-web'));
    api.put(lbService('b-web'));
    const abort = new AbortController();
    const done = run(abort.signal);
    const ingress = (name: string) => (api.get('Service', 'demo', name) as any)?.status?.loadBalancer?.ingress;
    await eventually('status written', () => ingress('a-web')?.[0]?.ip === '192.168.50.240');
    await eventually('warning event', () =>
      api.list('Event').some((e: any) => e.type === 'Warning' && e.involvedObject.name === 'b-web'),
    );
    const lease = api.get('Lease', 'portway-system', 'portway-lb-status') as any;
    expect(lease.spec.holderIdentity).toBe('node-a');
    expect(ingress('b-web')).toBeUndefined();
    abort.abort();
    expect(await done).toBe(0);
    expect((api.get('Lease', 'portway-system', 'portway-lb-status') as any).spec.holderIdentity).toBe('');
  });
});
