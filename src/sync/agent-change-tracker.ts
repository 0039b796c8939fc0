// What changed between two snapshots of the API's raw objects, for kube-proxy's change metrics and its
// network programming latency (pkg/proxy/endpointschangetracker.go): every new or updated EndpointSlice
// whose `endpoints.kubernetes.io/last-change-trigger-time` annotation is later than the tracker's start
// contributes that time; once a sync that includes the change has been applied, "now − trigger time"
// is observed in kubeproxy_network_programming_duration_seconds. Pure: no clock, no I/O — times come in.
//
// Informer objects are replaced, never mutated, so object identity says "unchanged" in one set lookup;
// a relist hands out new copies, which an equal resourceVersion recognises as the same version.

/** The annotation the EndpointSlice controller sets to when the change it reflects was triggered. */
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Label tying an EndpointSlice to its Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface RawObject {
  metadata?: {
    namespace?: string;
    name?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
}

export interface ObservedChanges {
  /** Services added, updated or deleted since the previous observe(). */
  services: number;
  /** EndpointSlices added, updated or deleted since the previous observe(). */
  endpoints: number;
}

/** RFC 3339 → ms since the epoch; undefined for anything else (a bad annotation is ignored, as kube-proxy does). */
export function parseTriggerTime(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text))
    return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

class KindTracker {
  /** Object → its key, for every object of the last call (identity = unchanged, one lookup). */
  private known = new Map<RawObject, string>();
  private byKey = new Map<string, RawObject>();

  /** Calls back for every added/updated/deleted object; returns how many there were. */
  diff(objects: ReadonlyArray<RawObject>, onChange: (object: RawObject, deleted: boolean) => void): number {
    let changes = 0;
    for (const object of objects) {
      if (this.known.has(object)) continue;
      const key = `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
      const previous = this.byKey.get(key);
      if (previous !== undefined) this.known.delete(previous);
      this.byKey.set(key, object);
      this.known.set(object, key);
      const version = object.metadata?.resourceVersion;
      if (previous !== undefined && version !== undefined && version === previous.metadata?.resourceVersion)
        continue;
      changes++;
      onChange(object, false);
    }
    // Deletions: known objects absent from this call (only looked for when the counts say so).
    if (this.known.size > objects.length) {
      const present = new Set(objects);
      for (const [object, key] of this.known) {
        if (present.has(object)) continue;
        this.known.delete(object);
        this.byKey.delete(key);
        changes++;
        onChange(object, true);
      }
    }
    return changes;
  }
}

export class ObjectChangeTracker {
  private readonly services = new KindTracker();
  private readonly slices = new KindTracker();
  /** Pending trigger times per Service ("ns/name"), in arrival order. */
  private pending = new Map<string, number[]>();

  /** startedAtMs: trigger times at or before it belong to changes made before this agent ran. */
  constructor(private readonly startedAtMs: number) {}

  /** Compare with the previous call; record trigger times of changed slices. */
  observe(services: ReadonlyArray<RawObject>, endpointSlices: ReadonlyArray<RawObject>): ObservedChanges {
    const serviceChanges = this.services.diff(services, () => undefined);
    const endpointChanges = this.slices.diff(endpointSlices, (slice, deleted) => {
      const service = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? ''}`;
      if (deleted) {
        // A deleted slice's annotation dates from its last update, not from the deletion: measuring it
        // would report a made-up latency. kube-proxy drops the Service's pending times instead.
        this.pending.delete(service);
        return;
      }
      const t = parseTriggerTime(slice.metadata?.annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION]);
      if (t === undefined || t <= this.startedAtMs) return;
      const list = this.pending.get(service);
      if (list) list.push(t);
      else this.pending.set(service, [t]);
    });
    return { services: serviceChanges, endpoints: endpointChanges };
  }

  /** Trigger times of the changes recorded so far (the next sync applies them); clears them. */
  takeTriggerTimes(): number[] {
    const out = [...this.pending.values()].flat();
    this.pending = new Map();
    return out;
  }

  /** A sync failed: its trigger times are measured by the sync that finally applies them. */
  returnTriggerTimes(times: readonly number[]): void {
    if (times.length === 0) return;
    const list = this.pending.get('') ?? [];
    list.push(...times);
    this.pending.set('', list);
  }

  /** How many trigger times wait for a sync. */
  get pendingCount(): number {
    let n = 0;
    for (const l of this.pending.values()) n += l.length;
    return n;
  }
}
