// Two Services claiming the same cluster IP:port/protocol or the same nodePort/protocol. Pure.
//
// The API server's allocators never let that happen, but manifests (and a restored backup) can say
// it. Rendered as they are, the Service whose rules come first in KUBE-SERVICES / KUBE-NODEPORTS
// silently shadows the other. Instead one is chosen to keep the address — the older by
// creationTimestamp when both carry one, else the first by namespace/name, so every node and every
// run chooses the same — and the other's conflicting service port is reported and left out.
import type { InputProblem, ServiceInfo } from './cluster-state.js';
import { joinHostPort } from './ip.js';
import { LABEL_SERVICE_PROXY_NAME, type BuildResult } from './normalise.js';

export interface PortConflict {
  /** The Service that loses, "namespace/name". */
  service: string;
  /** Index into its spec.ports, and the port's identity. */
  portIndex: number;
  portName: string;
  protocol: string;
  field: string;
  message: string;
}

/** Milliseconds since the epoch of an RFC 3339 creationTimestamp, or null when absent or unreadable. */
function createdAt(svc: ServiceInfo): number | null {
  if (svc.creationTimestamp === undefined) return null;
  const ms = Date.parse(svc.creationTimestamp);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Which of two Services keeps a contested address: the older when both have a creationTimestamp,
 * else the first by namespace/name. A total order: Services with a timestamp come before those
 * without, which then go by name.
 */
function comparePrecedence(a: ServiceInfo, b: ServiceInfo): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== null && tb !== null && ta !== tb) return ta - tb;
  if ((ta === null) !== (tb === null)) return ta === null ? 1 : -1;
  const na = `${a.namespace}/${a.name}`;
  const nb = `${b.namespace}/${b.name}`;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Whether portway programs the Service at all (kube-proxy's ShouldSkipService and label filter). */
function isProxied(svc: ServiceInfo): boolean {
  return (
    svc.type !== 'ExternalName' && svc.clusterIPs.length > 0 && !(LABEL_SERVICE_PROXY_NAME in svc.labels)
  );
}

interface Holder {
  svc: ServiceInfo;
  portName: string;
}

/** Every conflict among `services`, in a deterministic order (the losers in precedence order). */
export function findPortConflicts(services: readonly ServiceInfo[]): PortConflict[] {
  const contenders = services.filter(isProxied);
  contenders.sort(comparePrecedence);
  const held = new Map<string, Holder>();
  const conflicts: PortConflict[] = [];
  for (const svc of contenders) {
    const nodePorts = svc.type === 'NodePort' || svc.type === 'LoadBalancer';
    svc.ports.forEach((p, portIndex) => {
      const claims: Array<{ key: string; what: string; field: string }> = svc.clusterIPs.map((ip) => ({
        key: `cluster ${joinHostPort(ip, p.port)}/${p.protocol}`,
        what: `cluster IP ${joinHostPort(ip, p.port)}/${p.protocol}`,
        field: `spec.ports[${portIndex}].port`,
      }));
      if (nodePorts && p.nodePort !== 0)
        claims.push({
          key: `node ${p.nodePort}/${p.protocol}`,
          what: `node port ${p.nodePort}/${p.protocol}`,
          field: `spec.ports[${portIndex}].nodePort`,
        });
      const clash = claims.find((c) => held.has(c.key));
      if (clash === undefined) {
        for (const c of claims) held.set(c.key, { svc, portName: p.name });
        return;
      }
      const holder = held.get(clash.key)!;
      const holderPort = holder.portName === '' ? '' : ` (port ${holder.portName})`;
      const why =
        createdAt(holder.svc) !== null && createdAt(svc) !== null && createdAt(holder.svc) !== createdAt(svc)
          ? 'it was created earlier'
          : 'it comes first by namespace/name';
      conflicts.push({
        service: `${svc.namespace}/${svc.name}`,
        portIndex,
        portName: p.name,
        protocol: p.protocol,
        field: clash.field,
        message:
          `${clash.what} is also claimed by Service ${holder.svc.namespace}/${holder.svc.name}${holderPort}, ` +
          `which keeps it because ${why}; this port gets no rules`,
      });
    });
  }
  return conflicts;
}

/** Conflicts by the services list they were computed from: lists are immutable and reused while no Service changes. */
const conflictsByList = new WeakMap<readonly ServiceInfo[], PortConflict[]>();

function conflictsOf(services: readonly ServiceInfo[]): PortConflict[] {
  let conflicts = conflictsByList.get(services);
  if (conflicts === undefined) conflictsByList.set(services, (conflicts = findPortConflicts(services)));
  return conflicts;
}

/**
 * The result without the losing service ports, and a problem per conflict appended to its problems.
 * The same result object when there is no conflict. `sourceOf` names the file (or 'api') a Service
 * came from, for the report.
 */
export function withoutPortConflicts(
  result: BuildResult,
  sourceOf: (service: string) => string,
): BuildResult {
  const conflicts = conflictsOf(result.state.services);
  if (conflicts.length === 0) return result;
  const losers = new Set(conflicts.map((c) => `${c.service}\u0000${c.portName}\u0000${c.protocol}`));
  const servicePorts = result.state.servicePorts.filter(
    (p) => !losers.has(`${p.namespace}/${p.serviceName}\u0000${p.portName}\u0000${p.protocol}`),
  );
  const problems: InputProblem[] = conflicts.map((c) => ({
    source: sourceOf(c.service),
    kind: 'Service',
    object: c.service,
    field: c.field,
    message: c.message,
  }));
  return { state: { ...result.state, servicePorts }, problems: [...result.problems, ...problems] };
}
