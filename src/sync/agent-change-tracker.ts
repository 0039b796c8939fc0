// kube-proxy's change trackers, for its change metrics and its network programming latency: one call
// per event the source hands over (an informer add/update/delete, or what a manifest reload changed).
//
// What kube-proxy does (pkg/proxy/servicechangetracker.go, endpointschangetracker.go, endpointslicecache.go):
// - kubeproxy_sync_proxy_rules_service_changes_total: +1 on every Service event handled — add,
//   update (a no-op update from a resync or relist included) and delete, counted before anything
//   is compared. (A dual-stack kube-proxy hands each event to both family proxiers and counts it
//   twice; portway has one tracker for both families and counts it once.)
// - …_service_changes_pending: the number of distinct Services whose proxy view (the ports and
//   addresses kube-proxy builds from the object; nothing for headless/ExternalName Services) differs
//   from the one the last sync took: updates of one Service merge, a change reverted before the sync
//   drops out. 0 when a sync takes the changes.
// - …_endpoint_changes_total: +1 on every EndpointSlice event of an IPv4/IPv6 slice with a
//   kubernetes.io/service-name label, no-op updates included.
// - …_endpoint_changes_pending: +1 for each such event that changes the slice's proxy view (ports,
//   addresses, node, zone, hints, conditions) compared with its pending or last-taken version; a no-op
//   update adds nothing, but several effective updates of one slice each add one. 0 when a sync takes them.
// - A slice's `endpoints.kubernetes.io/last-change-trigger-time` later than the tracker's start is kept,
//   per Service, for effective changes only; once a sync including it has been applied, "now − trigger
//   time" goes to kubeproxy_network_programming_duration_seconds. A deletion drops its Service's times
//   (the annotation dates from the last update, not the deletion).
//
// Pure: no clock, no I/O — times come in.
import { sameData } from '../model/same-data.js';
import type { ClusterState, ServicePort } from '../model/cluster-state.js';
import { appendAll } from '../model/arrays.js';

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
  [field: string]: unknown;
}

/**
 * One event for the trackers. `previous`/`current` are proxy views (compared by value; null = the
 * proxy has nothing for it: absent, deleted, headless). An endpoints event is for one slice of a Service.
 */
export type ChangeEvent =
  | { kind: 'service'; key: string; previous: unknown; current: unknown }
  | { kind: 'endpoints'; service: string; slice: string; current: unknown; triggerTimeMs?: number };

/** How a source's object event reads: informer semantics (add = no previous, delete = no current). */
export interface RawObjectEvent {
  kind: string;
  previous?: RawObject;
  current?: RawObject;
}

/** RFC 3339 → ms since the epoch; undefined for anything else (a bad annotation is ignored, as kube-proxy does). */
export function parseTriggerTime(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text))
    return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

