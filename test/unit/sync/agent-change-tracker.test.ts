import { describe, expect, it } from '@jest/globals';
import {
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
  ObjectChangeTracker,
  parseTriggerTime,
} from '../../../src/sync/agent-change-tracker.js';

const START = Date.parse('2026-01-01T10:00:00Z');

const slice = (name: string, rv: string, trigger?: string, service = 'web') => ({
  metadata: {
    namespace: 'demo',
    name,
    resourceVersion: rv,
    labels: { 'kubernetes.io/service-name': service },
    ...(trigger !== undefined ? { annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: trigger } } : {}),
  },
});
const svc = (name: string, rv: string) => ({ metadata: { namespace: 'demo', name, resourceVersion: rv } });

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

describe('ObjectChangeTracker', () => {
  it('counts adds, updates and deletes per kind; an unchanged object or a relisted copy is no change', () => {
    const t = new ObjectChangeTracker(START);
    const a = svc('a', '1');
    const s1 = slice('web-1', '5');
    expect(t.observe([a], [s1])).toEqual({ services: 1, endpoints: 1 });
    expect(t.observe([a], [s1])).toEqual({ services: 0, endpoints: 0 });
    // A relist hands out new copies of the same versions.
    expect(t.observe([svc('a', '1')], [slice('web-1', '5')])).toEqual({ services: 0, endpoints: 0 });
    expect(t.observe([svc('a', '2')], [])).toEqual({ services: 1, endpoints: 1 });
  });

  it('collects trigger times of changed slices made after the start, once', () => {
    const t = new ObjectChangeTracker(START);
    t.observe([], [slice('old', '1', '2026-01-01T09:59:59Z'), slice('web-1', '2', '2026-01-01T10:00:02Z')]);
    expect(t.takeTriggerTimes()).toEqual([START + 2000]); // the one older than the agent is not measured
    expect(t.takeTriggerTimes()).toEqual([]);
    t.observe([], [slice('old', '1', '2026-01-01T09:59:59Z'), slice('web-1', '3', '2026-01-01T10:00:05Z')]);
    expect(t.pendingCount).toBe(1);
    expect(t.takeTriggerTimes()).toEqual([START + 5000]);
  });

  it('ignores a missing or malformed annotation', () => {
    const t = new ObjectChangeTracker(START);
    t.observe([], [slice('a', '1'), slice('b', '1', 'not a time')]);
    expect(t.takeTriggerTimes()).toEqual([]);
  });

  it('a deleted slice drops its Service’s pending times (its annotation dates from its last update)', () => {
    const t = new ObjectChangeTracker(START);
    t.observe(
      [],
      [slice('web-1', '2', '2026-01-01T10:00:02Z'), slice('api-1', '2', '2026-01-01T10:00:03Z', 'api')],
    );
    t.observe([], [slice('api-1', '2', '2026-01-01T10:00:03Z', 'api')]);
    expect(t.takeTriggerTimes()).toEqual([START + 3000]);
  });

  it('times handed back after a failed sync are measured by the next one', () => {
    const t = new ObjectChangeTracker(START);
    t.observe([], [slice('web-1', '2', '2026-01-01T10:00:02Z')]);
    const taken = t.takeTriggerTimes();
    t.returnTriggerTimes(taken);
    t.observe([], [slice('web-1', '3', '2026-01-01T10:00:04Z')]);
    expect(t.takeTriggerTimes().sort()).toEqual([START + 2000, START + 4000]);
  });
});
