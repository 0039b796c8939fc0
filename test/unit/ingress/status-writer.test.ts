/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The Lease-elected Ingress status writer against the API stand-in: status written once by the elected
// writer, rewritten when the controller's address changes, a Warning Event for a missing backend once per
// change, nothing written for Ingresses of other classes.
import { IngressStatusWriter, countBackendStates } from '../../../src/ingress/status-writer.js';
import { evaluateIngresses } from '../../../src/ingress/evaluate.js';
import { buildClusterState } from '../../../src/model/normalise.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import type { LeaseElector } from '../../../src/sources/api/lease-election.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { CountingClient } from '../sources-api/counting-client.js';
import { manualClockLeaseElector } from '../sources-api/manual-clock-lease.js';

const CLASSES = [{ name: 'nginx', service: 'ingress/controller' }];

describe('IngressStatusWriter (two agents, against the stand-in API server)', () => {
  let server: StandInApiServer;
  let clock: ManualClock;
  const logger = new RecordingLogger();
  let agents: Array<{ client: CountingClient; elector: LeaseElector; writer: IngressStatusWriter }>;

  const makeAgent = (node: string) => {
    const client = new CountingClient(server);
    const elector = manualClockLeaseElector(client, node, clock, logger);
    const writer = new IngressStatusWriter({ client, leadership: elector, classes: CLASSES, nodeName: node, logger, clock, retryMs: 300 });
    agents.push({ client, elector, writer });
    return { client, elector, writer };
  };
  const step = async (ms: number, by = 100) => {
    for (let t = 0; t < ms; t += by) {
      await clock.advance(by);
      await Promise.all(agents.map((a) => a.elector.idle()));
      await Promise.all(agents.map((a) => a.writer.idle()));
    }
  };
  /** What the informers show now, normalised. */
  const observed = () => {
    const objects = ['Service', 'EndpointSlice', 'Node', 'Ingress', 'IngressClass'].flatMap((kind) =>
      (server.list(kind) as any[]).map((object) => ({ source: 'api', object })),
    );
    return buildClusterState(objects).state;
  };
  const feed = () => {
    const state = observed();
    for (const a of agents) a.writer.update(state);
  };
  const statusOf = (name: string) => (server.get('Ingress', 'web', name) as any).status?.loadBalancer?.ingress;
  const events = () => server.list('Event') as any[];
  const putController = (ip: string) =>
    server.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'controller', namespace: 'ingress' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      status: { loadBalancer: { ingress: [{ ip }] } },
    });
  const putIngress = (name: string, cls: string, backend: string) =>
    server.put({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: 'web' },
      spec: {
        ingressClassName: cls,
        rules: [
          {
            host: 'myapp.example.com',
            http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: backend, port: { number: 80 } } } }] },
          },
        ],
      },
    });

  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
    clock = new ManualClock(0);
    agents = [];
    putController('192.0.2.20');
    server.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'app', namespace: 'web' },
      spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
    });
    server.put({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'app-1', namespace: 'web', labels: { 'kubernetes.io/service-name': 'app' } },
      addressType: 'IPv4',
      ports: [{ port: 8080 }],
      endpoints: [{ addresses: ['10.1.0.1'] }],
    });
  });
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.writer.stop({ release: false })));
    await server.stop();
  });

  it('the elected writer writes the status once; rewritten when the controller address changes', async () => {
    putIngress('shop', 'nginx', 'app');
    const a = makeAgent('node-a');
    const b = makeAgent('node-b');
    a.writer.start();
    await step(100);
    b.writer.start();
    feed();
    await step(1000);
    expect(statusOf('shop')).toEqual([{ ip: '192.0.2.20' }]);
    expect(a.client.paths).toContain('PATCH /apis/networking.k8s.io/v1/namespaces/web/ingresses/shop/status');
    expect(a.client.counts.PATCH).toBe(1);
    expect(b.client.counts).toMatchObject({ PATCH: 0, POST: 0 });
    expect(events()).toEqual([]); // the backend is fine

    // More syncs, before and after the informer shows the written status: nothing more is sent.
    feed();
    await step(300);
    feed();
    await step(300);
    expect(a.client.counts.PATCH).toBe(1);

    putController('192.0.2.21');
    feed();
    await step(300);
    expect(statusOf('shop')).toEqual([{ ip: '192.0.2.21' }]);
    expect(a.client.counts.PATCH).toBe(2);
    expect((server.get('Lease', 'kube-system', 'portway-lb-status') as any).spec.holderIdentity).toBe('node-a');
  });

  it('a missing backend: one Warning Event on the Ingress per change, not per sync', async () => {
    putIngress('shop', 'nginx', 'missing');
    const a = makeAgent('node-a');
    a.writer.start();
    feed();
    await step(500);
    feed();
    await step(300);
    const warnings = events().filter((e) => e.type === 'Warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      reason: 'BackendCheckFailed',
      involvedObject: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'web', name: 'shop' },
      source: { component: 'portway-ingress', host: 'node-a' },
    });
    expect(warnings[0].message).toBe('1 backend failing: myapp.example.com/: Service web/missing not found');

    // Fixed, then broken again: the new failure is reported again.
    putIngress('shop', 'nginx', 'app');
    feed();
    await step(300);
    expect(events()).toHaveLength(1);
    putIngress('shop', 'nginx', 'missing');
    feed();
    await step(300);
    expect(events()).toHaveLength(2);
  });

  it('Ingresses of a class not configured get no status and no Events', async () => {
    putIngress('other', 'traefik', 'missing');
    const a = makeAgent('node-a');
    a.writer.start();
    feed();
    await step(800);
    expect(a.writer.isLeader()).toBe(true);
    expect(statusOf('other')).toBeUndefined();
    expect(a.client.counts.PATCH ?? 0).toBe(0);
    expect(events()).toEqual([]);
  });

  it('counts backends per state for the metric, every agent', () => {
    putIngress('shop', 'nginx', 'app');
    putIngress('other', 'traefik', 'missing');
    const counts = countBackendStates(evaluateIngresses(observed(), CLASSES));
    expect(counts).toEqual({ ok: 1, noService: 1, noPort: 0, noEndpoints: 0, notChecked: 0 });
  });
});