const keyOf = (o: RawObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/**
 * What kube-proxy builds from a Service (its ServicePortMap): nothing for ExternalName and headless
 * Services; otherwise the spec and the load-balancer status. Metadata (labels, annotations,
 * resourceVersion) is not part of it, so an update touching only those is no pending change.
 */
export function serviceProxyView(service: RawObject | undefined): unknown {
  if (service === undefined) return null;
  const spec = (service.spec ?? {}) as { type?: string; clusterIP?: string };
  if (spec.type === 'ExternalName' || !spec.clusterIP || spec.clusterIP === 'None') return null;
  const status = (service.status ?? {}) as { loadBalancer?: unknown };
  return { spec, loadBalancer: status.loadBalancer ?? null };
}

interface RawEndpoint {
  addresses?: string[];
  nodeName?: string;
  zone?: string;
  hints?: unknown;
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
}

/** kube-proxy's endpointSliceInfo: ports by number, endpoints by address, conditions with their defaults. */
export function sliceProxyView(slice: RawObject): unknown {
  const ports = [...((slice.ports ?? []) as Array<{ port?: number }>)].sort(
    (a, b) => (a.port ?? 0) - (b.port ?? 0),
  );
  const endpoints = ((slice.endpoints ?? []) as RawEndpoint[])
    .map((e) => ({
      addresses: e.addresses ?? [],
      nodeName: e.nodeName ?? null,
      zone: e.zone ?? null,
      hints: e.hints ?? null,
      ready: e.conditions?.ready ?? true,
      serving: e.conditions?.serving ?? true,
      terminating: e.conditions?.terminating ?? false,
    }))
    .sort((a, b) => {
      const x = a.addresses.join(',');
      const y = b.addresses.join(',');
      return x < y ? -1 : x > y ? 1 : 0;
    });
  return { ports, endpoints };
}

/**
 * An informer event as the trackers read it; undefined when kube-proxy ignores it (another kind, an
 * FQDN slice, a slice without its Service label or name).
 */
export function changeEventFromRaw(event: RawObjectEvent): ChangeEvent | undefined {
  const object = event.current ?? event.previous;
  if (object === undefined) return undefined;
  if (event.kind === 'Service') {
    return {
      kind: 'service',
      key: keyOf(object),
      previous: serviceProxyView(event.previous),
      current: serviceProxyView(event.current),
    };
  }
  if (event.kind !== 'EndpointSlice') return undefined;
  const addressType = object.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6') return undefined;
  const service = object.metadata?.labels?.[SERVICE_NAME_LABEL];
  const namespace = object.metadata?.namespace;
  const name = object.metadata?.name;
  if (!service || !namespace || !name) return undefined;
  if (event.current === undefined) return { kind: 'endpoints', service: `${namespace}/${service}`, slice: name, current: null };
  const t = parseTriggerTime(event.current.metadata?.annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION]);
  return {
    kind: 'endpoints',
    service: `${namespace}/${service}`,
    slice: name,
    current: sliceProxyView(event.current),
    ...(t !== undefined ? { triggerTimeMs: t } : {}),
  };
}

/** Per Service of a ClusterState: its ports without endpoints, and its endpoints per port. */
interface ServiceViews {
  ports: ServicePort[];
}

function groupByService(state: ClusterState): Map<string, ServiceViews> {
  const out = new Map<string, ServiceViews>();
  for (const sp of state.servicePorts) {
    const key = `${sp.namespace}/${sp.serviceName}`;
    const v = out.get(key);
    if (v) v.ports.push(sp);
    else out.set(key, { ports: [sp] });
  }
  return out;
}

const portsView = (ports: readonly ServicePort[]): unknown =>
  ports.map(({ endpoints: _endpoints, ...rest }) => rest);
const endpointsView = (ports: readonly ServicePort[]): unknown =>
  ports.map((p) => ({ id: p.id, protocol: p.protocol, endpoints: p.endpoints }));

/**
 * The manifest directory's events. Files have no watch events, only reloads, so a reload is the
 * event: every Service whose ports changed in it (added, changed, removed) is one Service event and
 * every Service whose endpoint set changed is one endpoints event (the Service's endpoints act as its
 * one slice). Objects a reload reads back unchanged are not events: a saved file is not a resync.
 * Services without ports here (headless, ExternalName) have no proxy view, as in kube-proxy.
 */
export class StateChangeDiffer {
  private previous = new Map<string, ServiceViews>();

  diff(state: ClusterState): ChangeEvent[] {
    const next = groupByService(state);
    const events: ChangeEvent[] = [];
    const same = (a: readonly ServicePort[], b: readonly ServicePort[]): boolean =>
      a.length === b.length && a.every((p, i) => p === b[i]);
    for (const [key, now] of next) {
      const before = this.previous.get(key);
      if (before !== undefined && same(before.ports, now.ports)) continue; // identity: unchanged
      const beforePorts = before?.ports ?? [];
      const sv = { previous: before ? portsView(beforePorts) : null, current: portsView(now.ports) };
      if (!sameData(sv.previous, sv.current)) events.push({ kind: 'service', key, ...sv });
      const ev = endpointsView(now.ports);
      if (before === undefined || !sameData(endpointsView(beforePorts), ev))
        events.push({ kind: 'endpoints', service: key, slice: key, current: ev });
    }
    for (const key of this.previous.keys()) {
      if (next.has(key)) continue;
      events.push({ kind: 'service', key, previous: portsView(this.previous.get(key)!.ports), current: null });
      events.push({ kind: 'endpoints', service: key, slice: key, current: null });
    }
    this.previous = next;
    return events;
  }
}

