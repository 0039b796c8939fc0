// The access path of a URL through an Ingress, hop by hop, from the same decisions the agent makes (issue
// 12 §4, the pure part): hop 1 the published address and who answers ARP for it (or the node ports), hop 2
// the controller Service's ready pods, hop 3 the Ingress rule the controller picks for host/path, hop 4
// the backend Service:port and its ready endpoints. It stops at the first hop that fails and says why.
// Pure; the rule-level walk of hops 2 and 4 (the existing packet walker) is left to the trace command,
// which gets the two packets to walk in `packets`.
import type { OwnerDecision } from '../l2/election.js';
import type { ClusterState } from '../model/cluster-state.js';
import { decidePublishedAddress } from './address.js';
import { checkBackend, indexServices } from './backends.js';
import { type HandledClass, ingressClassOf } from './classes.js';
import { matchRoute } from './match.js';

export interface UrlHop {
  hop: 1 | 2 | 3 | 4;
  what: string;
  ok: boolean;
  detail: string;
}

/** A packet the trace command walks through a node's rules: on `node` (null: the configured node). */
export interface UrlHopPacket {
  src?: string;
  dst: string;
  dport: number;
  node: string | null;
}

export interface UrlTrace {
  url: string;
  hops: UrlHop[];
  /** The first failing hop, or null when the request would reach a backend. */
  failedAt: number | null;
  /**
   * Hop 2: the client's packet to the published address (LoadBalancer address on its ARP owner, or a
   * node port on a node address). Hop 4: a controller pod's packet to the backend Service's cluster IP.
   * Set only when the hops before them passed.
   */
  packets: { toController?: UrlHopPacket; toBackend?: UrlHopPacket & { src: string } };
  /**
   * The address hop 1 decided and the Ingress whose rule routes the URL, with the addresses its
   * status.loadBalancer.ingress holds as read (what DNS tools publish): a live trace compares them.
   */
  published?: { ingress: string; decided: string[]; written: string[] };
}

/** The URL's port: as written, else the scheme's (http 80, https 443). */
function urlPort(u: URL): number {
  if (u.port !== '') return Number(u.port);
  return u.protocol === 'https:' ? 443 : 80;
}

type TraceState = Pick<ClusterState, 'ingresses' | 'ingressClasses' | 'services' | 'servicePorts' | 'nodes'>;

