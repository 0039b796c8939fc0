// Which node answers ARP (IPv4) or NDP (IPv6) for a LoadBalancer address (DESIGN habit 8). Pure: every
// node computes the same owner from the same inputs (cluster state + the set of agents it sees alive), so no coordination traffic
// is needed. A node is eligible when it is Ready, alive, selected, not labelled out, and its Node's
// NetworkUnavailable condition is not True. The eligible nodes are sorted by sha256(node + '#' + ip), ip being the
// first address of the Service (so both families of a dual-stack Service share an owner), and the first
// one announces, as MetalLB's layer2 speaker does; decisions come with reasons, not booleans.
import { createHash } from 'node:crypto';
import type {
  AddressPool,
  ClusterState,
  L2Advertisement,
  NodeInfo,
  TrafficPolicy,
} from '../model/cluster-state.js';
import type { AllocationResult } from '../lb/allocator.js';
import { matchesAnySelector } from '../lb/label-selector.js';

export type AnnounceReason =
  /** This node announces. */
  | ''
  /** Another node is the owner. */
  | 'notOwner'
  /** No L2Advertisement covers the address's pool. */
  | 'notAdvertised'
  /**
   * externalTrafficPolicy Cluster and no Service on the address has an endpoint that can serve: MetalLB's
   * speaker announces nothing then (activeEndpointExists), whatever the policy.
   */
  | 'noEndpoints'
  /** externalTrafficPolicy Local and no node has an endpoint that can serve. */
  | 'noLocalEndpoints'
  /** No node is selected, Ready, alive (and, for Local, has an endpoint). */
  | 'noEligibleNodes'
  /**
   * The Node's NetworkUnavailable condition is True (MetalLB's speaker skips such nodes): this node would
   * otherwise be a candidate, and `owner` is the best-ranked one without the condition (null when none).
   * Also the reason there is no owner when every otherwise eligible node has the condition.
   */
  | 'nodeNetworkUnavailable'
  /**
   * @deprecated Never returned any more: IPv6 addresses are elected like IPv4 ones and announced by NDP
   * (ndp-responder.ts). Kept in the union so code that matches on it still compiles.
   */
  | 'ipv6NotAnnounced';

/** One address to announce and what its eligibility depends on. */
export interface AnnouncedAddress {
  ip: string;
  pool: string;
  /** "namespace/name" of every Service on the address (several when shared). */
  services: string[];
  /** Local only when every Service on the address is Local. */
  externalTrafficPolicy: TrafficPolicy;
  /**
   * Nodes with an endpoint of one of the Services that can serve — ready, or serving while terminating
   * (MetalLB's EndpointCanServe) — used for Local.
   */
  nodesWithReadyEndpoints: string[];
  /** Some Service on the address has an endpoint that can serve, on any node or none named. */
  hasServingEndpoints: boolean;
  /**
   * The address the owner is elected on: the first address of the first Service on it. MetalLB hashes a
   * Service's first address, so a dual-stack Service's IPv4 and IPv6 addresses go to the same node.
   * Absent: `ip`.
   */
  electionKey?: string;
}

/** Nodes with this label never announce (MetalLB and the cloud providers honour it; any value counts). */
export const LABEL_EXCLUDE_FROM_LOAD_BALANCERS = 'node.kubernetes.io/exclude-from-external-load-balancers';

/**
 * MetalLB's epslices.EndpointCanServe: ready, or still serving while terminating. MetalLB reads an unset
 * `serving` as false, portway's model as true (kube-proxy's default), so serving counts only together with
 * terminating — which is the only case the EndpointSlice controller writes serving without ready.
 */
export const endpointCanServe = (ep: { ready: boolean; serving: boolean; terminating: boolean }): boolean =>
  ep.ready || (ep.serving && ep.terminating);

export interface ElectionInputs {
  nodes: NodeInfo[];
  pools: AddressPool[];
  advertisements: L2Advertisement[];
  /** Agents seen alive by member health (this node's agent is always alive to itself). */
  aliveNodes: ReadonlySet<string>;
}

export interface OwnerDecision {
  ip: string;
  owner: string | null;
  /** Why this node does or does not announce ('' = it does). */
  reason: AnnounceReason;
  /** The eligible nodes, in election order (owner first). */
  eligible: string[];
  /** Interfaces to announce on for this node; empty = every interface. */
  interfaces: string[];
  /** (Owner only) Interfaces the selecting advertisements name, sorted. */
  namedInterfaces?: string[];
  /** (Owner only) Some selecting advertisement names no interface: it means the node's default ones. */
  defaultInterface?: boolean;
}

