// nftables mode: the proxy plans of one family turned into portway's own nftables table. Outcomes are
// kube-proxy's (its nftables mode, KEP-3866: which endpoint set, drop, reject or masquerade a packet
// meets); the shape is portway's, chosen so that an endpoint change — a change of the endpoint count
// included — touches only elements of named maps (docs/adr/0007-nftables-mode.md):
//
//   services:  daddr . l4proto . dport vmap @service-ips  ──goto──►  svc-/ext- chain of the port
//   svc-…:     [masquerade rule]  dnat to numgen random mod 2^20 map @eps-…   (an interval map:
//              each endpoint owns an even slice of 0..2^20-1, so N never appears in a rule)
//
// ClientIP-affinity ports keep one chain per endpoint (a dynamic set per endpoint remembers clients).
// Pure: same input, byte-identical output.
import type { ClusterState, IPFamily } from '../../model/cluster-state.js';
import { cidrContains, joinHostPort } from '../../model/ip.js';
import { checkedMasqueradeBit, planServicePorts, RenderInputError } from '../../proxy/index.js';
import type { NoEndpointsAction, PlannedEndpoint, ServicePortPlan } from '../../proxy/index.js';
import { chainOwner } from '../naming.js';
import {
  affinitySet,
  allowedSourcesSet,
  clusterEndpointsMap,
  endpointChain,
  endpointNamePart,
  externalChain,
  firewallChain,
  localChain,
  localEndpointsMap,
  serviceChain,
  servicePortNameBase,
} from './naming.js';
import type { NftablesRenderOptions } from './options.js';
import { NFT_TABLE, type NftChain, type NftElement, type NftRuleSet, type NftSet } from './types.js';

/** The numgen space every service's endpoints share out: 2^20 slices of equal probability. */
export const NUMGEN_MODULUS = 1 << 20;

// Static chains (fixed names).
export const NFT_SERVICES = 'services';
export const NFT_MASQUERADING = 'masquerading';
export const NFT_MARK_FOR_MASQUERADE = 'mark-for-masquerade';
export const NFT_REJECT_CHAIN = 'reject-chain';
export const NFT_FIREWALL_CHECK = 'firewall-check';
export const NFT_SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NFT_NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const NFT_CLUSTER_IPS_CHECK = 'cluster-ips-check';
// Static sets and maps.
export const NFT_SERVICE_IPS = 'service-ips';
export const NFT_SERVICE_NODEPORTS = 'service-nodeports';
export const NFT_NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const NFT_NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const NFT_FIREWALL_IPS = 'firewall-ips';
export const NFT_CLUSTER_IPS = 'cluster-ips';
export const NFT_NODEPORT_IPS = 'nodeport-ips';
export const NFT_HAIRPIN_ENDPOINTS = 'hairpin-endpoints';

/** The family's words in nft: `ip saddr`, `ipv4_addr`, `dnat ip to`. */
interface FamilyWords {
  ip: 'ip' | 'ip6';
  addrType: 'ipv4_addr' | 'ipv6_addr';
  loopback: string;
}

const WORDS: Record<IPFamily, FamilyWords> = {
  IPv4: { ip: 'ip', addrType: 'ipv4_addr', loopback: '127.0.0.0/8' },
  IPv6: { ip: 'ip6', addrType: 'ipv6_addr', loopback: '::1' },
};

/**
 * The local-traffic detector's iptables match (`-s CIDR`, `! -s CIDR`, `-i br0`, `-i veth+`) in nft
 * words (`ip saddr CIDR`, `ip saddr != CIDR`, `iifname "br0"`, `iifname "veth*"`).
 */
export function detectorMatch(tokens: readonly string[] | null, ip: 'ip' | 'ip6'): string | null {
  if (tokens === null) return null;
  const negated = tokens[0] === '!';
  const [flag, value] = negated ? [tokens[1], tokens[2]] : [tokens[0], tokens[1]];
  const op = negated ? '!= ' : '';
  if (flag === '-s' && value !== undefined) return `${ip} saddr ${op}${value}`;
  if (flag === '-i' && value !== undefined) {
    const pattern = value.endsWith('+') ? `${value.slice(0, -1)}*` : value;
    return `iifname ${op}"${pattern}"`;
  }
  throw new RenderInputError('options', 'detectLocalMode', `detector ${tokens.join(' ')} has no nft form`);
}

/** Slice i of n of the numgen space: "start-end" (a single value when the slice has one). */
export function numgenSlice(i: number, n: number): string {
  const start = Math.floor((i * NUMGEN_MODULUS) / n);
  const end = Math.floor(((i + 1) * NUMGEN_MODULUS) / n) - 1;
  return start === end ? String(start) : `${start}-${end}`;
}