export function traceIngressUrl(
  url: string,
  state: TraceState,
  classes: readonly HandledClass[],
  owners: readonly OwnerDecision[],
  nodePortAddresses: readonly string[] = [],
): UrlTrace {
  const hops: UrlHop[] = [];
  const packets: UrlTrace['packets'] = {};
  const found: Pick<UrlTrace, 'published'> = {};
  const done = (): UrlTrace => {
    const failed = hops.find((h) => !h.ok);
    return { url, hops, failedAt: failed ? failed.hop : null, packets, ...found };
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    hops.push({ hop: 1, what: 'URL', ok: false, detail: `not a URL: ${JSON.stringify(url)}` });
    return done();
  }
  const host = parsed.hostname.toLowerCase();
  const path = parsed.pathname === '' ? '/' : parsed.pathname;
  // The first configured class whose Ingresses route this host/path (configuration order).
  let chosen: { cls: HandledClass; route: NonNullable<ReturnType<typeof matchRoute>> } | null = null;
  for (const cls of classes) {
    const ofClass = state.ingresses.filter((i) => ingressClassOf(i, state.ingressClasses).class === cls.name);
    const route = matchRoute(ofClass, host, path);
    if (route) {
      chosen = { cls, route };
      break;
    }
  }
  if (!chosen) {
    hops.push({
      hop: 1,
      what: 'published address',
      ok: false,
      detail: `no Ingress of a class in ingress.classes routes ${host}${path}`,
    });
    return done();
  }
  const index = indexServices(state);
  const address = decidePublishedAddress(chosen.cls.service, state, index.services, nodePortAddresses);
  found.published = {
    ingress: `${chosen.route.ingress.namespace}/${chosen.route.ingress.name}`,
    decided: address.addresses.map((a) => a.ip),
    written: (
      state.ingresses.find((i) => i.namespace === chosen.route.ingress.namespace && i.name === chosen.route.ingress.name)
        ?.statusIngress ?? []
    ).map((a) => a.ip),
  };
  if (address.addresses.length === 0) {
    hops.push({ hop: 1, what: 'published address', ok: false, detail: `no address published: ${address.reason}` });
    return done();
  }
  // The controller Service port the client's URL port lands on (for a NodePort controller: the Service
  // port whose port is the URL's, reached on its node port).
  const port = urlPort(parsed);
  const controllerPort = index.services
    .get(chosen.cls.service)!
    .ports.find((p) => p.protocol === 'TCP' && p.port === port);
  if (!controllerPort) {
    const have = index.services.get(chosen.cls.service)!.ports.map((p) => `${p.port}/${p.protocol}`).join(', ');
    hops.push({
      hop: 1,
      what: 'published address',
      ok: false,
      detail: `controller Service ${chosen.cls.service} has no TCP port ${port} for ${parsed.protocol}// (ports: ${have || 'none'})`,
    });
    return done();
  }
  if (address.via === 'nodePort') {
    const ports = address.addresses[0]!.ports!.map((p) => p.port).join(',');
    hops.push({
      hop: 1,
      what: 'published address',
      ok: true,
      detail: `node ports ${ports} on ${address.addresses.map((a) => a.ip).join(', ')}; port ${port} is node port ${controllerPort.nodePort}`,
    });
    // Walked on the node that holds the address (its Node object), so the node port is LOCAL there.
    const dst = address.addresses[0]!.ip;
    const holder = state.nodes.find((n) => n.addresses.includes(dst));
    packets.toController = { dst, dport: controllerPort.nodePort, node: holder?.name ?? null };
  } else {
    const byIp = new Map(owners.map((d) => [d.ip, d]));
    const answered = address.addresses.map((a) => ({ ip: a.ip, d: byIp.get(a.ip) }));
    const owned = answered.filter((a) => a.d?.owner);
    hops.push({
      hop: 1,
      what: 'published address',
      ok: owned.length > 0,
      detail: answered
        .map((a) => (a.d?.owner ? `${a.ip} answered by ${a.d.owner}` : `${a.ip}: no node answers ARP (${a.d?.reason ?? 'not announced by portway'})`))
        .join('; '),
    });
    if (owned.length === 0) return done();
    packets.toController = { dst: owned[0]!.ip, dport: port, node: owned[0]!.d!.owner };
  }
  const controllerPorts = (index.ports.get(chosen.cls.service) ?? []).filter(
    (sp) => sp.portName === controllerPort.name && sp.protocol === 'TCP',
  );
  const readyPods = controllerPorts.flatMap((sp) => sp.endpoints.filter((e) => e.ready));
  const ready = readyPods.length;
  hops.push({
    hop: 2,
    what: `controller ${chosen.cls.service}`,
    ok: ready > 0,
    detail: ready > 0 ? `${ready} ready controller pod(s)` : 'no ready endpoints: nothing answers on the published address',
  });
  if (ready === 0) return done();
  const r = chosen.route;
  const rule = r.path === null ? 'defaultBackend' : `${r.host || '*'} ${r.path.path || '/'} (${r.path.pathType})`;
  hops.push({
    hop: 3,
    what: 'Ingress rule',
    ok: true,
    detail: `${r.ingress.namespace}/${r.ingress.name} ${rule}${r.note ? `; ${r.note}` : ''}`,
  });
  const check = checkBackend(r.ingress.namespace, r.backend, index);
  hops.push({
    hop: 4,
    what: `backend ${check.target}`,
    ok: check.state === 'ok' || check.state === 'notChecked',
    detail: check.state === 'ok' ? `${check.endpoints} ready endpoint(s)` : `${check.state}: ${check.reason}`,
  });
  if (check.state === 'ok' && 'service' in r.backend) {
    const { name, port: bport } = r.backend.service;
    const svc = index.services.get(`${r.ingress.namespace}/${name}`)!;
    const sport = svc.ports.find((p) => (typeof bport === 'number' ? p.port === bport : p.name === bport))!;
    const pod = readyPods[0]!;
    const clusterIP = svc.clusterIPs.find((ip) => ip.includes(':') === pod.ip.includes(':'));
    if (clusterIP !== undefined)
      packets.toBackend = { src: pod.ip, dst: clusterIP, dport: sport.port, node: pod.nodeName ?? null };
  }
  return done();
}
