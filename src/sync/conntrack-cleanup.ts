// Which UDP conntrack entries to delete after a restore. Pure.
// UDP has no connection end: a flow DNATed to an endpoint that went away keeps going there (into a
// black hole) for as long as packets keep the entry alive, and a flow that hit a REJECT while the
// Service had no endpoints keeps being rejected. kube-proxy therefore deletes, after each restore
// (pkg/proxy/conntrack/cleanup.go, the change-driven form of kube-proxy ≤ 1.30):
//  - for an endpoint that stopped serving: entries to each service address:port (cluster, external,
//    load-balancer IPs) whose reply source is that endpoint, and entries to the node port likewise;
//  - for a Service that went from no serving endpoints to some ("newly active"): every entry to its
//    addresses:port and node port;
//  - for a removed service port, address or node port: every entry to what was removed.
// TCP and SCTP are left alone: their connections end and are re-established through current rules.
import type { ConntrackFilter } from '../dataplane/interfaces.js';
import type { IPFamily, ServicePort } from '../model/cluster-state.js';
import { ipFamilyOf } from '../model/ip.js';

/** A deletion and why it is made (for logs and tests). */
export interface ConntrackDeletion {
  filter: ConntrackFilter;
  reason: 'endpointRemoved' | 'serviceNewlyActive' | 'servicePortRemoved' | 'addressRemoved' | 'nodePortChanged';
  servicePort: string;
}

const keyOf = (sp: ServicePort): string => `${sp.id}/${sp.protocol}`;

function serviceAddresses(sp: ServicePort, family: IPFamily): string[] {
  const all = [...sp.clusterIPs, ...sp.externalIPs, ...sp.loadBalancerIngress.filter((i) => i.ipMode === 'VIP').map((i) => i.ip)];
  return [...new Set(all)].filter((ip) => ipFamilyOf(ip) === family);
}

function servingEndpointIPs(sp: ServicePort, family: IPFamily): Set<string> {
  return new Set(sp.endpoints.filter((e) => e.serving && e.family === family).map((e) => e.ip));
}

/**
 * Deletions for one family, given the service ports of the last successfully applied state and the
 * current ones. `previous === null` (the first sync after start) yields nothing: there is no record of
 * what changed, and flushing every UDP Service's entries on each agent restart would cut live flows.
 */
export function planConntrackCleanup(
  previous: readonly ServicePort[] | null,
  current: readonly ServicePort[],
  family: IPFamily,
): ConntrackDeletion[] {
  if (previous === null) return [];
  const out: ConntrackDeletion[] = [];
  const seen = new Set<string>();
  const add = (d: ConntrackDeletion): void => {
    const f = d.filter;
    const key = [f.protocol, f.origDst ?? '', f.origDstPort ?? '', f.replySrc ?? ''].join('|');
    if (seen.has(key)) return;
    seen.add(key);
    out.push(d);
  };
  const udp = (sp: ServicePort): boolean => sp.protocol === 'UDP';
  const before = new Map(previous.filter(udp).map((sp) => [keyOf(sp), sp]));
  const after = new Map(current.filter(udp).map((sp) => [keyOf(sp), sp]));
  const base = { family, protocol: 'udp' as const };

  for (const [key, old] of before) {
    const now = after.get(key);
    if (!now) {
      for (const ip of serviceAddresses(old, family)) {
        add({ filter: { ...base, origDst: ip, origDstPort: old.port }, reason: 'servicePortRemoved', servicePort: old.id });
      }
      if (old.nodePort !== 0) add({ filter: { ...base, origDstPort: old.nodePort }, reason: 'servicePortRemoved', servicePort: old.id });
      continue;
    }
    const nowAddresses = new Set(serviceAddresses(now, family));
    for (const ip of serviceAddresses(old, family)) {
      if (!nowAddresses.has(ip) || old.port !== now.port) {
        add({ filter: { ...base, origDst: ip, origDstPort: old.port }, reason: 'addressRemoved', servicePort: now.id });
      }
    }
    if (old.nodePort !== 0 && old.nodePort !== now.nodePort) {
      add({ filter: { ...base, origDstPort: old.nodePort }, reason: 'nodePortChanged', servicePort: now.id });
    }
  }

  for (const [key, now] of after) {
    const old = before.get(key);
    const nowServing = servingEndpointIPs(now, family);
    const oldServing = old ? servingEndpointIPs(old, family) : new Set<string>();
    const addresses = serviceAddresses(now, family);
    if (oldServing.size === 0 && nowServing.size > 0) {
      for (const ip of addresses) {
        add({ filter: { ...base, origDst: ip, origDstPort: now.port }, reason: 'serviceNewlyActive', servicePort: now.id });
      }
      if (now.nodePort !== 0) add({ filter: { ...base, origDstPort: now.nodePort }, reason: 'serviceNewlyActive', servicePort: now.id });
      continue;
    }
    for (const ep of [...oldServing].sort()) {
      if (nowServing.has(ep)) continue;
      for (const ip of addresses) {
        add({ filter: { ...base, origDst: ip, origDstPort: now.port, replySrc: ep }, reason: 'endpointRemoved', servicePort: now.id });
      }
      if (now.nodePort !== 0) {
        add({ filter: { ...base, origDstPort: now.nodePort, replySrc: ep }, reason: 'endpointRemoved', servicePort: now.id });
      }
    }
  }
  return out;
}