const byKey = (a: NftElement, b: NftElement): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * A static set or map filled while the service ports are rendered; elements deduplicated by key. An
 * element asked for by one service port names it as owner (diff groups by it); a shared one (a cluster
 * IP of several ports, an endpoint address of several Services) names none.
 */
class ElementCollector {
  private readonly byKeyMap = new Map<string, NftElement>();
  add(key: string, value: string | undefined, owner: string): void {
    const seen = this.byKeyMap.get(key);
    if (seen !== undefined) {
      if (seen.owner !== owner) delete seen.owner;
      return;
    }
    this.byKeyMap.set(key, value === undefined ? { key, owner } : { key, value, owner });
  }
  sorted(): NftElement[] {
    return [...this.byKeyMap.values()].sort(byKey);
  }
}

function noEndpointsVerdict(action: NoEndpointsAction): string {
  return action === 'REJECT' ? `goto ${NFT_REJECT_CHAIN}` : 'drop';
}

/** Render the nftables table of one IP family. Pure. Throws RenderInputError on unusable input. */
export function renderNftables(state: ClusterState, opts: NftablesRenderOptions): NftRuleSet {
  const { family } = opts;
  const w = WORDS[family];
  const mark = `0x${((1 << checkedMasqueradeBit(opts.masqueradeBit)) >>> 0).toString(16)}`;
  const plan = planServicePorts(state, opts);
  const { nodePorts, primaryNodeIP } = plan.node;
  const ifLocal = detectorMatch(plan.node.detector.ifLocal, w.ip);
  const ifNotLocal = detectorMatch(plan.node.detector.ifNotLocal, w.ip);

  const serviceIPs = new ElementCollector();
  const serviceNodePorts = new ElementCollector();
  const noEndpointServices = new ElementCollector();
  const noEndpointNodePorts = new ElementCollector();
  const firewallIPs = new ElementCollector();
  const clusterIPs = new ElementCollector();
  const hairpin = new ElementCollector();
  const serviceChains: NftChain[] = [];
  const serviceSets: NftSet[] = [];

  for (const svc of plan.servicePorts) {
    renderServicePort(svc, {
      w,
      ifLocal,
      ifNotLocal,
      masqueradeAll: opts.masqueradeAll,
      primaryNodeIP,
      serviceIPs,
      serviceNodePorts,
      noEndpointServices,
      noEndpointNodePorts,
      firewallIPs,
      clusterIPs,
      hairpin,
      chains: serviceChains,
      sets: serviceSets,
    });
  }

  // Node ports: every local address but loopback, or the nodePortAddresses set.
  const nodePortMatch = nodePorts.matchAll
    ? `fib daddr type local ${w.ip} daddr != ${w.loopback}`
    : `${w.ip} daddr @${NFT_NODEPORT_IPS}`;
  const daddrPortVmap = `${w.ip} daddr . meta l4proto . th dport vmap`;
  const ct = 'ct state new';
  const staticChains: NftChain[] = [
    // Base chains. Filter checks run before DNAT where the original destination matters (source
    // ranges) and after it where a DNATed packet must no longer match (no-endpoint, cluster-IP ports).
    // The nat chains run just before kube-proxy's and iptables' (dstnat = -100): during a takeover
    // portway's DNAT wins for new connections, and the first nat chain to bind a connection decides.
    // Numbers, not "dstnat - 1": nft takes the named priorities only on some hooks.
    chain('filter-prerouting', [`${ct} jump ${NFT_FIREWALL_CHECK}`], 'filter', 'prerouting', '-110'),
    chain(
      'filter-input',
      [`${ct} jump ${NFT_NODEPORT_ENDPOINTS_CHECK}`, `${ct} jump ${NFT_SERVICE_ENDPOINTS_CHECK}`],
      'filter',
      'input',
      '-10',
    ),
    chain(
      'filter-forward',
      [`${ct} jump ${NFT_SERVICE_ENDPOINTS_CHECK}`, `${ct} jump ${NFT_CLUSTER_IPS_CHECK}`],
      'filter',
      'forward',
      '-10',
    ),
    chain('filter-output', [`${ct} jump ${NFT_FIREWALL_CHECK}`], 'filter', 'output', '-110'),
    chain(
      'filter-output-post-dnat',
      [`${ct} jump ${NFT_SERVICE_ENDPOINTS_CHECK}`, `${ct} jump ${NFT_CLUSTER_IPS_CHECK}`],
      'filter',
      'output',
      '-90',
    ),
    chain('nat-prerouting', [`jump ${NFT_SERVICES}`], 'nat', 'prerouting', '-101'),
    chain('nat-output', [`jump ${NFT_SERVICES}`], 'nat', 'output', '-101'),
    chain('nat-postrouting', [`jump ${NFT_MASQUERADING}`], 'nat', 'postrouting', '99'),
    // Regular static chains.
    chain(NFT_SERVICES, [
      `${daddrPortVmap} @${NFT_SERVICE_IPS}`,
      `${nodePortMatch} meta l4proto . th dport vmap @${NFT_SERVICE_NODEPORTS}`,
    ]),
    chain(NFT_SERVICE_ENDPOINTS_CHECK, [`${daddrPortVmap} @${NFT_NO_ENDPOINT_SERVICES}`]),
    chain(NFT_NODEPORT_ENDPOINTS_CHECK, [
      `${nodePortMatch} meta l4proto . th dport vmap @${NFT_NO_ENDPOINT_NODEPORTS}`,
    ]),
    chain(NFT_FIREWALL_CHECK, [`${daddrPortVmap} @${NFT_FIREWALL_IPS}`]),
    // A packet still addressed to a cluster IP after DNAT asked for a port the Service lacks.
    chain(NFT_CLUSTER_IPS_CHECK, [`${w.ip} daddr @${NFT_CLUSTER_IPS} reject`]),
    chain(NFT_MARK_FOR_MASQUERADE, [`meta mark set meta mark or ${mark}`]),
    chain(NFT_MASQUERADING, [
      // Hairpin: a pod that reached itself through a Service must see the reply come from the node.
      `ct status dnat ${w.ip} saddr . ${w.ip} daddr @${NFT_HAIRPIN_ENDPOINTS} meta mark set meta mark or ${mark}`,
      `meta mark & ${mark} == 0 return`,
      // Clear the mark so a packet that re-traverses the stack is not masqueraded twice.
      `meta mark set meta mark xor ${mark}`,
      opts.randomFully ? 'masquerade fully-random' : 'masquerade',
    ]),
    chain(NFT_REJECT_CHAIN, ['reject']),
  ];

  const addrKey = `${w.addrType} . inet_proto . inet_service`;
  const staticSets: NftSet[] = [
    set(NFT_CLUSTER_IPS, 'set', `type ${w.addrType}`, clusterIPs.sorted()),
    set(
      NFT_NODEPORT_IPS,
      'set',
      `type ${w.addrType}`,
      nodePorts.matchAll ? [] : nodePorts.ips.map((key) => ({ key })),
    ),
    set(NFT_SERVICE_IPS, 'map', `type ${addrKey} : verdict`, serviceIPs.sorted()),
    set(NFT_SERVICE_NODEPORTS, 'map', 'type inet_proto . inet_service : verdict', serviceNodePorts.sorted()),
    set(NFT_NO_ENDPOINT_SERVICES, 'map', `type ${addrKey} : verdict`, noEndpointServices.sorted()),
    set(
      NFT_NO_ENDPOINT_NODEPORTS,
      'map',
      'type inet_proto . inet_service : verdict',
      noEndpointNodePorts.sorted(),
    ),
    set(NFT_FIREWALL_IPS, 'map', `type ${addrKey} : verdict`, firewallIPs.sorted()),
    set(NFT_HAIRPIN_ENDPOINTS, 'set', `type ${w.addrType} . ${w.addrType}`, hairpin.sorted()),
  ];

  return {
    family,
    nftFamily: w.ip,
    table: NFT_TABLE,
    chains: [...staticChains, ...serviceChains],
    sets: [...staticSets, ...serviceSets],
  };
}

