/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The Lease-elected LoadBalancer status writer against the API stand-in: two agents with the same
// allocation, exactly one writes; status ends up with the allocated address; an exhausted pool yields one
// Warning Event; the follower takes over after the leader stops.
import { allocate, type AllocationResult } from '../../../src/lb/allocator.js';
import {
  buildServiceEvent,
  LoadBalancerStatusWriter,
  planFailureEvents,
} from '../../../src/lb/status-writer.js';
import type { ServiceInfo } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import type { LeaseElector } from '../../../src/sources/api/lease-election.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { CountingClient } from '../sources-api/counting-client.js';
import { manualClockLeaseElector } from '../sources-api/manual-clock-lease.js';
import { pool, svc } from './fixtures.js';

describe('planFailureEvents / buildServiceEvent', () => {
  it("one Warning per portway Service without an address, with the allocator's reason", () => {
    const services = [svc('default/b'), svc('default/a'), svc('default/c', { type: 'ClusterIP' })];
    const result: AllocationResult = {
      assignments: new Map([['default/b', { ips: ['192.0.2.1'], pool: 'p' }]]),
      reasons: new Map([['default/a', 'no available addresses in pool "p"']]),
      problems: [],
    };
    expect(planFailureEvents(services, result)).toEqual([
      {
        namespace: 'default',
        name: 'a',
        type: 'Warning',
        reason: 'AllocationFailed',
        message: 'Failed to allocate IP for "default/a": no available addresses in pool "p"',
      },
    ]);
  });

  it('builds a v1 Event about the Service', () => {
    const ev = buildServiceEvent(
      { namespace: 'ns', name: 'web', uid: 'u1', type: 'Normal', reason: 'IPAllocated', message: 'm' },
      { nowMs: Date.UTC(2024, 0, 1), component: 'portway-lb', host: 'node-a' },
    );
    expect(ev).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: 'web.', namespace: 'ns' },
      involvedObject: { apiVersion: 'v1', kind: 'Service', namespace: 'ns', name: 'web', uid: 'u1' },
      type: 'Normal',
      reason: 'IPAllocated',
      firstTimestamp: '2024-01-01T00:00:00Z',
      source: { component: 'portway-lb', host: 'node-a' },
    });
  });
});