export interface ChangeCounts {
  services: number;
  endpoints: number;
}

interface SliceState {
  applied: Map<string, unknown>;
  pending: Map<string, unknown>;
}

export class ObjectChangeTracker {
  /** Service key → its proxy view when the last sync took the changes (first event's `previous`). */
  private serviceItems = new Map<string, { previous: unknown }>();
  private readonly slices = new Map<string, SliceState>();
  private pendingEndpointEvents = 0;
  /** Pending trigger times per Service ("ns/name"), in arrival order. */
  private pending = new Map<string, number[]>();

  /** startedAtMs: trigger times at or before it belong to changes made before this agent ran. */
  constructor(private readonly startedAtMs: number) {}

  /** Record events; returns how many of each kind were handled (what the _total counters add). */
  record(events: Iterable<ChangeEvent>): ChangeCounts {
    let services = 0;
    let endpoints = 0;
    for (const e of events) {
      if (e.kind === 'service') {
        services++;
        this.serviceEvent(e);
      } else {
        endpoints++;
        this.endpointsEvent(e);
      }
    }
    return { services, endpoints };
  }

  private serviceEvent(e: Extract<ChangeEvent, { kind: 'service' }>): void {
    let item = this.serviceItems.get(e.key);
    if (item === undefined) this.serviceItems.set(e.key, (item = { previous: e.previous }));
    if (sameData(item.previous, e.current)) this.serviceItems.delete(e.key);
  }

  private endpointsEvent(e: Extract<ChangeEvent, { kind: 'endpoints' }>): void {
    let s = this.slices.get(e.service);
    if (s === undefined) this.slices.set(e.service, (s = { applied: new Map(), pending: new Map() }));
    const remove = e.current === null;
    // Compared with the pending version if any, else with the applied one (endpointslicecache's esInfoChanged).
    const known = s.pending.has(e.slice) ? s.pending : s.applied.has(e.slice) ? s.applied : undefined;
    const changed = known !== undefined ? !sameData(known.get(e.slice), e.current) : !remove;
    if (!changed) {
      if (s.applied.size === 0 && s.pending.size === 0) this.slices.delete(e.service);
      return;
    }
    s.pending.set(e.slice, e.current);
    this.pendingEndpointEvents++;
    if (remove) {
      // A deleted slice's annotation dates from its last update, not from the deletion: measuring it
      // would report a made-up latency. kube-proxy drops the Service's pending times instead.
      this.pending.delete(e.service);
      return;
    }
    const t = e.triggerTimeMs;
    if (t === undefined || t <= this.startedAtMs) return;
    const list = this.pending.get(e.service);
    if (list) list.push(t);
    else this.pending.set(e.service, [t]);
  }

  /** What the _pending gauges show: distinct Services with a net change; effective endpoint events. */
  get pendingChanges(): ChangeCounts {
    return { services: this.serviceItems.size, endpoints: this.pendingEndpointEvents };
  }

  /** A sync takes the changes recorded so far: pending drops to 0; returns their trigger times. */
  takeChanges(): number[] {
    this.serviceItems = new Map();
    this.pendingEndpointEvents = 0;
    for (const [service, s] of this.slices) {
      for (const [name, view] of s.pending) {
        if (view === null) s.applied.delete(name);
        else s.applied.set(name, view);
      }
      s.pending.clear();
      if (s.applied.size === 0) this.slices.delete(service);
    }
    return this.takeTriggerTimes();
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
    appendAll(list, times);
    this.pending.set('', list);
  }

  /** How many trigger times wait for a sync. */
  get pendingCount(): number {
    let n = 0;
    for (const l of this.pending.values()) n += l.length;
    return n;
  }
}
