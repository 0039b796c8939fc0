// Puts the allocator into the agent: every node computes the same allocation from the same input
// (manifest mode needs no coordination) and the rendered rules use the allocated addresses as the
// Services' LoadBalancer ingress IPs. The controller keeps the previous result in memory so a Service keeps
// its address across input changes even though nothing writes status back in manifest mode.
import type { ClusterState, LoadBalancerIngress, ServiceInfo } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import {
  type AllocationResult,
  PORTWAY_LOAD_BALANCER_CLASS,
  allocate,
  isPortwayLoadBalancer,
  serviceKey,
} from './allocator.js';

/**
 * The state with the allocation applied: for every Service portway serves, status.loadBalancer.ingress
 * (ServiceInfo.statusIngress) and each port's loadBalancerIngress become the allocated addresses — none when
 * the Service got none, so no rules are written for an address it lost. Other Services are untouched.
 * Pure: the input state is not modified.
 */
export function applyAllocation(
  state: ClusterState,
  result: AllocationResult,
  loadBalancerClass = PORTWAY_LOAD_BALANCER_CLASS,
): ClusterState {
  const ingressOf = new Map<string, LoadBalancerIngress[]>();
  for (const svc of state.services) {
    if (!isPortwayLoadBalancer(svc, loadBalancerClass)) continue;
    const ips = result.assignments.get(serviceKey(svc))?.ips ?? [];
    ingressOf.set(
      serviceKey(svc),
      ips.map((ip) => ({ ip, ipMode: 'VIP' as const })),
    );
  }
  if (ingressOf.size === 0) return state;
  const services: ServiceInfo[] = state.services.map((svc) => {
    const ingress = ingressOf.get(serviceKey(svc));
    return ingress ? { ...svc, statusIngress: ingress.map((i) => ({ ...i })) } : svc;
  });
  const servicePorts = state.servicePorts.map((sp) => {
    const ingress = ingressOf.get(`${sp.namespace}/${sp.serviceName}`);
    return ingress ? { ...sp, loadBalancerIngress: ingress.map((i) => ({ ...i })) } : sp;
  });
  return { ...state, services, servicePorts };
}

export interface LoadBalancerControllerOptions {
  /** spec.loadBalancerClass served (an unset class is served too). */
  loadBalancerClass?: string;
  /** false: never allocate; status.loadBalancer.ingress is used as written. */
  enabled?: boolean;
  logger?: Logger;
}

/** What one call of process() decided. */
export interface LoadBalancerDecision {
  /** The state to render: allocated addresses applied (or the input when portway does not allocate). */
  state: ClusterState;
  /** null when portway did not allocate (disabled, or no IPAddressPool in the input). */
  allocation: AllocationResult | null;
}

const summarise = (r: AllocationResult) =>
  JSON.stringify({
    a: [...r.assignments].sort(([x], [y]) => (x < y ? -1 : 1)),
    r: [...r.reasons].sort(([x], [y]) => (x < y ? -1 : 1)),
    p: r.problems.map((p) => p.message),
  });

/**
 * Allocation with memory. With at least one IPAddressPool in the input portway is the load-balancer
 * implementation and its allocation wins over a written status that is no longer valid; without pools the
 * input describes a cluster whose addresses come from elsewhere, and status is used as written.
 */
export class LoadBalancerController {
  private previous: AllocationResult | undefined;
  private lastSummary = '';
  private readonly lbClass: string;

  constructor(private readonly opts: LoadBalancerControllerOptions = {}) {
    this.lbClass = opts.loadBalancerClass ?? PORTWAY_LOAD_BALANCER_CLASS;
  }

  process(state: ClusterState): LoadBalancerDecision {
    if (this.opts.enabled === false || state.addressPools.length === 0) {
      if (this.previous)
        this.opts.logger?.info({}, 'no IPAddressPool: LoadBalancer addresses are used as written in status');
      this.previous = undefined;
      this.lastSummary = '';
      return { state, allocation: null };
    }
    const allocation = allocate(state.services, state.addressPools, state.namespaceLabels, this.previous, {
      loadBalancerClass: this.lbClass,
    });
    this.previous = allocation;
    this.logChanges(allocation);
    return { state: applyAllocation(state, allocation, this.lbClass), allocation };
  }

  /** The last allocation (for status, metrics). */
  current(): AllocationResult | undefined {
    return this.previous;
  }

  private logChanges(allocation: AllocationResult): void {
    const summary = summarise(allocation);
    if (summary === this.lastSummary) return;
    this.lastSummary = summary;
    const log = this.opts.logger;
    if (!log) return;
    log.info(
      {
        assignments: Object.fromEntries(
          [...allocation.assignments].map(([k, a]) => [k, `${a.ips.join(',')} (${a.pool})`]),
        ),
      },
      'LoadBalancer addresses allocated',
    );
    for (const [service, reason] of allocation.reasons)
      log.warn({ service, reason }, 'LoadBalancer Service has no address');
    for (const p of allocation.problems) log.warn({ object: p.object, field: p.field }, p.message);
  }
}