describe('LoadBalancerStatusWriter (two agents, against the stand-in API server)', () => {
  let server: StandInApiServer;
  let clock: ManualClock;
  const logger = new RecordingLogger();
  let agents: Array<{ client: CountingClient; elector: LeaseElector; writer: LoadBalancerStatusWriter }>;

  const makeAgent = (node: string) => {
    const client = new CountingClient(server);
    const elector = manualClockLeaseElector(client, node, clock, logger);
    const writer = new LoadBalancerStatusWriter({ client, leadership: elector, nodeName: node, logger, clock, retryMs: 300 });
    const agent = { client, elector, writer };
    agents.push(agent);
    return agent;
  };
  const step = async (ms: number, by = 100) => {
    for (let t = 0; t < ms; t += by) {
      await clock.advance(by);
      await Promise.all(agents.map((a) => a.elector.idle()));
      await Promise.all(agents.map((a) => a.writer.idle()));
    }
  };
  /** Put a LoadBalancer Service into the stand-in. */
  const putService = (name: string) =>
    server.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
    });
  /** The Services as an informer would read them now: ServiceInfo with the stand-in's status. */
  const observed = (names: string[]): ServiceInfo[] =>
    names.map((name) => {
      const obj = server.get('Service', 'default', name) as any;
      return svc(`default/${name}`, {
        uid: obj.metadata.uid,
        statusIngress: (obj.status?.loadBalancer?.ingress ?? []).map((i: any) => ({ ip: i.ip, ipMode: 'VIP' })),
      });
    });
  const ingressOf = (name: string) => (server.get('Service', 'default', name) as any).status?.loadBalancer?.ingress;
  const events = () => server.list('Event') as any[];
  const feed = (services: ServiceInfo[], allocation: AllocationResult) => {
    for (const a of agents) a.writer.update(services, allocation);
  };

  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
    clock = new ManualClock(0);
    agents = [];
  });
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.writer.stop({ release: false })));
    await server.stop();
  });

  it('exactly one agent writes status and events; an exhausted pool yields one Warning naming the Service', async () => {
    putService('web');
    putService('api');
    const a = makeAgent('node-a');
    const b = makeAgent('node-b');
    const services = observed(['api', 'web']);
    // One address for two Services: default/api gets it (name order), default/web cannot.
    const allocation = allocate(services, [pool('p', ['192.0.2.10/32'])], {});
    expect(allocation.assignments.get('default/api')?.ips).toEqual(['192.0.2.10']);
    expect(allocation.reasons.get('default/web')).toBeDefined();
    a.writer.start();
    await step(100);
    b.writer.start();
    feed(services, allocation);
    await step(1000);

    expect(a.writer.isLeader()).toBe(true);
    expect(b.writer.isLeader()).toBe(false);
    expect(ingressOf('api')).toEqual([{ ip: '192.0.2.10' }]);
    expect(a.client.counts.PATCH).toBe(1);
    expect(a.client.paths).toContain('PATCH /api/v1/namespaces/default/services/api/status');
    expect(b.client.counts).toMatchObject({ PATCH: 0, POST: 0, PUT: 0 });

    const warnings = events().filter((e) => e.type === 'Warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      reason: 'AllocationFailed',
      involvedObject: { kind: 'Service', namespace: 'default', name: 'web' },
      source: { host: 'node-a' },
    });
    expect(warnings[0].message).toContain(allocation.reasons.get('default/web'));
    const normal = events().filter((e) => e.type === 'Normal');
    expect(normal).toHaveLength(1);
    expect(normal[0]).toMatchObject({ reason: 'IPAllocated', involvedObject: { name: 'api' } });
    expect(normal[0].message).toContain('192.0.2.10');

    // More syncs with the same allocation — before and after the informer shows the new status — write nothing.
    feed(services, allocation);
    await step(300);
    feed(observed(['api', 'web']), allocation);
    await step(300);
    expect(a.client.counts.PATCH).toBe(1);
    expect(events()).toHaveLength(2);
  });

  it('clears the status of a Service that lost its address', async () => {
    putService('web');
    const obj = server.get('Service', 'default', 'web')!;
    server.put({ ...obj, status: { loadBalancer: { ingress: [{ ip: '192.0.2.99' }] } } });
    const a = makeAgent('node-a');
    a.writer.start();
    const services = observed(['web']);
    // The address it had is not in any pool any more and nothing else is free: it has none.
    const none: AllocationResult = { assignments: new Map(), reasons: new Map([['default/web', 'pool exhausted']]), problems: [] };
    a.writer.update(services, none);
    await step(300);
    expect(ingressOf('web')).toEqual([]);
    expect(events().map((e) => e.reason)).toEqual(['AllocationFailed']);
  });

  it('after the leader stops, the follower takes over after the lease expires and keeps writing', async () => {
    putService('web');
    putService('api');
    const a = makeAgent('node-a');
    const b = makeAgent('node-b');
    a.writer.start();
    await step(100);
    b.writer.start();
    const first = observed(['web']);
    feed(first, allocate(first, [pool('p', ['192.0.2.10/31'])], {}));
    await step(500);
    expect(ingressOf('web')).toEqual([{ ip: '192.0.2.10' }]);
    const aPatches = a.client.counts.PATCH;

    await a.writer.stop({ release: false }); // as a crash: the Lease is left to expire
    const second = observed(['api', 'web']);
    const allocation = allocate(second, [pool('p', ['192.0.2.10/31'])], {});
    feed(second, allocation);
    await step(600);
    expect(b.writer.isLeader()).toBe(false);
    expect(ingressOf('api')).toBeUndefined();
    await step(1000);
    expect(b.writer.isLeader()).toBe(true);
    expect(ingressOf('api')).toEqual([{ ip: '192.0.2.11' }]);
    expect(b.client.counts.PATCH).toBe(1); // web was already right
    expect(a.client.counts.PATCH).toBe(aPatches);
    expect((server.get('Lease', 'kube-system', 'portway-lb-status') as any).spec.holderIdentity).toBe('node-b');
  });

  it('retries a failed patch later while still leader', async () => {
    putService('web');
    const a = makeAgent('node-a');
    a.writer.start();
    await step(100);
    const services = observed(['web']);
    server.remove('Service', 'default', 'web'); // 404: skipped, not an error
    a.writer.update(services, allocate(services, [pool('p', ['192.0.2.10/32'])], {}));
    await step(200);
    expect(a.writer.stats.failures).toBe(0);
    putService('web');
    a.client.down = true;
    a.writer.update(services, allocate(services, [pool('p', ['192.0.2.10/32'])], {}));
    await step(100);
    expect(a.writer.stats.failures).toBe(1);
    a.client.down = false;
    await step(400);
    expect(ingressOf('web')).toEqual([{ ip: '192.0.2.10' }]);
  });
});
