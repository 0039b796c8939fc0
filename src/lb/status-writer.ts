// Cluster mode: the allocation written back to the API, by one agent at a time (the holder of the Lease).
// Every agent computes the same allocation (lb-controller); only the leader sends the status patches
// (status.loadBalancer.ingress, merge patch on the /status subresource) and the Events that explain them:
// IPAllocated (Normal) when a Service gets its addresses, AllocationFailed (Warning) with the allocator's
// reason when it cannot get one. Events are deduplicated: the same event for the same Service is sent once,
// not on every sync. Non-leaders keep the latest allocation so a new leader writes at once.
import type { ServiceInfo } from '../model/cluster-state.js';
import { canonicalIP } from '../model/ip.js';
import type { Logger } from '../observe/logger.js';
import { apiErrorMessage, type KubeWriteClient } from '../sources/api/api-writer.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiWriter } from '../sources/api/api-writer.js';
import { LeaseElector } from '../sources/api/lease-election.js';
import type { Clock } from '../sync/clock.js';
import { type Leadership, LeaderGatedStatusWriter } from './leader-writes.js';
import { type AllocationResult, isPortwayLoadBalancer, serviceKey } from './allocator.js';
import { planIngressStatusPatches } from './status.js';

export const EVENT_REASON_ALLOCATED = 'IPAllocated';
export const EVENT_REASON_ALLOCATION_FAILED = 'AllocationFailed';

/** An Event this writer wants to exist for a Service. */
export interface ServiceEvent {
  namespace: string;
  name: string;
  uid?: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** The object the Event is about, when not a v1 Service (the Ingress writer's Events). */
  involved?: { apiVersion: string; kind: string };
}

/**
 * The Warning events the allocation calls for: one per portway Service without an address, carrying the
 * allocator's reason. Pure; namespace/name order.
 */
export function planFailureEvents(
  services: ServiceInfo[],
  result: AllocationResult,
  loadBalancerClass?: string,
): ServiceEvent[] {
  return services
    .filter((s) => isPortwayLoadBalancer(s, loadBalancerClass) && !result.assignments.has(serviceKey(s)))
    .sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1))
    .map((s) => ({
      namespace: s.namespace,
      name: s.name,
      ...(s.uid !== undefined ? { uid: s.uid } : {}),
      type: 'Warning' as const,
      reason: EVENT_REASON_ALLOCATION_FAILED,
      message: `Failed to allocate IP for "${serviceKey(s)}": ${result.reasons.get(serviceKey(s)) ?? 'no address pool gave it an address'}`,
    }));
}

