import { describe, expect, it } from '@jest/globals';
import { emptyClusterState, type ClusterState } from '../../../src/model/cluster-state.js';
import {
  changeEventFromRaw,
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
  ObjectChangeTracker,
  parseTriggerTime,
  StateChangeDiffer,
  type ChangeEvent,
  type RawObject,
} from '../../../src/sync/agent-change-tracker.js';
import { endpoint, servicePort } from '../../fixtures/cluster-state.js';

const START = Date.parse('2026-01-01T10:00:00Z');

const slice = (name: string, rv: string, trigger?: string, service = 'web', ips = ['10.244.1.5']): RawObject => ({
  metadata: {
    namespace: 'demo',
    name,
    resourceVersion: rv,
    labels: { 'kubernetes.io/service-name': service },
    ...(trigger !== undefined ? { annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: trigger } } : {}),
  },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node-a' })),
});
const svc = (name: string, rv: string, port = 80, labels: Record<string, string> = {}): RawObject => ({
  metadata: { namespace: 'demo', name, resourceVersion: rv, labels },
  spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ name: 'http', port, protocol: 'TCP' }] },
});

/** Informer events as the API source hands them over. */
const add = (kind: string, current: RawObject) => changeEventFromRaw({ kind, current })!;
const update = (kind: string, previous: RawObject, current: RawObject) =>
  changeEventFromRaw({ kind, previous, current })!;
const del = (kind: string, previous: RawObject) => changeEventFromRaw({ kind, previous })!;

describe('parseTriggerTime', () => {
  it('reads RFC 3339 with and without fractions and offsets; ignores anything else', () => {
    expect(parseTriggerTime('2026-01-01T10:00:01Z')).toBe(START + 1000);
    expect(parseTriggerTime('2026-01-01T10:00:01.250Z')).toBe(START + 1250);
    expect(parseTriggerTime('2026-01-01T12:00:01+02:00')).toBe(START + 1000);
    expect(parseTriggerTime('yesterday')).toBeUndefined();
    expect(parseTriggerTime('2026-01-01')).toBeUndefined();
    expect(parseTriggerTime(undefined)).toBeUndefined();
  });
});

