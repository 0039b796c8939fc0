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
// An endpoint is identified by IP and port, as kube-proxy ≤ 1.30 did: one whose port changed (a new
// targetPort) leaves entries DNATed to the old port, which are deleted like those of a removed one.
// Those changes are only known between two syncs of one process, and a failed `conntrack -D` is not
// retried. Full syncs (the first one after start included) therefore also sweep the listed table as
// kube-proxy ≥ 1.31 does on every sync (planConntrackSweep): any UDP entry to a service address:port
// or node port of a UDP Service that has serving endpoints, whose reply source is not one of them.
// TCP and SCTP are left alone, as kube-proxy does: their connections end and are re-established
// through current rules. Traffic policies, topology and terminating state are not looked at: an
// endpoint that still serves keeps its flows (kube-proxy: "consistent with TCP").
import type { ConntrackEntry, ConntrackFilter } from '../dataplane/interfaces.js';
import type { IPFamily, ServicePort } from '../model/cluster-state.js';
import { ipFamilyOf } from '../model/ip.js';

/** A deletion and why it is made (for logs and tests). */
export interface ConntrackDeletion {
  filter: ConntrackFilter;
  reason: 'endpointRemoved' | 'serviceNewlyActive' | 'servicePortRemoved' | 'addressRemoved' | 'nodePortChanged' | 'staleEntry';
  servicePort: string;
}

const keyOf = (sp: ServicePort): string => `${sp.id}/${sp.protocol}`;

function serviceAddresses(sp: ServicePort, family: IPFamily): string[] {
  const all = [...sp.clusterIPs, ...sp.externalIPs, ...sp.loadBalancerIngress.filter((i) => i.ipMode === 'VIP').map((i) => i.ip)];
  return [...new Set(all)].filter((ip) => ipFamilyOf(ip) === family);
}

function servingEndpoints(sp: ServicePort, family: IPFamily): Map<string, { ip: string; port: number }> {
  return new Map(sp.endpoints.filter((e) => e.serving && e.family === family).map((e) => [`${e.ip}|${e.port}`, e]));
}

/**
 * Deletions for one family, given the service ports of the last successfully applied state and the
 * current ones. `previous === null` (the first sync after start) yields nothing: there is no record of
 * what changed, and flushing every UDP Service's entries on each agent restart (kube-proxy ≤ 1.30 saw
 * every Service as newly active) would cut live flows; the sweep of the listed table covers that sync.
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
    const key = [f.protocol, f.origDst ?? '', f.origDstPort ?? '', f.replySrc ?? '', f.replySrcPort ?? ''].join('|');
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
    const nowServing = servingEndpoints(now, family);
    const oldServing = old ? servingEndpoints(old, family) : new Map<string, { ip: string; port: number }>();
    const nowServingIPs = new Set([...nowServing.values()].map((e) => e.ip));
    const addresses = serviceAddresses(now, family);
    if (oldServing.size === 0 && nowServing.size > 0) {
      for (const ip of addresses) {
        add({ filter: { ...base, origDst: ip, origDstPort: now.port }, reason: 'serviceNewlyActive', servicePort: now.id });
      }
      if (now.nodePort !== 0) add({ filter: { ...base, origDstPort: now.nodePort }, reason: 'serviceNewlyActive', servicePort: now.id });
      continue;
    }
    for (const [key, ep] of [...oldServing].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (nowServing.has(key)) continue;
      // The IP still serves on another port: only the entries DNATed to the old port.
      const reply = nowServingIPs.has(ep.ip) ? { replySrc: ep.ip, replySrcPort: ep.port } : { replySrc: ep.ip };
      for (const ip of addresses) {
        add({ filter: { ...base, origDst: ip, origDstPort: now.port, ...reply }, reason: 'endpointRemoved', servicePort: now.id });
      }
      if (now.nodePort !== 0) {
        add({ filter: { ...base, origDstPort: now.nodePort, ...reply }, reason: 'endpointRemoved', servicePort: now.id });
      }
    }
  }
  return out;
}

/**
 * Deletions for one family from the listed conntrack table (kube-proxy ≥ 1.31's CleanStaleEntries):
 * for each UDP service port with serving endpoints of the family, every entry to one of its
 * addresses:port, or to its node port (any destination address), whose reply source is not a serving
 * endpoint — DNATed to an endpoint that is gone, or not DNATed at all (created while the Service had
 * no endpoints). One exact filter per stale (address, port, reply source). Service ports without
 * serving endpoints are left: there is nowhere better to send their flows.
 * Two places where kube-proxy's sweep (one endpoint set per key, the last one written wins) cuts live
 * flows on every sync, and this one does not:
 *  - an address:port (or node port) several UDP Services claim (one external IP listed by two
 *    Services; a node port given twice in a manifest directory) keeps the flows to the serving
 *    endpoints of any of them: the rules send it to the first, whichever that is;
 *  - an entry to a UDP service address:port is that Service's flow, never a node port's, even when its
 *    port number is some node port: KUBE-SERVICES matches service addresses before it jumps to
 *    KUBE-NODEPORTS.
 */
export function planConntrackSweep(
  current: readonly ServicePort[],
  entries: readonly ConntrackEntry[],
  family: IPFamily,
): ConntrackDeletion[] {
  const byAddress = new Map<string, { sp: ServicePort; serving: Set<string> }>();
  const byNodePort = new Map<number, { sp: ServicePort; serving: Set<string> }>();
  // Every UDP service address:port with rules, endpoints or not (those without are not swept, but a
  // flow to them is still not a node port's).
  const serviceAddressPorts = new Set<string>();
  const claim = <K>(map: Map<K, { sp: ServicePort; serving: Set<string> }>, key: K, sp: ServicePort, serving: Set<string>): void => {
    const had = map.get(key);
    if (had === undefined) map.set(key, { sp, serving });
    else map.set(key, { sp: had.sp, serving: new Set([...had.serving, ...serving]) });
  };
  for (const sp of current) {
    if (sp.protocol !== 'UDP') continue;
    const addresses = serviceAddresses(sp, family);
    for (const ip of addresses) serviceAddressPorts.add(`${ip}|${sp.port}`);
    const serving = new Set([...servingEndpoints(sp, family).values()].map((e) => e.ip));
    if (serving.size === 0) continue;
    for (const ip of addresses) claim(byAddress, `${ip}|${sp.port}`, sp, serving);
    if (sp.nodePort !== 0) claim(byNodePort, sp.nodePort, sp, serving);
  }
  const out: ConntrackDeletion[] = [];
  const seen = new Set<string>();
  const base = { family, protocol: 'udp' as const };
  for (const e of entries) {
    if (e.protocol !== 'udp' || e.family !== family) continue;
    const svc = byAddress.get(`${e.origDst}|${e.origDstPort}`);
    if (svc && !svc.serving.has(e.replySrc)) {
      const key = `${e.origDst}|${e.origDstPort}|${e.replySrc}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push({ filter: { ...base, origDst: e.origDst, origDstPort: e.origDstPort, replySrc: e.replySrc }, reason: 'staleEntry', servicePort: svc.sp.id });
      }
    }
    const np = serviceAddressPorts.has(`${e.origDst}|${e.origDstPort}`) ? undefined : byNodePort.get(e.origDstPort);
    if (np && !np.serving.has(e.replySrc)) {
      const key = `*|${e.origDstPort}|${e.replySrc}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push({ filter: { ...base, origDstPort: e.origDstPort, replySrc: e.replySrc }, reason: 'staleEntry', servicePort: np.sp.id });
      }
    }
  }
  return out;
}