function chain(
  name: string,
  rules: string[],
  type?: 'filter' | 'nat',
  hook?: NonNullable<NftChain['hook']>['hook'],
  priority?: string,
): NftChain {
  const c: NftChain = { name, role: 'static', rules };
  if (type !== undefined && hook !== undefined && priority !== undefined) c.hook = { type, hook, priority };
  return c;
}

function set(name: string, kind: 'set' | 'map', type: string, elements: NftElement[]): NftSet {
  return { name, kind, role: 'static', type, flags: [], elements };
}

interface ServicePortContext {
  w: FamilyWords;
  ifLocal: string | null;
  ifNotLocal: string | null;
  masqueradeAll: boolean;
  primaryNodeIP: string | undefined;
  serviceIPs: ElementCollector;
  serviceNodePorts: ElementCollector;
  noEndpointServices: ElementCollector;
  noEndpointNodePorts: ElementCollector;
  firewallIPs: ElementCollector;
  clusterIPs: ElementCollector;
  hairpin: ElementCollector;
  chains: NftChain[];
  sets: NftSet[];
}

/** One service port: its dispatch elements in the static maps, and its own chains and maps. */
function renderServicePort(svc: ServicePortPlan, cx: ServicePortContext): void {
  const { w } = cx;
  const { sp, protocol } = svc;
  const owner = chainOwner(sp);
  const base = servicePortNameBase(sp);
  const port = String(svc.port);
  const proto = protocol; // nft's inet_proto names equal the lower-case protocol tokens
  const svcChain = serviceChain(base);
  const svlChain = localChain(base);
  const extChain = externalChain(base);
  const fwChain = firewallChain(base);

  const usesClusterPolicyChain = svc.clusterEndpoints.length > 0 && svc.usesClusterEndpoints;
  const usesLocalPolicyChain = svc.localEndpoints.length > 0 && svc.usesLocalEndpoints;
  const internalChain = svc.internalPolicyLocal ? svlChain : svcChain;
  const externalPolicyChain = svc.externalPolicyLocal ? svlChain : svcChain;
  // The short-circuits for pods and the node itself are needed even when no endpoint takes
  // external traffic (kube-proxy: based on hasEndpoints, not hasExternalEndpoints).
  const usesExternalChain = svc.hasEndpoints && svc.externallyAccessible;
  const usesFirewall = svc.usesSourceRanges;

  cx.clusterIPs.add(svc.clusterIP, undefined, owner);
  const key = (ip: string): string => `${ip} . ${proto} . ${port}`;

  // Cluster IP.
  if (svc.hasInternalEndpoints) cx.serviceIPs.add(key(svc.clusterIP), `goto ${internalChain}`, owner);
  else cx.noEndpointServices.add(key(svc.clusterIP), noEndpointsVerdict(svc.internalNoEndpoints), owner);

  // External IPs and load-balancer VIPs.
  for (const ip of [...svc.externalIPs, ...svc.loadBalancerVIPs]) {
    if (svc.hasEndpoints) cx.serviceIPs.add(key(ip), `goto ${extChain}`, owner);
    if (!svc.hasExternalEndpoints)
      cx.noEndpointServices.add(key(ip), noEndpointsVerdict(svc.externalNoEndpoints), owner);
  }
  if (usesFirewall)
    for (const ip of svc.loadBalancerVIPs) cx.firewallIPs.add(key(ip), `goto ${fwChain}`, owner);

  // Node port.
  if (svc.nodePort !== 0) {
    const npKey = `${proto} . ${svc.nodePort}`;
    if (svc.hasEndpoints) cx.serviceNodePorts.add(npKey, `goto ${extChain}`, owner);
    if (!svc.hasExternalEndpoints)
      cx.noEndpointNodePorts.add(npKey, noEndpointsVerdict(svc.externalNoEndpoints), owner);
  }

  // External chain: where node ports, external IPs and LB VIPs enter.
  if (usesExternalChain) {
    const rules: string[] = [];
    if (!svc.externalPolicyLocal) {
      rules.push(`jump ${NFT_MARK_FOR_MASQUERADE}`);
    } else {
      // Pod → external address: like going out to the balancer and back, subject to neither policy.
      if (cx.ifLocal !== null) rules.push(`${cx.ifLocal} goto ${svcChain}`);
      // From the node itself the source is a local address: masquerade and use the Cluster policy.
      rules.push(`fib saddr type local jump ${NFT_MARK_FOR_MASQUERADE}`);
      rules.push(`fib saddr type local goto ${svcChain}`);
    }
    if (svc.hasExternalEndpoints) rules.push(`goto ${externalPolicyChain}`);
    cx.chains.push({ name: extChain, role: 'external', owner, rules });
  }

  // Firewall chain (loadBalancerSourceRanges), checked in filter before DNAT.
  if (usesFirewall) {
    const allowed: NftElement[] = svc.loadBalancerSourceRanges.map((c) => ({ key: c.text }));
    // A VIP routed locally makes node → VIP traffic loop back with the VIP as source: allow it.
    const primary = cx.primaryNodeIP;
    if (primary !== undefined && svc.loadBalancerSourceRanges.some((c) => cidrContains(c, primary))) {
      for (const ip of svc.loadBalancerVIPs) allowed.push({ key: ip });
    }
    const srcSet = allowedSourcesSet(base);
    cx.sets.push({
      name: srcSet,
      kind: 'set',
      role: 'allowedSources',
      owner,
      type: `type ${w.addrType}`,
      flags: ['interval'],
      autoMerge: true,
      elements: allowed,
    });
    cx.chains.push({ name: fwChain, role: 'firewall', owner, rules: [`${w.ip} saddr != @${srcSet} drop`] });
  }

  // Masquerade for internal traffic: off-cluster sources (or all with masqueradeAll).
  const masqueradeRule = (): string[] => {
    if (!svc.hasInternalEndpoints) return [];
    const match = `${w.ip} daddr ${svc.clusterIP} ${proto} dport ${port}`;
    if (cx.masqueradeAll) return [`${match} jump ${NFT_MARK_FOR_MASQUERADE}`];
    if (cx.ifNotLocal !== null) return [`${match} ${cx.ifNotLocal} jump ${NFT_MARK_FOR_MASQUERADE}`];
    return [];
  };

  const affinity = svc.affinityTimeoutSeconds;
  const endpointChains = new Map<PlannedEndpoint, { chain: string; aff: string }>();
  if (affinity !== null) {
    for (const e of svc.allReachable) {
      const part = endpointNamePart(e.ep.ip, e.ep.port);
      endpointChains.set(e, { chain: endpointChain(base, part), aff: affinitySet(base, part) });
    }
  }

  // Each endpoint needs a slice of the numgen space of at least one value.
  if (svc.allReachable.length > NUMGEN_MODULUS) {
    throw new RenderInputError(
      svc.object,
      'endpoints',
      `${svc.allReachable.length} endpoints: nftables mode shares ${NUMGEN_MODULUS} numgen slices among them (at most that many)`,
    );
  }
  const policyChain = (
    name: string,
    role: 'service' | 'local',
    mapName: string,
    endpoints: PlannedEndpoint[],
  ): void => {
    const rules = name === internalChain ? masqueradeRule() : [];
    const n = endpoints.length;
    if (affinity === null) {
      rules.push(`meta l4proto ${proto} dnat ${w.ip} to numgen random mod ${NUMGEN_MODULUS} map @${mapName}`);
      cx.sets.push({
        name: mapName,
        kind: 'map',
        role: 'endpoints',
        owner,
        type: `typeof numgen random mod ${NUMGEN_MODULUS} : ${w.ip} daddr . ${proto} dport`,
        flags: ['interval'],
        elements: endpoints.map((e, i) => ({ key: numgenSlice(i, n), value: `${e.ep.ip} . ${e.ep.port}` })),
      });
    } else {
      for (const e of endpoints) {
        const names = endpointChains.get(e)!;
        rules.push(`${w.ip} saddr @${names.aff} goto ${names.chain}`);
      }
      rules.push(`numgen random mod ${NUMGEN_MODULUS} vmap @${mapName}`);
      cx.sets.push({
        name: mapName,
        kind: 'map',
        role: 'endpoints',
        owner,
        type: `typeof numgen random mod ${NUMGEN_MODULUS} : verdict`,
        flags: ['interval'],
        elements: endpoints.map((e, i) => ({
          key: numgenSlice(i, n),
          value: `goto ${endpointChains.get(e)!.chain}`,
        })),
      });
    }
    cx.chains.push({ name, role, owner, rules });
  };
  if (usesClusterPolicyChain)
    policyChain(svcChain, 'service', clusterEndpointsMap(base), svc.clusterEndpoints);
  if (usesLocalPolicyChain) policyChain(svlChain, 'local', localEndpointsMap(base), svc.localEndpoints);

  for (const e of svc.allReachable) {
    cx.hairpin.add(`${e.ep.ip} . ${e.ep.ip}`, undefined, owner);
    const names = endpointChains.get(e);
    if (names === undefined) continue;
    // Timeout 0 is allowed by the API check here but means "no timeout" to nft; the shortest it takes is 1s.
    cx.sets.push({
      name: names.aff,
      kind: 'set',
      role: 'affinity',
      owner,
      type: `type ${w.addrType}`,
      flags: ['dynamic', 'timeout'],
      timeoutSeconds: Math.max(1, affinity ?? 1),
      elements: [],
    });
    cx.chains.push({
      name: names.chain,
      role: 'endpoint',
      owner,
      rules: [
        `update @${names.aff} { ${w.ip} saddr }`,
        `meta l4proto ${proto} dnat ${w.ip} to ${joinHostPort(e.ep.ip, e.ep.port)}`,
      ],
    });
  }
}