describe('ObjectChangeTracker (kube-proxy: every event counts; pending = net changes)', () => {
  it('counts every update of a burst to one Service, but it is one pending Service until a sync takes it', () => {
    const t = new ObjectChangeTracker(START);
    expect(t.record([add('Service', svc('a', '1'))])).toEqual({ services: 1, endpoints: 0 });
    t.takeChanges(); // a sync
    // Three updates of one Service between two syncs (possibly coalesced into one snapshot by the source).
    expect(
      t.record([
        update('Service', svc('a', '1'), svc('a', '2', 81)),
        update('Service', svc('a', '2', 81), svc('a', '3', 82)),
        update('Service', svc('a', '3', 82), svc('a', '4', 83)),
      ]),
    ).toEqual({ services: 3, endpoints: 0 });
    expect(t.pendingChanges).toEqual({ services: 1, endpoints: 0 });
    t.record([update('Service', svc('b', '1'), svc('b', '5', 90))]);
    expect(t.pendingChanges.services).toBe(2); // distinct Services
    t.takeChanges();
    expect(t.pendingChanges).toEqual({ services: 0, endpoints: 0 });
  });

  it('counts a no-op update (resync, relist, metadata only) without making anything pending', () => {
    const t = new ObjectChangeTracker(START);
    t.record([add('Service', svc('a', '1')), add('EndpointSlice', slice('web-1', '1'))]);
    t.takeChanges();
    expect(
      t.record([
        update('Service', svc('a', '1'), svc('a', '1')), // a resync / relist: same version
        update('Service', svc('a', '1'), svc('a', '2', 80, { team: 'x' })), // labels only
        update('EndpointSlice', slice('web-1', '1'), slice('web-1', '1')),
        update('EndpointSlice', slice('web-1', '1'), slice('web-1', '2', '2026-01-01T10:00:05Z')), // annotation only
      ]),
    ).toEqual({ services: 2, endpoints: 2 });
    expect(t.pendingChanges).toEqual({ services: 0, endpoints: 0 });
    expect(t.takeTriggerTimes()).toEqual([]); // no effective change, no latency sample
  });

  it('drops a Service change reverted before the sync; adding then deleting leaves nothing pending', () => {
    const t = new ObjectChangeTracker(START);
    t.record([add('Service', svc('a', '1'))]);
    t.takeChanges();
    t.record([update('Service', svc('a', '1'), svc('a', '2', 81))]);
    expect(t.pendingChanges.services).toBe(1);
    t.record([update('Service', svc('a', '2', 81), svc('a', '3', 80))]);
    expect(t.pendingChanges.services).toBe(0);
    expect(t.record([add('Service', svc('b', '4')), del('Service', svc('b', '4'))])).toEqual({
      services: 2,
      endpoints: 0,
    });
    expect(t.pendingChanges.services).toBe(0);
  });

  it('headless and ExternalName Services are counted but never pending (kube-proxy builds nothing for them)', () => {
    const t = new ObjectChangeTracker(START);
    const headless: RawObject = { metadata: { namespace: 'demo', name: 'h' }, spec: { clusterIP: 'None', ports: [] } };
    const external: RawObject = { metadata: { namespace: 'demo', name: 'x' }, spec: { type: 'ExternalName' } };
    expect(t.record([add('Service', headless), add('Service', external)]).services).toBe(2);
    expect(t.pendingChanges.services).toBe(0);
  });

  it('endpoints pending counts each effective slice event (kube-proxy Inc()s it), not no-ops; reset by a sync', () => {
    const t = new ObjectChangeTracker(START);
    t.record([add('EndpointSlice', slice('web-1', '1'))]);
    expect(t.pendingChanges.endpoints).toBe(1);
    t.takeChanges();
    t.record([
      update('EndpointSlice', slice('web-1', '1'), slice('web-1', '2', undefined, 'web', ['10.244.1.6'])),
      update('EndpointSlice', slice('web-1', '2'), slice('web-1', '3', undefined, 'web', ['10.244.1.7'])),
      update('EndpointSlice', slice('web-1', '3'), slice('web-1', '3', undefined, 'web', ['10.244.1.7'])), // no-op
    ]);
    expect(t.pendingChanges.endpoints).toBe(2);
    t.takeChanges();
    expect(t.pendingChanges.endpoints).toBe(0);
    // Compared with what the last sync took: the same content again is no change.
    t.record([update('EndpointSlice', slice('web-1', '3'), slice('web-1', '4', undefined, 'web', ['10.244.1.7']))]);
    expect(t.pendingChanges.endpoints).toBe(0);
    t.record([del('EndpointSlice', slice('web-1', '4', undefined, 'web', ['10.244.1.7']))]);
    expect(t.pendingChanges.endpoints).toBe(1);
    t.takeChanges();
    // Deleting a slice the tracker no longer holds changes nothing (but is counted).
    expect(t.record([del('EndpointSlice', slice('web-1', '4'))]).endpoints).toBe(1);
    expect(t.pendingChanges.endpoints).toBe(0);
  });

  it('ignores slices kube-proxy ignores: FQDN, or without their Service label', () => {
    expect(changeEventFromRaw({ kind: 'EndpointSlice', current: { ...slice('f', '1'), addressType: 'FQDN' } })).toBe(
      undefined,
    );
    expect(changeEventFromRaw({ kind: 'EndpointSlice', current: { ...slice('f', '1'), metadata: { namespace: 'demo', name: 'f' } } })).toBe(undefined);
    expect(changeEventFromRaw({ kind: 'Node', current: { metadata: { name: 'n' } } })).toBe(undefined);
  });
});

