// Cluster mode: Ingress status and backend Events written back to the API by one agent at a time (the
// holder of a Lease). Every agent evaluates the same Ingresses (src/ingress/evaluate.ts); only the leader
// sends, and only for the classes in `ingress.classes` — a controller that publishes its own status must
// not be fought. status.loadBalancer.ingress is patched (merge, /status subresource) only when the wanted
// value differs from what the Ingress shows; a Warning Event (BackendCheckFailed) is sent once per change
// of an Ingress's failing backends, not on every sync.
//
// API use (for RBAC): PATCH networking.k8s.io ingresses/status; POST events (core) in the Ingress's
// namespace; the Lease (coordination.k8s.io leases get/create/update) named portway-ingress-status.
import type { KubeConfig } from '@kubernetes/client-node';
import { type Leadership, LeaderGatedStatusWriter } from '../lb/leader-writes.js';
import { buildServiceEvent, type ServiceEvent } from '../lb/status-writer.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import { apiErrorMessage, KubeApiWriter, type KubeWriteClient } from '../sources/api/api-writer.js';
import { LeaseElector } from '../sources/api/lease-election.js';
import type { Clock } from '../sync/clock.js';
import { type PublishedAddress, sameAddresses } from './address.js';
import { BACKEND_STATES, type BackendState } from './backends.js';
import type { HandledClass } from './classes.js';
import { evaluateIngresses, type IngressReport } from './evaluate.js';

export const EVENT_REASON_BACKEND_FAILED = 'BackendCheckFailed';
export const INGRESS_LEASE_NAME = 'portway-ingress-status';

const FAILING: ReadonlySet<BackendState> = new Set(['noService', 'noPort', 'noEndpoints']);

export type IngressState = Pick<
  ClusterState,
  'ingresses' | 'ingressClasses' | 'services' | 'servicePorts' | 'nodes'
>;

/** The status patch body for `addresses`. Pure. */
export function ingressStatusPatch(addresses: readonly PublishedAddress[]): Record<string, unknown> {
  return {
    status: {
      loadBalancer: {
        ingress: addresses.map((a) =>
          a.ports ? { ip: a.ip, ports: a.ports.map((p) => ({ ...p })) } : { ip: a.ip },
        ),
      },
    },
  };
}

/** The Warning Event a handled Ingress with failing backends calls for, or null. Pure. */
export function planBackendEvent(report: IngressReport): ServiceEvent | null {
  if (report.handled === null) return null;
  const failing = report.backends.filter((b) => FAILING.has(b.state));
  if (failing.length === 0) return null;
  const parts = failing.map((b) => {
    const where = b.path === null ? 'defaultBackend' : `${b.host || '*'}${b.path.path || '/'}`;
    return `${where}: ${b.reason}`;
  });
  const ing = report.ingress;
  return {
    namespace: ing.namespace,
    name: ing.name,
    ...(ing.uid !== undefined ? { uid: ing.uid } : {}),
    type: 'Warning',
    reason: EVENT_REASON_BACKEND_FAILED,
    message: `${failing.length} backend${failing.length === 1 ? '' : 's'} failing: ${parts.join('; ')}`,
    involved: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  };
}

/** Backends of every Ingress by check state (the portway_ingress_backends{state} gauge). Pure. */
export function countBackendStates(reports: readonly IngressReport[]): Record<BackendState, number> {
  const counts = Object.fromEntries(BACKEND_STATES.map((s) => [s, 0])) as Record<BackendState, number>;
  for (const r of reports) for (const b of r.backends) counts[b.state] += 1;
  return counts;
}

export interface IngressStatusWriterOptions {
  client: KubeWriteClient;
  leadership: Leadership;
  classes: readonly HandledClass[];
  /** The agents' nodePortAddresses: which node addresses a NodePort controller is published on. */
  nodePortAddresses?: readonly string[];
  nodeName: string;
  logger: Logger;
  clock: Clock;
  wallClock?: () => number;
  retryMs?: number;
  /** Called with the backend counts of every evaluation (every agent, leader or not). */
  onBackendCounts?: (counts: Record<BackendState, number>) => void;
}

export class IngressStatusWriter extends LeaderGatedStatusWriter {
  private reports: IngressReport[] | null = null;

  constructor(private readonly opts: IngressStatusWriterOptions) {
    super(opts.leadership, { ...opts, label: 'Ingress status' });
  }

  /** The newest state (after LoadBalancer allocation, with every Ingress's status as read). */
  update(state: IngressState): void {
    this.reports = evaluateIngresses(state, this.opts.classes, this.opts.nodePortAddresses ?? []);
    this.opts.onBackendCounts?.(countBackendStates(this.reports));
    this.request();
  }

