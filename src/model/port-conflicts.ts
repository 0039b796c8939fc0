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

interface Contender {
  svc: ServiceInfo;
  created: number | null;
  name: string;
}

/**
 * Which of two Services keeps a contested address: the older when both have a creationTimestamp,
 * else the first by namespace/name. A total order: Services with a timestamp come before those
 * without, which then go by name.
 */
function comparePrecedence(a: Contender, b: Contender): number {
  if (a.created !== null && b.created !== null && a.created !== b.created) return a.created - b.created;
  if ((a.created === null) !== (b.created === null)) return a.created === null ? 1 : -1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
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
  // Keys computed once per Service, not once per comparison.
  const contenders: Contender[] = [];
  for (const svc of services)
    if (isProxied(svc))
      contenders.push({ svc, created: createdAt(svc), name: `${svc.namespace}/${svc.name}` });
  contenders.sort(comparePrecedence);
  const held = new Map<string, Holder>();
  const conflicts: PortConflict[] = [];
  for (const { svc } of contenders) {
    const nodePorts = svc.type === 'NodePort' || svc.type === 'LoadBalancer';
    svc.ports.forEach((p, portIndex) => {
      // Keys are cheap strings; the words of a report are built only for a conflict.
      const keys = svc.clusterIPs.map((ip) => `${ip} ${p.port}/${p.protocol}`);
      if (nodePorts && p.nodePort !== 0) keys.push(`node ${p.nodePort}/${p.protocol}`);
      const clashAt = keys.findIndex((k) => held.has(k));
      if (clashAt < 0) {
        for (const k of keys) held.set(k, { svc, portName: p.name });
        return;
      }
      const onNodePort = clashAt === svc.clusterIPs.length;
      const what = onNodePort
        ? `node port ${p.nodePort}/${p.protocol}`
        : `cluster IP ${joinHostPort(svc.clusterIPs[clashAt]!, p.port)}/${p.protocol}`;
      const holder = held.get(keys[clashAt]!)!;
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
        field: `spec.ports[${portIndex}].${onNodePort ? 'nodePort' : 'port'}`,
        message:
          `${what} is also claimed by Service ${holder.svc.namespace}/${holder.svc.name}${holderPort}, ` +
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
