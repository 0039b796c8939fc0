/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// Lease election (client-go leaderelection semantics) against the API stand-in, with a manual clock.
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  decideLease,
  LeaseElector,
  microTime,
  parseLeaseRecord,
  type LeaseRecord,
} from '../../../src/sources/api/lease-election.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { CountingClient } from './counting-client.js';
import { manualClockLeaseElector } from './manual-clock-lease.js';

const record = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: 'node-a',
  leaseDurationSeconds: 15,
  acquireTime: '',
  renewTime: '',
  leaseTransitions: 0,
  ...over,
});

describe('decideLease', () => {
  it('creates a missing Lease, renews its own, takes a free one', () => {
    expect(decideLease(null, 'node-a', 0, 0)).toEqual({ action: 'create' });
    expect(decideLease(record(), 'node-a', 0, 99_000)).toEqual({ action: 'renew' });
    expect(decideLease(record({ holderIdentity: '' }), 'node-b', 0, 0)).toEqual({ action: 'acquire', previousHolder: '' });
  });

  it("waits for a peer's Lease until leaseDurationSeconds after the record last changed (own clock)", () => {
    expect(decideLease(record(), 'node-b', 1000, 15_999)).toEqual({ action: 'wait', holder: 'node-a', expiresInMs: 1 });
    expect(decideLease(record(), 'node-b', 1000, 16_000)).toEqual({ action: 'acquire', previousHolder: 'node-a' });
  });

  it('writes MicroTime with six fractional digits and parses a partial spec with defaults', () => {
    expect(microTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678))).toBe('2024-01-02T03:04:05.678000Z');
    expect(parseLeaseRecord({ spec: { holderIdentity: 'x' } })).toEqual(
      record({ holderIdentity: 'x', leaseDurationSeconds: 0 }),
    );
  });
});

describe('LeaseElector (against the stand-in API server)', () => {
  let server: StandInApiServer;
  let clock: ManualClock;
  const electors: LeaseElector[] = [];
  const logger = new RecordingLogger();
  const LEASE = ['Lease', 'kube-system', 'portway-lb-status'] as const;

  const make = (identity: string, client: CountingClient) => {
    const e = manualClockLeaseElector(client, identity, clock, logger);
    electors.push(e);
    return e;
  };
  /** Move the clock in retry-period steps, letting each round of HTTP requests finish. */
  const step = async (ms: number, by = 100) => {
    for (let t = 0; t < ms; t += by) {
      await clock.advance(by);
      await Promise.all(electors.map((e) => e.idle()));
    }
  };

  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
    clock = new ManualClock(0);
  });
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
    await server.stop();
  });

  it('reads the Lease from the watch cache (resourceVersion=0), never with a quorum read from etcd', async () => {
    const a = make('node-a', new CountingClient(server));
    const b = make('node-b', new CountingClient(server));
    a.start();
    b.start();
    await step(2_000);
    expect(a.isLeader() !== b.isLeader()).toBe(true);
    const stats = server.trafficStats();
    expect(stats.cachedGets).toBeGreaterThanOrEqual(20);
    expect(stats.consistentGets).toBe(0);
  });

  it('one of two candidates creates and holds the Lease; the other stays follower while it is renewed', async () => {
    const a = make('node-a', new CountingClient(server));
    const b = make('node-b', new CountingClient(server));
    a.start();
    await step(100);
    b.start();
    await step(3000);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(b.holder()).toBe('node-a');
    const lease = server.get(...LEASE) as any;
    expect(lease.spec).toMatchObject({ holderIdentity: 'node-a', leaseDurationSeconds: 1, leaseTransitions: 0 });
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('a crashed leader (no release) is replaced only after the lease duration', async () => {
    const a = make('node-a', new CountingClient(server));
    const bClient = new CountingClient(server);
    const b = make('node-b', bClient);
    a.start();
    await step(100);
    b.start();
    await step(1000);
    await a.stop({ release: false });
    await step(700);
    expect(b.isLeader()).toBe(false); // the record changed < 1 s ago on b's clock
    await step(800);
    expect(b.isLeader()).toBe(true);
    expect((server.get(...LEASE) as any).spec).toMatchObject({ holderIdentity: 'node-b', leaseTransitions: 1 });
  });

  it('a stopping leader releases the Lease and the peer takes it at its next attempt', async () => {
    const a = make('node-a', new CountingClient(server));
    const b = make('node-b', new CountingClient(server));
    a.start();
    await step(100);
    b.start();
    await step(600);
    await a.stop();
    expect((server.get(...LEASE) as any).spec.holderIdentity).toBe('');
    await step(200);
    expect(b.isLeader()).toBe(true);
  });

  it('loses a race with optimistic concurrency: a peer wrote after the read → 409, no leadership, re-read', async () => {
    server.put({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'portway-lb-status', namespace: 'kube-system' },
      spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 },
    });
    const client = new CountingClient(server);
    const a = make('node-a', client);
    client.beforeNextUpdate = () => {
      const lease = server.get(...LEASE) as any;
      server.put({ ...lease, spec: { ...lease.spec, holderIdentity: 'node-z', leaseTransitions: 4 } });
    };
    a.start();
    await step(100);
    expect(a.isLeader()).toBe(false);
    expect(server.requests.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([409]);
    expect((server.get(...LEASE) as any).spec.holderIdentity).toBe('node-z');
    await step(400); // node-z's record is fresh on a's clock: a waits
    expect(a.isLeader()).toBe(false);
    expect(a.holder()).toBe('node-z');
    await step(1000); // node-z never renewed
    expect(a.isLeader()).toBe(true);
    expect((server.get(...LEASE) as any).spec).toMatchObject({ holderIdentity: 'node-a', leaseTransitions: 5 });
  });

  it('a leader that cannot renew steps down after the renew deadline, before the Lease expires elsewhere', async () => {
    const client = new CountingClient(server);
    const a = make('node-a', client);
    const changes: boolean[] = [];
    a.onLeadershipChange((l) => changes.push(l));
    a.start();
    await step(100);
    expect(a.isLeader()).toBe(true);
    client.down = true;
    await step(400);
    expect(a.isLeader()).toBe(true);
    await step(300);
    expect(a.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
    expect(logger.records.some((r) => r.message.includes('could not renew the Lease in time'))).toBe(true);
  });

  it('rejects an empty identity', () => {
    expect(() => make('', new CountingClient(server))).toThrow(/identity/);
  });
});