  protected hasInput(): boolean {
    return this.reports !== null;
  }

  protected async writeOnce(): Promise<boolean> {
    const reports = this.reports;
    if (!reports) return true;
    const present = new Set(reports.map((r) => `${r.ingress.namespace}/${r.ingress.name}`));
    for (const key of [...this.written.keys()]) if (!present.has(key)) this.written.delete(key);
    for (const key of [...this.emitted.keys()]) if (!present.has(key)) this.emitted.delete(key);
    let ok = true;
    for (const r of reports) {
      if (!this.writes.mayWrite()) return true;
      if (r.handled === null || r.address === null) continue; // not our class: never written
      const key = `${r.ingress.namespace}/${r.ingress.name}`;
      ok = (await this.writeStatus(key, r, r.address.addresses)) && ok;
      const ev = planBackendEvent(r);
      if (ev === null)
        this.emitted.set(key, ''); // recovered: the next failure is news again
      else ok = (await this.emit(key, ev)) && ok;
    }
    return ok;
  }

  private async writeStatus(
    key: string,
    r: IngressReport,
    wanted: readonly PublishedAddress[],
  ): Promise<boolean> {
    const observed = r.ingress.statusIngress.map((i) => ({
      ip: i.ip,
      ...(i.ports ? { ports: i.ports.map((p) => ({ port: p.port, protocol: p.protocol })) } : {}),
    }));
    const seen = JSON.stringify(observed);
    if (sameAddresses(wanted, observed) && r.ingress.statusHostnames.length === 0) {
      this.written.delete(key); // the informer shows what is wanted
      return true;
    }
    const wantedKey = JSON.stringify(wanted);
    const prior = this.written.get(key);
    if (prior && prior.wanted === wantedKey && prior.seenBefore === seen) return true;
    const path = `/apis/networking.k8s.io/v1/namespaces/${encodeURIComponent(r.ingress.namespace)}/ingresses/${encodeURIComponent(r.ingress.name)}/status`;
    this.stats.patches += 1;
    const res = await this.opts.client.patch(path, ingressStatusPatch(wanted), 'merge');
    if (res.status === 404) return true; // deleted meanwhile
    if (res.status !== 200) {
      this.opts.logger.warn({ ingress: key, err: apiErrorMessage(res) }, 'Ingress status: cannot patch');
      return false;
    }
    this.written.set(key, { wanted: wantedKey, seenBefore: seen });
    this.opts.logger.info({ ingress: key, addresses: wanted.map((a) => a.ip) }, 'Ingress status written');
    return true;
  }

  private async emit(key: string, ev: ServiceEvent): Promise<boolean> {
    const signature = `${ev.reason}\n${ev.message}`;
    if (this.emitted.get(key) === signature) return true;
    this.stats.events += 1;
    const res = await this.opts.client.create(
      `/api/v1/namespaces/${encodeURIComponent(ev.namespace)}/events`,
      buildServiceEvent(ev, {
        nowMs: (this.opts.wallClock ?? Date.now)(),
        component: 'portway-ingress',
        host: this.opts.nodeName,
      }),
    );
    if (res.status !== 201 && res.status !== 200) {
      this.opts.logger.warn(
        { ingress: key, err: apiErrorMessage(res) },
        'Ingress status: cannot create Event',
      );
      return false;
    }
    this.emitted.set(key, signature);
    return true;
  }
}

export interface CreateIngressStatusWriterOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  leaseNamespace: string;
  classes: readonly HandledClass[];
  nodePortAddresses: readonly string[];
  logger: Logger;
  clock: Clock;
  onBackendCounts?: (counts: Record<BackendState, number>) => void;
}

/** `portway run` in cluster mode with ingress.classes set: the writer with its own Lease. Starts nothing. */
export function createIngressStatusWriter(opts: CreateIngressStatusWriterOptions): IngressStatusWriter {
  const client = new KubeApiWriter({ kubeConfig: opts.kubeConfig });
  const leadership = new LeaseElector({
    client,
    identity: opts.nodeName,
    namespace: opts.leaseNamespace,
    name: INGRESS_LEASE_NAME,
    clock: opts.clock,
    logger: opts.logger,
  });
  return new IngressStatusWriter({
    client,
    leadership,
    classes: opts.classes,
    nodePortAddresses: opts.nodePortAddresses,
    nodeName: opts.nodeName,
    logger: opts.logger,
    clock: opts.clock,
    ...(opts.onBackendCounts ? { onBackendCounts: opts.onBackendCounts } : {}),
  });
}
