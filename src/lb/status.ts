// What the allocator decided, for people (`portway status`) and for the API (status.loadBalancer.ingress
// patches). Pure. In cluster mode a single Lease-elected writer will send the patches; that election is
// not part of this module.
import { printableLine } from '../model/names.js';
import type { ServiceInfo } from '../model/cluster-state.js';
import { canonicalIP } from '../model/ip.js';
import type { OwnerDecision } from '../l2/election.js';
import { type AllocationResult, isPortwayLoadBalancer, serviceKey } from './allocator.js';

export interface StatusOptions {
  /** Layer2 decisions of this node, to show who announces each address. */
  l2Decisions?: OwnerDecision[];
  loadBalancerClass?: string;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A text report: one line per LoadBalancer Service (address, pool, announcer or the reason for none), then pool problems. */
export function formatLbStatus(
  services: ServiceInfo[],
  result: AllocationResult,
  opts: StatusOptions = {},
): string {
  const byIp = new Map((opts.l2Decisions ?? []).map((d) => [d.ip, d]));
  const announcer = (ip: string): string => {
    const d = byIp.get(ip);
    if (!d) return '-';
    if (d.owner) return d.owner;
    return `none (${d.reason})`;
  };
  const ours = services
    .filter((s) => isPortwayLoadBalancer(s, opts.loadBalancerClass))
    .map(serviceKey)
    .sort();
  const rows: string[][] = [['SERVICE', 'POOL', 'ADDRESSES', 'ANNOUNCED BY', 'PROBLEM']];
  for (const key of ours) {
    const a = result.assignments.get(key);
    if (a)
      rows.push([key, a.pool, a.ips.join(','), opts.l2Decisions ? a.ips.map(announcer).join(',') : '-', '']);
    // A reason can quote an annotation value as written: escaped, so it stays in its cell and line.
    else rows.push([key, '-', '-', '-', printableLine(result.reasons.get(key) ?? 'not allocated')]);
  }
  const lines = [
    `LoadBalancer Services: ${ours.length}, with addresses: ${ours.filter((k) => result.assignments.has(k)).length}, without: ${ours.filter((k) => !result.assignments.has(k)).length}`,
  ];
  if (ours.length > 0) lines.push(table(rows));
  if (result.problems.length > 0) {
    lines.push('', 'Address pool problems (these pools are not used):');
    for (const p of result.problems) lines.push(`  ${printableLine(p.message)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A merge patch for one Service's status subresource. */
export interface IngressStatusPatch {
  namespace: string;
  name: string;
  patch: { status: { loadBalancer: { ingress: Array<{ ip: string }> } } };
}

/**
 * The status patches needed to make every portway Service's status.loadBalancer.ingress match the
 * allocation: the assigned addresses, or an empty list when it has none (so clients stop using an address
 * the Service lost). Services already right get no patch; the order is namespace/name.
 */
export function planIngressStatusPatches(
  services: ServiceInfo[],
  result: AllocationResult,
  loadBalancerClass?: string,
): IngressStatusPatch[] {
  const patches: IngressStatusPatch[] = [];
  const ours = services
    .filter((s) => isPortwayLoadBalancer(s, loadBalancerClass))
    .sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1));
  for (const svc of ours) {
    const want = result.assignments.get(serviceKey(svc))?.ips ?? [];
    const have = svc.statusIngress.map((i) => canonicalIP(i.ip) ?? i.ip);
    if (want.length === have.length && want.every((ip, i) => have[i] === ip)) continue;
    patches.push({
      namespace: svc.namespace,
      name: svc.name,
      patch: { status: { loadBalancer: { ingress: want.map((ip) => ({ ip })) } } },
    });
  }
  return patches;
}