/** Election order of `nodes` for `ip`: ascending sha256(node + '#' + ip), compared byte by byte. */
export function rankNodes(ip: string, nodes: string[]): string[] {
  const keyed = nodes.map((node) => ({ node, hash: createHash('sha256').update(`${node}#${ip}`).digest() }));
  keyed.sort((a, b) => Buffer.compare(a.hash, b.hash) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return keyed.map((k) => k.node);
}

/** Advertisements whose pool choice covers `poolName` (no pools and no selectors = every pool). */
export function advertisementsForPool(
  poolName: string,
  pools: AddressPool[],
  ads: L2Advertisement[],
): L2Advertisement[] {
  const labels = pools.find((p) => p.name === poolName)?.labels ?? {};
  return ads.filter((ad) => {
    if (ad.ipAddressPools.length === 0 && ad.ipAddressPoolSelectors.length === 0) return true;
    return ad.ipAddressPools.includes(poolName) || matchesAnySelector(ad.ipAddressPoolSelectors, labels);
  });
}

function selects(ad: L2Advertisement, node: NodeInfo): boolean {
  return ad.nodeSelectors.length === 0 || matchesAnySelector(ad.nodeSelectors, node.labels);
}

/** Decide the owner of one address and what `myNode` does about it. */
export function decideOwner(myNode: string, addr: AnnouncedAddress, inputs: ElectionInputs): OwnerDecision {
  const none = (reason: AnnounceReason, eligible: string[] = []): OwnerDecision => ({
    ip: addr.ip,
    owner: null,
    reason,
    eligible,
    interfaces: [],
  });
  const ads = advertisementsForPool(addr.pool, inputs.pools, inputs.advertisements);
  if (ads.length === 0) return none('notAdvertised');
  const withEndpoints = new Set(addr.nodesWithReadyEndpoints);
  // Local without endpoints keeps its more specific reason; both are MetalLB's early "notOwner".
  if (addr.externalTrafficPolicy === 'Local' && withEndpoints.size === 0) return none('noLocalEndpoints');
  if (!addr.hasServingEndpoints) return none('noEndpoints');
  const candidates = inputs.nodes
    .filter((n) => n.ready)
    .filter((n) => !Object.prototype.hasOwnProperty.call(n.labels, LABEL_EXCLUDE_FROM_LOAD_BALANCERS))
    .filter((n) => n.name === myNode || inputs.aliveNodes.has(n.name))
    .filter((n) => ads.some((ad) => selects(ad, n)))
    .filter((n) => addr.externalTrafficPolicy !== 'Local' || withEndpoints.has(n.name));
  const eligible = candidates.filter((n) => n.networkUnavailable !== true).map((n) => n.name);
  // Kept apart from the other exclusions so that the reason says why this node stays silent.
  const myNetworkUnavailable = candidates.some((n) => n.name === myNode && n.networkUnavailable === true);
  if (eligible.length === 0)
    return none(candidates.length > 0 ? 'nodeNetworkUnavailable' : 'noEligibleNodes');
  const ranked = rankNodes(addr.electionKey ?? addr.ip, eligible);
  const owner = ranked[0] as string;
  if (owner !== myNode) {
    const reason = myNetworkUnavailable ? 'nodeNetworkUnavailable' : 'notOwner';
    return { ip: addr.ip, owner, reason, eligible: ranked, interfaces: [] };
  }
  const me = inputs.nodes.find((n) => n.name === myNode) as NodeInfo;
  const mine = ads.filter((ad) => selects(ad, me));
  // Any advertisement without an interface list means "every interface".
  const named = [...new Set(mine.flatMap((ad) => ad.interfaces))].sort();
  const defaultInterface = mine.some((ad) => ad.interfaces.length === 0);
  const interfaces = defaultInterface ? [] : named;
  return {
    ip: addr.ip,
    owner,
    reason: '',
    eligible: ranked,
    interfaces,
    namedInterfaces: named,
    defaultInterface,
  };
}

/** The addresses to consider for layer2, one entry per address, from the allocation and the cluster state. */
export function collectAnnouncedAddresses(
  state: Pick<ClusterState, 'services' | 'servicePorts'>,
  allocation: AllocationResult,
): AnnouncedAddress[] {
  const byIp = new Map<string, AnnouncedAddress>();
  const policyOf = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s.externalTrafficPolicy]));
  const endpointNodes = new Map<string, Set<string>>();
  const serving = new Set<string>();
  for (const sp of state.servicePorts) {
    const key = `${sp.namespace}/${sp.serviceName}`;
    let set = endpointNodes.get(key);
    if (!set) endpointNodes.set(key, (set = new Set()));
    for (const ep of sp.endpoints) {
      if (!endpointCanServe(ep)) continue;
      serving.add(key);
      if (ep.nodeName) set.add(ep.nodeName);
    }
  }
  const keys = [...allocation.assignments.keys()].sort();
  for (const key of keys) {
    const a = allocation.assignments.get(key);
    if (!a) continue;
    for (const ip of a.ips) {
      let entry = byIp.get(ip);
      if (!entry) {
        entry = {
          ip,
          pool: a.pool,
          services: [],
          externalTrafficPolicy: 'Local',
          nodesWithReadyEndpoints: [],
          hasServingEndpoints: false,
          electionKey: a.ips[0] ?? ip,
        };
        byIp.set(ip, entry);
      }
      entry.services.push(key);
      if (serving.has(key)) entry.hasServingEndpoints = true;
      if ((policyOf.get(key) ?? 'Cluster') === 'Cluster') entry.externalTrafficPolicy = 'Cluster';
      const nodes = new Set([...entry.nodesWithReadyEndpoints, ...(endpointNodes.get(key) ?? [])]);
      entry.nodesWithReadyEndpoints = [...nodes].sort();
    }
  }
  return [...byIp.values()].sort((x, y) => (x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : 0));
}