describe('ObjectChangeTracker trigger times', () => {
  it('collects trigger times of effective slice changes made after the start, once', () => {
    const t = new ObjectChangeTracker(START);
    t.record([
      add('EndpointSlice', slice('old', '1', '2026-01-01T09:59:59Z')),
      add('EndpointSlice', slice('web-1', '2', '2026-01-01T10:00:02Z')),
    ]);
    expect(t.takeChanges()).toEqual([START + 2000]); // the one older than the agent is not measured
    expect(t.takeTriggerTimes()).toEqual([]);
    t.record([
      update('EndpointSlice', slice('web-1', '2'), slice('web-1', '3', '2026-01-01T10:00:05Z', 'web', ['10.244.1.9'])),
    ]);
    expect(t.pendingCount).toBe(1);
    expect(t.takeTriggerTimes()).toEqual([START + 5000]);
  });

  it('ignores a missing or malformed annotation', () => {
    const t = new ObjectChangeTracker(START);
    t.record([add('EndpointSlice', slice('a', '1')), add('EndpointSlice', slice('b', '1', 'not a time'))]);
    expect(t.takeTriggerTimes()).toEqual([]);
  });

  it('a deleted slice drops its Service’s pending times (its annotation dates from its last update)', () => {
    const t = new ObjectChangeTracker(START);
    t.record([
      add('EndpointSlice', slice('web-1', '2', '2026-01-01T10:00:02Z')),
      add('EndpointSlice', slice('api-1', '2', '2026-01-01T10:00:03Z', 'api')),
      del('EndpointSlice', slice('web-1', '2', '2026-01-01T10:00:02Z')),
    ]);
    expect(t.takeTriggerTimes()).toEqual([START + 3000]);
  });

  it('times handed back after a failed sync are measured by the next one', () => {
    const t = new ObjectChangeTracker(START);
    t.record([add('EndpointSlice', slice('web-1', '2', '2026-01-01T10:00:02Z'))]);
    const taken = t.takeChanges();
    t.returnTriggerTimes(taken);
    t.record([
      update('EndpointSlice', slice('web-1', '2'), slice('web-1', '3', '2026-01-01T10:00:04Z', 'web', ['10.244.1.8'])),
    ]);
    expect(t.takeTriggerTimes().sort()).toEqual([START + 2000, START + 4000]);
  });
});

describe('StateChangeDiffer (manifests: a reload is the event)', () => {
  const state = (...ports: ClusterState['servicePorts']): ClusterState => ({ ...emptyClusterState(), servicePorts: ports });
  const kinds = (events: ChangeEvent[]) => events.map((e) => `${e.kind} ${e.kind === 'service' ? e.key : e.service}`);

  it('counts what a reload changed: a Service’s ports and its endpoint set, each once; unchanged objects nothing', () => {
    const d = new StateChangeDiffer();
    const web = servicePort('demo/web:http', { clusterIPs: ['10.96.0.10'], endpoints: [endpoint('10.244.1.5', 8080)] });
    const api = servicePort('demo/api:http', { clusterIPs: ['10.96.0.11'] });
    expect(kinds(d.diff(state(web, api)))).toEqual([
      'service demo/web',
      'endpoints demo/web',
      'service demo/api',
      'endpoints demo/api',
    ]);
    expect(d.diff(state(web, api))).toEqual([]); // re-read unchanged
    // A re-parsed copy with equal content is no event either.
    expect(d.diff(state({ ...web }, api))).toEqual([]);
    expect(kinds(d.diff(state({ ...web, endpoints: [endpoint('10.244.1.6', 8080)] }, api)))).toEqual(['endpoints demo/web']);
    expect(kinds(d.diff(state({ ...web, port: 81, endpoints: [endpoint('10.244.1.6', 8080)] })))).toEqual([
      'service demo/web',
      'service demo/api',
      'endpoints demo/api',
    ]);
    const t = new ObjectChangeTracker(START);
    t.record(new StateChangeDiffer().diff(state(web, api)));
    expect(t.pendingChanges).toEqual({ services: 2, endpoints: 2 });
  });
});