/** A v1 Event object about a Service. */
export function buildServiceEvent(
  ev: ServiceEvent,
  opts: { nowMs: number; component: string; host: string },
): Record<string, unknown> {
  const at = new Date(opts.nowMs).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${ev.name}.`, namespace: ev.namespace },
    involvedObject: {
      apiVersion: ev.involved?.apiVersion ?? 'v1',
      kind: ev.involved?.kind ?? 'Service',
      namespace: ev.namespace,
      name: ev.name,
      ...(ev.uid !== undefined ? { uid: ev.uid } : {}),
    },
    type: ev.type,
    reason: ev.reason,
    message: ev.message,
    source: { component: opts.component, host: opts.host },
    reportingComponent: opts.component,
    reportingInstance: opts.host,
    firstTimestamp: at,
    lastTimestamp: at,
    eventTime: null,
    count: 1,
  };
}

export type { Leadership } from './leader-writes.js';

export interface LoadBalancerStatusWriterOptions {
  client: KubeWriteClient;
  leadership: Leadership;
  /** This node (Event source.host / reportingInstance). */
  nodeName: string;
  logger: Logger;
  clock: Clock;
  wallClock?: () => number;
  loadBalancerClass?: string;
  /** Delay before retrying after a failed write. */
  retryMs?: number;
}

const ingressKey = (ips: string[]): string => ips.join(',');

export class LoadBalancerStatusWriter extends LeaderGatedStatusWriter {
  private latest: { services: ServiceInfo[]; allocation: AllocationResult } | null = null;
  private readonly wallClock: () => number;

  constructor(private readonly opts: LoadBalancerStatusWriterOptions) {
    super(opts.leadership, { ...opts, label: 'LoadBalancer status' });
    this.wallClock = opts.wallClock ?? Date.now;
  }

  /** The newest allocation and the Services as read from the API (their status as it is there). */
  update(services: ServiceInfo[], allocation: AllocationResult): void {
    this.latest = { services, allocation };
    this.request();
  }

  protected hasInput(): boolean {
    return this.latest !== null;
  }

  /** One pass over the latest allocation; false when some write failed (retried later). */
  protected async writeOnce(): Promise<boolean> {
    const latest = this.latest;
    if (!latest) return true;
    const { services, allocation } = latest;
    const lbClass = this.opts.loadBalancerClass;
    const present = new Set(services.map(serviceKey));
    for (const key of [...this.written.keys()]) if (!present.has(key)) this.written.delete(key);
    for (const key of [...this.emitted.keys()]) if (!present.has(key)) this.emitted.delete(key);
    const observed = new Map(
      services.map((s) => [serviceKey(s), ingressKey(s.statusIngress.map((i) => canonicalIP(i.ip) ?? i.ip))]),
    );
    const byKey = new Map(services.map((s) => [serviceKey(s), s]));
    let ok = true;

    for (const p of planIngressStatusPatches(services, allocation, lbClass)) {
      if (!this.writes.mayWrite()) return true;
      const key = `${p.namespace}/${p.name}`;
      const wanted = ingressKey(p.patch.status.loadBalancer.ingress.map((i) => i.ip));
      const seen = observed.get(key) ?? '';
      const prior = this.written.get(key);
      // Already sent; the informer has not shown it yet. A different observed status means someone else
      // changed it since, and it is patched again.
      if (prior && prior.wanted === wanted && prior.seenBefore === seen) continue;
      const path = `/api/v1/namespaces/${encodeURIComponent(p.namespace)}/services/${encodeURIComponent(p.name)}/status`;
      this.stats.patches += 1;
      const res = await this.opts.client.patch(path, p.patch, 'merge');
      if (res.status === 404) continue; // deleted meanwhile
      if (res.status !== 200) {
        this.opts.logger.warn(
          { service: key, err: apiErrorMessage(res) },
          'LoadBalancer status: cannot patch',
        );
        ok = false;
        continue;
      }
      this.written.set(key, { wanted, seenBefore: seen });
      this.opts.logger.info({ service: key, ingress: wanted }, 'LoadBalancer status written');
      const assignment = allocation.assignments.get(key);
      const svc = byKey.get(key);
      if (assignment && svc) {
        ok =
          (await this.emit({
            namespace: svc.namespace,
            name: svc.name,
            ...(svc.uid !== undefined ? { uid: svc.uid } : {}),
            type: 'Normal',
            reason: EVENT_REASON_ALLOCATED,
            message: `Assigned IP ${JSON.stringify(assignment.ips)} from pool "${assignment.pool}"`,
          })) && ok;
      }
    }
    for (const key of observed.keys()) {
      const w = this.written.get(key);
      if (w && w.wanted === observed.get(key)) this.written.delete(key); // the informer caught up
    }

    for (const ev of planFailureEvents(services, allocation, lbClass)) {
      if (!this.writes.mayWrite()) return true;
      ok = (await this.emit(ev)) && ok;
    }
    return ok;
  }

  /** Send an event unless the same one was the last sent for this Service. */
  private async emit(ev: ServiceEvent): Promise<boolean> {
    const key = `${ev.namespace}/${ev.name}`;
    const signature = `${ev.reason}\n${ev.message}`;
    if (this.emitted.get(key) === signature) return true;
    this.stats.events += 1;
    const res = await this.opts.client.create(
      `/api/v1/namespaces/${encodeURIComponent(ev.namespace)}/events`,
      buildServiceEvent(ev, { nowMs: this.wallClock(), component: 'portway-lb', host: this.opts.nodeName }),
    );
    if (res.status !== 201 && res.status !== 200) {
      this.opts.logger.warn(
        { service: key, reason: ev.reason, err: apiErrorMessage(res) },
        'LoadBalancer status: cannot create Event',
      );
      return false;
    }
    this.emitted.set(key, signature);
    return true;
  }
}

export interface CreateStatusWriterOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  /** Namespace of the Lease portway-lb-status. */
  leaseNamespace: string;
  loadBalancerClass: string;
  logger: Logger;
  clock: Clock;
}

/** `portway run` in cluster mode: the writer with its Lease election (15 s lease, 2 s retry). Starts nothing. */
export function createLoadBalancerStatusWriter(opts: CreateStatusWriterOptions): LoadBalancerStatusWriter {
  const client = new KubeApiWriter({ kubeConfig: opts.kubeConfig });
  const leadership = new LeaseElector({
    client,
    identity: opts.nodeName,
    namespace: opts.leaseNamespace,
    clock: opts.clock,
    logger: opts.logger,
  });
  return new LoadBalancerStatusWriter({
    client,
    leadership,
    nodeName: opts.nodeName,
    logger: opts.logger,
    clock: opts.clock,
    loadBalancerClass: opts.loadBalancerClass,
  });
}
